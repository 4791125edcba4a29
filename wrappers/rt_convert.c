/* rt_convert.c - check a value against a type descriptor and return a converted copy (R3).
 *
 * Containers are copied eagerly, so Mochi never aliases a Python list or dict, and every element
 * is checked. Checks are exact where Python's hierarchy would blur them: bool is not an int, and
 * an int is accepted where a float is declared (it is widened).
 */
#include "mochi_bridge.h"

static PyObject *mismatch(PyObject *value, PyObject **bad)
{
    *bad = value; /* borrowed: the caller still holds the container it came from */
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

static PyObject *convert_list(PyObject *value, const char *elem, PyObject **bad, PyObject **where)
{
    if (!PyList_Check(value)) {
        return mismatch(value, bad);
    }
    Py_ssize_t n = PyList_Size(value);
    if (n < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(value, i);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *conv = mb_convert(item, elem, bad, where);
        if (conv == NULL) {
            if (!PyErr_Occurred()) {
                add_step(where, PyUnicode_FromFormat("[%zd]", i));
            }
            Py_DECREF(out);
            return NULL;
        }
        if (PyList_SetItem(out, i, conv) < 0) { /* steals conv */
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *convert_dict(PyObject *value, const char *elem, PyObject **bad, PyObject **where)
{
    if (!PyDict_Check(value)) {
        return mismatch(value, bad);
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    while (PyDict_Next(value, &pos, &key, &item)) {
        if (!PyUnicode_Check(key)) {
            Py_DECREF(out);
            add_step(where, PyUnicode_FromString(" (a key)"));
            return mismatch(key, bad);
        }
        PyObject *conv = mb_convert(item, elem, bad, where);
        if (conv == NULL) {
            if (!PyErr_Occurred()) {
                add_step(where, PyUnicode_FromFormat("[%R]", key));
            }
            Py_DECREF(out);
            return NULL;
        }
        int rc = PyDict_SetItem(out, key, conv);
        Py_DECREF(conv);
        if (rc < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

PyObject *mb_convert(PyObject *value, const char *desc, PyObject **bad, PyObject **where)
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
        return value == Py_None ? Py_NewRef(value) : mb_convert(value, desc + 1, bad, where);
    case 'L':
        return convert_list(value, desc + 1, bad, where);
    case 'D':
        return convert_dict(value, desc + 1, bad, where);
    default:
        PyErr_Format(PyExc_SystemError, "mochi_bridge: corrupt type descriptor %s", desc);
        return NULL;
    }
}
