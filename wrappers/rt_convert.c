/* rt_convert.c - check a value against a type descriptor and return a converted copy (R3).
 *
 * Containers are copied eagerly, so Mochi never aliases a Python list, dict or set, and every
 * element is checked. Checks are exact where Python's hierarchy would blur them: bool is not an
 * int, and an int is accepted where a float is declared (it is widened). Direction matters for two
 * codes only: `Y` (bytes) is a list of ints 0..255 on the Mochi side, and `T` (an iterable
 * returned by Python) is materialised into a list.
 */
#include "mochi_bridge.h"

#include <stdlib.h>

/* Record the offending value (a new reference the caller of mb_convert releases). */
static PyObject *mismatch(PyObject *value, PyObject **bad)
{
    Py_XDECREF(*bad);
    *bad = Py_NewRef(value);
    return NULL;
}

/* Prefix *where* (a str or NULL) with a path step; keeps the old value on failure. */
static void add_step(PyObject **where, PyObject *step)
{
    if (step == NULL) {
        PyErr_Clear(); /* the path is decoration for a message; losing it is harmless */
        return;
    }
    PyObject *joined = *where ? PyUnicode_Concat(step, *where) : Py_NewRef(step);
    Py_DECREF(step);
    if (joined == NULL) {
        PyErr_Clear();
        return;
    }
    Py_XDECREF(*where);
    *where = joined;
}

/* Convert every item an iterator yields into a new list (L in both directions, T on returns). */
static PyObject *convert_items(PyObject *iterable, const char *elem, const mb_ctx *ctx, PyObject **bad,
                               PyObject **where)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    Py_ssize_t i = 0;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *conv = mb_convert(item, elem, ctx, bad, where);
        if (conv == NULL) {
            if (!PyErr_Occurred()) {
                add_step(where, PyUnicode_FromFormat("[%zd]", i));
            }
            Py_DECREF(item);
            Py_DECREF(out);
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(item);
        int rc = PyList_Append(out, conv);
        Py_DECREF(conv);
        if (rc < 0) {
            Py_DECREF(out);
            Py_DECREF(it);
            return NULL;
        }
        i++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *convert_mapping(PyObject *value, char key_code, const char *elem, const mb_ctx *ctx,
                                 PyObject **bad, PyObject **where)
{
    if (!PyDict_Check(value) && (ctx->to_python || !PyMapping_Check(value) || PySequence_Check(value))) {
        return mismatch(value, bad);
    }
    PyObject *items = PyDict_Check(value) ? PyDict_Items(value) : PyMapping_Items(value);
    if (items == NULL) {
        return NULL;
    }
    PyObject *out = PyDict_New();
    Py_ssize_t n = PyList_Size(items);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *pair = PyList_GetItem(items, i);
        PyObject *key = pair ? PyTuple_GetItem(pair, 0) : NULL;
        PyObject *item = pair ? PyTuple_GetItem(pair, 1) : NULL;
        if (key == NULL || item == NULL) {
            Py_CLEAR(out);
            break;
        }
        int key_ok = key_code == 's' ? PyUnicode_Check(key) : (PyLong_Check(key) && !PyBool_Check(key));
        if (!key_ok) {
            Py_CLEAR(out);
            add_step(where, PyUnicode_FromString("a key"));
            mismatch(key, bad);
            break;
        }
        PyObject *conv = mb_convert(item, elem, ctx, bad, where);
        if (conv == NULL) {
            if (!PyErr_Occurred()) {
                add_step(where, PyUnicode_FromFormat("[%R]", key));
            }
            Py_CLEAR(out);
            break;
        }
        int rc = PyDict_SetItem(out, key, conv);
        Py_DECREF(conv);
        if (rc < 0) {
            Py_CLEAR(out);
        }
    }
    Py_DECREF(items);
    return out;
}

static PyObject *convert_set(PyObject *value, const char *elem, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    if (!PyAnySet_Check(value)) {
        return mismatch(value, bad);
    }
    PyObject *items = convert_items(value, elem, ctx, bad, where);
    if (items == NULL) {
        return NULL;
    }
    PyObject *out = PySet_New(items);
    Py_DECREF(items);
    return out;
}

/* bytes <-> list<int>: Python bytes/bytearray become a list of ints; a list of 0..255 becomes bytes. */
static PyObject *convert_bytes(PyObject *value, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    if (!ctx->to_python) {
        if (!PyBytes_Check(value) && !PyByteArray_Check(value)) {
            return mismatch(value, bad);
        }
        return PySequence_List(value);
    }
    if (!PyList_Check(value)) {
        return mismatch(value, bad);
    }
    Py_ssize_t n = PyList_Size(value);
    PyObject *out = PyBytes_FromStringAndSize(NULL, 0);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *item = PyList_GetItem(value, i);
        long v = item && PyLong_Check(item) && !PyBool_Check(item) ? PyLong_AsLong(item) : -1;
        if (v == -1 && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        if (v < 0 || v > 255) {
            Py_CLEAR(out);
            add_step(where, PyUnicode_FromFormat("[%zd] (a byte is 0..255)", i));
            return mismatch(item, bad);
        }
        char c = (char)v;
        PyObject *one = PyBytes_FromStringAndSize(&c, 1);
        if (one == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyBytes_ConcatAndDel(&out, one);
    }
    return out;
}

static PyObject *convert_handle(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad)
{
    int index = atoi(desc + 1);
    PyObject *cls = mb_resolve_class(ctx->st, index);
    if (cls == NULL) {
        return NULL;
    }
    int ok = PyObject_IsInstance(value, cls);
    Py_DECREF(cls);
    if (ok < 0) {
        return NULL;
    }
    return ok ? Py_NewRef(value) : mismatch(value, bad);
}

PyObject *mb_convert(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    switch (desc[0]) {
    case 'i':
        return PyLong_Check(value) && !PyBool_Check(value) ? Py_NewRef(value) : mismatch(value, bad);
    case 'f':
        if (PyFloat_Check(value)) {
            return Py_NewRef(value);
        }
        if (PyLong_Check(value) && !PyBool_Check(value)) {
            double d = PyLong_AsDouble(value);
            if (d == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            return PyFloat_FromDouble(d);
        }
        return mismatch(value, bad);
    case 'b':
        return PyBool_Check(value) ? Py_NewRef(value) : mismatch(value, bad);
    case 's':
        return PyUnicode_Check(value) ? Py_NewRef(value) : mismatch(value, bad);
    case 'n':
        return value == Py_None ? Py_NewRef(value) : mismatch(value, bad);
    case 'O':
        return value == Py_None ? Py_NewRef(value) : mb_convert(value, desc + 1, ctx, bad, where);
    case 'L':
        return PyList_Check(value) ? convert_items(value, desc + 1, ctx, bad, where) : mismatch(value, bad);
    case 'T': /* an iterable Python returned: materialised (str and bytes are not sequences of items here) */
        if (PyUnicode_Check(value) || PyBytes_Check(value) || PyDict_Check(value)) {
            return mismatch(value, bad);
        }
        return convert_items(value, desc + 1, ctx, bad, where);
    case 'D':
        return convert_mapping(value, 's', desc + 1, ctx, bad, where);
    case 'K':
        return convert_mapping(value, 'i', desc + 1, ctx, bad, where);
    case 'S':
        return convert_set(value, desc + 1, ctx, bad, where);
    case 'Y':
        return convert_bytes(value, ctx, bad, where);
    case 'H':
        return convert_handle(value, desc, ctx, bad);
    default:
        PyErr_Format(PyExc_SystemError, "mochi_bridge: corrupt type descriptor %s", desc);
        return NULL;
    }
}
