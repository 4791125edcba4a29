/* rt_convert.c - check a value against a type descriptor and return a converted copy (R3).
 *
 * Containers are copied eagerly, so Mochi never aliases a Python list, dict or set, and every
 * element is checked. Checks are exact where Python's hierarchy would blur them: bool is not an
 * int, and an int is accepted where a float is declared (it is widened). Direction matters for
 * `Y` (bytes are a list of ints 0..255 on the Mochi side), `T` and `A` (iterables Python returns are
 * materialised into lists), `R` (a Python record, union or enum becomes an instance of the Mochi
 * class the program bound, and back) and `C` (a callable is wrapped to convert in the other direction).
 */
#include "mochi_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Objects the container fast paths call, in st->helpers. */
#define MB_HELPER_WEAKREFCOUNT 0 /* weakref.getweakrefcount */
#define MB_HELPER_DICT_KEYS 1    /* dict.keys */
#define MB_HELPER_DICT_VALUES 2  /* dict.values */
#define MB_HELPERS 3

int mb_names_init(mb_state *st)
{
    const mb_module_spec *spec = st->spec;
    st->attr_names = PyTuple_New(spec->nfunctions);
    st->field_names = PyTuple_New(spec->ntypes);
    st->helpers = PyTuple_New(MB_HELPERS);
    st->str_v = PyUnicode_InternFromString("v");
    st->str_name = PyUnicode_InternFromString("name");
    if (st->attr_names == NULL || st->field_names == NULL || st->helpers == NULL || st->str_v == NULL ||
        st->str_name == NULL) {
        return -1;
    }
    for (int i = 0; i < spec->nfunctions; i++) {
        PyObject *name = PyUnicode_InternFromString(spec->functions[i].py_name);
        if (name == NULL || PyTuple_SetItem(st->attr_names, i, name) < 0) { /* steals */
            return -1;
        }
    }
    PyObject *weakref = PyImport_ImportModule("_weakref");
    PyObject *helpers[MB_HELPERS] = {
        weakref != NULL ? PyObject_GetAttrString(weakref, "getweakrefcount") : NULL,
        PyObject_GetAttrString((PyObject *)&PyDict_Type, "keys"),
        PyObject_GetAttrString((PyObject *)&PyDict_Type, "values"),
    };
    Py_XDECREF(weakref);
    for (int i = 0; i < MB_HELPERS; i++) {
        if (helpers[i] == NULL || PyTuple_SetItem(st->helpers, i, helpers[i]) < 0) { /* steals */
            for (int k = i + 1; k < MB_HELPERS; k++) {
                Py_XDECREF(helpers[k]);
            }
            return -1;
        }
    }
    for (int k = 0; k < spec->ntypes; k++) {
        const mb_type *t = &spec->types[k];
        PyObject *names = PyTuple_New(2 * t->nfields);
        if (names == NULL || PyTuple_SetItem(st->field_names, k, names) < 0) {
            return -1;
        }
        for (int i = 0; i < 2 * t->nfields; i++) {
            PyObject *name = PyUnicode_InternFromString(i % 2 ? t->fields[i / 2].mochi_name : t->fields[i / 2].name);
            if (name == NULL || PyTuple_SetItem(names, i, name) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

PyObject *mb_field_name(mb_state *st, int index, int field, int mochi)
{
    return PyTuple_GetItem(PyTuple_GetItem(st->field_names, index), 2 * field + mochi);
}

PyObject *mb_getattr(PyObject *obj, const char *name)
{
    PyObject *key = PyUnicode_InternFromString(name);
    if (key == NULL) {
        return NULL;
    }
    PyObject *out = PyObject_GetAttr(obj, key);
    Py_DECREF(key);
    return out;
}

long mb_callable_params(const char *desc, const char **first)
{
    char *semi = NULL;
    long k = strtol(desc + 1, &semi, 10);
    *first = semi + 1;
    return k;
}

const char *mb_desc_end(const char *desc)
{
    switch (desc[0]) {
    case 'O': case 'L': case 'T': case 'A': case 'D': case 'K': case 'S':
        return mb_desc_end(desc + 1);
    case 'H': case 'R':
        return strchr(desc, ';') + 1;
    case 'C': {
        const char *pos = NULL;
        long k = mb_callable_params(desc, &pos);
        for (long i = 0; i <= k; i++) {
            pos = mb_desc_end(pos);
        }
        return pos;
    }
    default:
        return desc + 1;
    }
}

PyObject *mb_describe(mb_state *st, const char *desc)
{
    static const char *const scalars = "ifbsnYVH";
    static const char *const names[] = {"int", "float", "bool", "string", "unit", "list<int>", "value", "value"};
    const char *hit = strchr(scalars, desc[0]);
    if (hit != NULL && desc[0]) {
        return PyUnicode_FromString(names[hit - scalars]);
    }
    if (desc[0] == 'R') {
        int index = atoi(desc + 1);
        return PyUnicode_FromString(index < st->spec->ntypes ? st->spec->types[index].mochi_name : "?");
    }
    if (desc[0] == 'C') {
        const char *pos = NULL;
        long k = mb_callable_params(desc, &pos);
        PyObject *args = PyList_New(0);
        for (long i = 0; args != NULL && i < k; i++) {
            PyObject *part = mb_describe(st, pos);
            if (part == NULL || PyList_Append(args, part) < 0) {
                Py_CLEAR(args);
            }
            Py_XDECREF(part);
            pos = mb_desc_end(pos);
        }
        PyObject *sep = args ? PyUnicode_FromString(", ") : NULL;
        PyObject *joined = sep ? PyUnicode_Join(sep, args) : NULL;
        PyObject *ret = joined && pos[0] != 'n' ? mb_describe(st, pos) : NULL;
        PyObject *out = NULL;
        if (joined != NULL && pos[0] == 'n') {
            out = PyUnicode_FromFormat("fun(%U)", joined);
        }
        else if (ret != NULL) {
            out = PyUnicode_FromFormat("fun(%U): %U", joined, ret);
        }
        Py_XDECREF(ret);
        Py_XDECREF(joined);
        Py_XDECREF(sep);
        Py_XDECREF(args);
        return out;
    }
    PyObject *inner = mb_describe(st, desc + 1);
    if (inner == NULL) {
        return NULL;
    }
    PyObject *out = NULL;
    switch (desc[0]) {
    case 'O': out = PyUnicode_FromFormat("%U?", inner); break;
    case 'D': out = PyUnicode_FromFormat("map<string, %U>", inner); break;
    case 'K': out = PyUnicode_FromFormat("map<int, %U>", inner); break;
    case 'S': out = PyUnicode_FromFormat("set<%U>", inner); break;
    default: out = PyUnicode_FromFormat("list<%U>", inner); break;
    }
    Py_DECREF(inner);
    return out;
}

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

/* A protocol handle: does *value* have every attribute the protocol needs? -1 on error. */
static int has_methods(PyObject *value, const char *methods)
{
    char name[128];
    for (const char *p = methods; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0 && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = 0;
            int ok = PyObject_HasAttrString(value, name);
            if (!ok) {
                return 0;
            }
        }
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
    return 1;
}

/* isinstance against handle class index, or the protocol's methods; -1 on error. */
static int is_handle(mb_state *st, int index, PyObject *value)
{
    const char *methods = st->spec->classes[index].methods;
    if (methods != NULL) {
        return has_methods(value, methods);
    }
    PyObject *cls = mb_resolve_class(st, index);
    int ok = cls ? PyObject_IsInstance(value, cls) : -1;
    Py_XDECREF(cls);
    return ok;
}

static PyObject *convert_handle(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad)
{
    int index = atoi(desc + 1);
    if (ctx->st->spec->classes[index].methods != NULL) {
        int ok = is_handle(ctx->st, index, value);
        return ok < 0 ? NULL : ok ? Py_NewRef(value) : mismatch(value, bad);
    }
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

/* isinstance(value, the Python class of named type index); -1 on error. */
static int is_type_instance(mb_state *st, int index, PyObject *value)
{
    PyObject *cls = mb_resolve_type(st, index);
    if (cls == NULL) {
        return -1;
    }
    int ok = PyObject_IsInstance(value, cls);
    Py_DECREF(cls);
    return ok;
}

/* Does *value* have the runtime kind of *desc* (the shallow test that picks a union arm)? -1 on error. */
static int arm_matches(mb_state *st, PyObject *value, const char *desc)
{
    switch (desc[0]) {
    case 'i': return PyLong_Check(value) && !PyBool_Check(value);
    case 'f': return PyFloat_Check(value) || (PyLong_Check(value) && !PyBool_Check(value));
    case 'b': return PyBool_Check(value);
    case 's': return PyUnicode_Check(value);
    case 'Y': return PyBytes_Check(value) || PyByteArray_Check(value);
    case 'L': case 'T': case 'A': return PyList_Check(value) || PyTuple_Check(value);
    case 'D': case 'K': return PyDict_Check(value);
    case 'S': return PyAnySet_Check(value);
    case 'C': return PyCallable_Check(value);
    case 'V': return 1;
    case 'H':
        return is_handle(st, atoi(desc + 1), value);
    case 'R': {
        int index = atoi(desc + 1);
        const mb_type *t = &st->spec->types[index];
        if (t->kind == MB_TYPE_TYPEDDICT) {
            return PyDict_Check(value);
        }
        if (t->kind == MB_TYPE_TUPLE) {
            return PyTuple_Check(value) && PyTuple_Size(value) == t->nfields;
        }
        return is_type_instance(st, index, value);
    }
    default:
        return 0;
    }
}

PyObject *mb_call_kwargs(PyObject *callable, PyObject *kwargs)
{
    PyObject *empty = PyTuple_New(0);
    PyObject *out = empty ? PyObject_Call(callable, empty, kwargs) : NULL;
    Py_XDECREF(empty);
    return out;
}

PyObject *mb_make_mochi(mb_state *st, const char *name, PyObject *kwargs)
{
    PyObject *cls = mb_mochi_class(st, name);
    PyObject *out = cls ? mb_call_kwargs(cls, kwargs) : NULL;
    Py_XDECREF(cls);
    return out;
}

/* The variant of a sum type or enum a Mochi value is: the field whose bound class is the value's class
 * (a program may bind its own classes under other names, see _mochi_bind), else whose variant name is
 * the class's name. */
const mb_field *mb_variant_of(mb_state *st, const mb_type *t, PyObject *value)
{
    for (int i = 0; i < t->nfields; i++) {
        PyObject *cls = mb_mochi_class(st, t->fields[i].mochi_name);
        int same = cls != NULL && (PyObject *)Py_TYPE(value) == cls;
        Py_XDECREF(cls);
        if (same) {
            return &t->fields[i];
        }
    }
    PyErr_Clear(); /* no class bound: fall back to the name */
    PyObject *name = PyType_GetName(Py_TYPE(value));
    const char *text = name ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
    const mb_field *found = NULL;
    for (int i = 0; text != NULL && i < t->nfields; i++) {
        if (strcmp(t->fields[i].mochi_name, text) == 0) {
            found = &t->fields[i];
        }
    }
    Py_XDECREF(name);
    PyErr_Clear(); /* no variant: reported as a mismatch by the caller */
    return found;
}

/* The attribute *name* of *value*; NULL with no error when it has none. */
static PyObject *attribute(PyObject *value, PyObject *name)
{
    PyObject *item = PyObject_GetAttr(value, name);
    if (item == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
    }
    return item;
}

/* A field of a Mochi record value: an attribute, or a key of a dict. NULL with no error when absent. */
static PyObject *mochi_field(PyObject *value, PyObject *name)
{
    return PyDict_Check(value) ? Py_XNewRef(PyDict_GetItemWithError(value, name)) : attribute(value, name);
}

/* A field of a Python record: attribute, dict key or tuple item. NULL with no error when absent. */
static PyObject *python_field(const mb_type *t, PyObject *value, int i, PyObject *name)
{
    if (t->kind == MB_TYPE_TUPLE) {
        return Py_XNewRef(PyTuple_GetItem(value, i));
    }
    if (t->kind == MB_TYPE_TYPEDDICT) {
        return Py_XNewRef(PyDict_GetItemWithError(value, name));
    }
    return attribute(value, name);
}

/* Convert a record field's value *item* (stolen; NULL when the field is absent) of *record*: NULL with
 * the mismatch and its path (`.label` or `(no field label)`) recorded when it is absent or does not fit. */
static PyObject *convert_field(PyObject *item, PyObject *record, const char *label, const char *desc,
                               const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    if (item == NULL) {
        if (!PyErr_Occurred()) {
            add_step(where, PyUnicode_FromFormat("(no field %s)", label));
            mismatch(record, bad);
        }
        return NULL;
    }
    PyObject *conv = mb_convert(item, desc, ctx, bad, where);
    Py_DECREF(item);
    if (conv == NULL && !PyErr_Occurred()) {
        add_step(where, PyUnicode_FromFormat(".%s", label));
    }
    return conv;
}

/* A Mochi record -> the Python dataclass / namedtuple / TypedDict / tuple, every field converted. */
static PyObject *record_to_python(int index, PyObject *value, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    const mb_type *t = &ctx->st->spec->types[index];
    PyObject *items = t->kind == MB_TYPE_TUPLE ? PyTuple_New(t->nfields) : PyDict_New();
    for (int i = 0; items != NULL && i < t->nfields; i++) {
        const mb_field *f = &t->fields[i];
        PyObject *conv = convert_field(mochi_field(value, mb_field_name(ctx->st, index, i, 1)), value, f->mochi_name,
                                       f->type, ctx, bad, where);
        if (conv == NULL) {
            Py_CLEAR(items);
            break;
        }
        int rc = 0;
        if (t->kind == MB_TYPE_TUPLE) {
            rc = PyTuple_SetItem(items, i, conv); /* steals */
        }
        else {
            if (!(t->kind == MB_TYPE_TYPEDDICT && !f->required && conv == Py_None)) { /* absent key, not None */
                rc = PyDict_SetItem(items, mb_field_name(ctx->st, index, i, 0), conv);
            }
            Py_DECREF(conv);
        }
        if (rc < 0) {
            Py_CLEAR(items);
        }
    }
    if (items == NULL || t->kind == MB_TYPE_TUPLE || t->kind == MB_TYPE_TYPEDDICT) {
        return items;
    }
    PyObject *cls = mb_resolve_type(ctx->st, index);
    PyObject *out = cls ? mb_call_kwargs(cls, items) : NULL;
    Py_XDECREF(cls);
    Py_DECREF(items);
    return out;
}

/* A Python record -> an instance of the bound Mochi record class, every field checked and converted. */
static PyObject *record_to_mochi(int index, PyObject *value, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    const mb_type *t = &ctx->st->spec->types[index];
    char desc[32];
    snprintf(desc, sizeof desc, "R%d;", index);
    int ok = arm_matches(ctx->st, value, desc);
    if (ok <= 0) {
        return ok < 0 ? NULL : mismatch(value, bad);
    }
    PyObject *kwargs = PyDict_New();
    for (int i = 0; kwargs != NULL && i < t->nfields; i++) {
        const mb_field *f = &t->fields[i];
        PyObject *item = python_field(t, value, i, mb_field_name(ctx->st, index, i, 0));
        if (item == NULL && !PyErr_Occurred() && !f->required) {
            item = Py_NewRef(Py_None); /* a TypedDict key that may be absent: an empty optional */
        }
        PyObject *conv = convert_field(item, value, f->name, f->type, ctx, bad, where);
        if (conv == NULL) {
            Py_CLEAR(kwargs);
            break;
        }
        int rc = PyDict_SetItem(kwargs, mb_field_name(ctx->st, index, i, 1), conv);
        Py_DECREF(conv);
        if (rc < 0) {
            Py_CLEAR(kwargs);
        }
    }
    if (kwargs == NULL) {
        return NULL;
    }
    PyObject *out = mb_make_mochi(ctx->st, t->mochi_name, kwargs);
    Py_DECREF(kwargs);
    return out;
}

static PyObject *union_convert(int index, PyObject *value, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    const mb_type *t = &ctx->st->spec->types[index];
    if (ctx->to_python) {
        const mb_field *f = mb_variant_of(ctx->st, t, value);
        if (f == NULL) {
            /* not a variant: a `value` holding the payload itself (the Mochi Python target cannot declare a sum
             * type whose payloads are not scalars), recognised by its runtime kind like a returned one */
            for (int i = 0; i < t->nfields; i++) {
                int ok = arm_matches(ctx->st, value, t->fields[i].type);
                if (ok < 0) {
                    return NULL;
                }
                if (ok) {
                    return mb_convert(value, t->fields[i].type, ctx, bad, where);
                }
            }
            return mismatch(value, bad);
        }
        PyObject *payload = mochi_field(value, ctx->st->str_v);
        if (payload == NULL) {
            return PyErr_Occurred() ? NULL : mismatch(value, bad);
        }
        PyObject *out = mb_convert(payload, f->type, ctx, bad, where);
        Py_DECREF(payload);
        if (out == NULL && !PyErr_Occurred()) {
            add_step(where, PyUnicode_FromFormat("(variant %s)", f->mochi_name));
        }
        return out;
    }
    for (int i = 0; i < t->nfields; i++) {
        const mb_field *f = &t->fields[i];
        int ok = arm_matches(ctx->st, value, f->type);
        if (ok < 0) {
            return NULL;
        }
        if (ok) {
            PyObject *conv = mb_convert(value, f->type, ctx, bad, where);
            if (conv == NULL) {
                return NULL;
            }
            PyObject *kwargs = Py_BuildValue("{sN}", "v", conv);
            PyObject *out = kwargs ? mb_make_mochi(ctx->st, f->mochi_name, kwargs) : NULL;
            Py_XDECREF(kwargs);
            return out;
        }
    }
    return mismatch(value, bad);
}

static PyObject *enum_convert(int index, PyObject *value, const mb_ctx *ctx, PyObject **bad)
{
    const mb_type *t = &ctx->st->spec->types[index];
    if (ctx->to_python) {
        const mb_field *f = mb_variant_of(ctx->st, t, value);
        if (f == NULL) {
            return mismatch(value, bad);
        }
        PyObject *cls = mb_resolve_type(ctx->st, index);
        PyObject *out = cls ? PyObject_GetAttr(cls, mb_field_name(ctx->st, index, (int)(f - t->fields), 0)) : NULL;
        Py_XDECREF(cls);
        return out;
    }
    int ok = is_type_instance(ctx->st, index, value);
    if (ok <= 0) {
        return ok < 0 ? NULL : mismatch(value, bad);
    }
    PyObject *name = PyObject_GetAttr(value, ctx->st->str_name);
    const char *text = name ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
    PyObject *out = NULL;
    for (int i = 0; text != NULL && i < t->nfields; i++) {
        if (strcmp(t->fields[i].name, text) == 0) {
            out = mb_make_mochi(ctx->st, t->fields[i].mochi_name, NULL);
            break;
        }
    }
    if (out == NULL && !PyErr_Occurred()) {
        mismatch(value, bad); /* a member the stubs did not list */
    }
    Py_XDECREF(name);
    return out;
}

static PyObject *convert_named(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad,
                               PyObject **where)
{
    int index = atoi(desc + 1);
    if (index < 0 || index >= ctx->st->spec->ntypes) {
        PyErr_Format(PyExc_SystemError, "mochi_bridge: named type %d out of range", index);
        return NULL;
    }
    switch (ctx->st->spec->types[index].kind) {
    case MB_TYPE_UNION:
        return union_convert(index, value, ctx, bad, where);
    case MB_TYPE_ENUM:
        return enum_convert(index, value, ctx, bad);
    default:
        return ctx->to_python ? record_to_python(index, value, ctx, bad, where)
                              : record_to_mochi(index, value, ctx, bad, where);
    }
}

static PyObject *convert_async_items(PyObject *value, const char *elem, const mb_ctx *ctx, PyObject **bad,
                                     PyObject **where)
{
    if (ctx->to_python) {
        PyErr_SetString(PyExc_SystemError, "mochi_bridge: async iterables cross on return only");
        return NULL;
    }
    PyObject *items = mb_run_async(ctx->st, value, 1);
    if (items == NULL) {
        return NULL;
    }
    PyObject *out = convert_items(items, elem, ctx, bad, where);
    Py_DECREF(items);
    return out;
}


/* ---- Fast paths for containers of scalars (exact list, tuple, dict, set) ------------------------
 * The general path above walks any iterable through the iterator protocol and recurses into
 * mb_convert per element. For the common case, an exact container whose element type is a scalar
 * (int, float, bool, string, `value`, or one of them optional), the elements are checked with the
 * exact-type tests inlined and the copy is made in one call (PyList_GetSlice, PySequence_List,
 * PyDict_Copy, PySet_New). Semantics are the same: an eager copy, every element checked, ints widened
 * where a float is declared. Anything the fast path does not settle (a subclass, a mismatch) makes it
 * give up without an error, and the general path converts the container from the start: so every
 * message, with the element's position, is the general path's own. */

/* Element kinds the fast paths take: a scalar descriptor code, optionally under `O`. */
typedef struct {
    char code;    /* 'i', 'f', 'b', 's' or 'V' */
    int optional; /* None is accepted too */
    int keep_int; /* going to Python: an int where a float is declared passes unchanged, as in mb_convert */
} scalar_elem;

static int scalar_element(const char *desc, scalar_elem *out)
{
    out->optional = desc[0] == 'O';
    char code = desc[out->optional];
    if (code == 'i' || code == 'f' || code == 'b' || code == 's' || code == 'V') {
        out->code = code;
        return 1;
    }
    return 0;
}

#define OK_AS_IS 1
#define OK_WIDEN 2 /* an exact int where a float is declared */

/* OK_AS_IS, OK_WIDEN, or 0: let the general path decide. Exact types only, so no Python code runs. */
static inline int element_ok(PyObject *item, scalar_elem e)
{
    PyTypeObject *t = Py_TYPE(item);
    switch (e.code) {
    case 'i': if (t == &PyLong_Type) return OK_AS_IS; break;
    case 's': if (t == &PyUnicode_Type) return OK_AS_IS; break;
    case 'b': if (t == &PyBool_Type) return OK_AS_IS; break;
    case 'V': return OK_AS_IS;
    case 'f':
        if (t == &PyFloat_Type) return OK_AS_IS;
        if (t == &PyLong_Type) return e.keep_int ? OK_AS_IS : OK_WIDEN;
        break;
    default: break;
    }
    return e.optional && item == Py_None ? OK_AS_IS : 0;
}

/* Check every element of an exact list or tuple: the number to widen, or -1 when not settled. One
 * loop per element kind, so the test inside is a single compare. */
#define MB_CHECK_LOOP(GET, TEST)                                                                              \
    _Pragma("GCC unroll 4") /* fewer loop tests between the PyList_GetItem calls */                          \
    for (Py_ssize_t i = 0; i < n; i++) {                                                                     \
        PyObject *item = GET(seq, i);                                                                        \
        if (!(TEST)) {                                                                                       \
            return -1;                                                                                       \
        }                                                                                                    \
    }
#define MB_CHECK_KINDS(GET)                                                                                   \
    switch (e.optional ? 0 : e.code) {                                                                       \
    case 'i': MB_CHECK_LOOP(GET, Py_TYPE(item) == &PyLong_Type) return 0;                                    \
    case 's': MB_CHECK_LOOP(GET, Py_TYPE(item) == &PyUnicode_Type) return 0;                                 \
    case 'b': MB_CHECK_LOOP(GET, Py_TYPE(item) == &PyBool_Type) return 0;                                    \
    case 'f':                                                                                                \
        MB_CHECK_LOOP(GET, Py_TYPE(item) == &PyFloat_Type || (Py_TYPE(item) == &PyLong_Type && ++widen))    \
        return e.keep_int ? 0 : widen;                                                                       \
    default: break;                                                                                          \
    }                                                                                                        \
    for (Py_ssize_t i = 0; i < n; i++) {                                                                     \
        int ok = element_ok(GET(seq, i), e);                                                                 \
        if (ok == 0) {                                                                                       \
            return -1;                                                                                       \
        }                                                                                                    \
        widen += ok == OK_WIDEN;                                                                             \
    }                                                                                                        \
    return widen;

static Py_ssize_t check_sequence(PyObject *seq, scalar_elem e, Py_ssize_t n)
{
    Py_ssize_t widen = 0;
    if (e.code == 'V') {
        return 0;
    }
    if (PyList_CheckExact(seq)) {
        MB_CHECK_KINDS(PyList_GetItem)
    }
    MB_CHECK_KINDS(PyTuple_GetItem)
}

/* Replace the exact ints of list *out* (which the caller owns alone) by floats. */
static int widen_list(PyObject *out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(out, i);
        if (Py_TYPE(item) == &PyLong_Type) {
            double d = PyLong_AsDouble(item);
            PyObject *f = d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
            if (f == NULL || PyList_SetItem(out, i, f) < 0) { /* steals f */
                return -1;
            }
        }
    }
    return 0;
}

/* An exact list or tuple -> a list, every element checked; *value* itself when *owned* (the caller's
 * reference is the only one: nothing else can see it, so a copy would be indistinguishable). */
static PyObject *fast_list(PyObject *value, scalar_elem e, int owned)
{
    int is_list = PyList_CheckExact(value);
    Py_ssize_t n = is_list ? PyList_Size(value) : PyTuple_Size(value);
    Py_ssize_t widen = check_sequence(value, e, n);
    if (widen < 0) {
        return NULL;
    }
    PyObject *out = !is_list ? PySequence_List(value)
                    : owned ? Py_NewRef(value) : PyList_GetSlice(value, 0, PY_SSIZE_T_MAX);
    if (out != NULL && widen > 0 && widen_list(out, n) < 0) {
        Py_CLEAR(out);
    }
    return out;
}

/* Check every item iterator *it* yields, calling its tp_iternext directly (PyIter_Next adds a call and
 * a test per item; a snapshot list would have to be filled, walked by PyList_GetItem and freed): the
 * number of exact ints to widen where a float is declared, -1 when not settled, -2 on an error. No
 * Python code runs meanwhile (exact types only, and the container keeps every item alive), so the
 * container cannot change. */
#define MB_ITER_LOOP(TEST)                                                                                    \
    while ((item = next(it)) != NULL) {                                                                      \
        int pass = (TEST);                                                                                   \
        Py_DECREF(item);                                                                                     \
        if (!pass) {                                                                                         \
            return -1;                                                                                       \
        }                                                                                                    \
    }                                                                                                        \
    break;

static Py_ssize_t check_iterator(PyObject *it, scalar_elem e)
{
    PyObject *item;
    Py_ssize_t widen = 0;
    int ok;
    iternextfunc next = (iternextfunc)PyType_GetSlot(Py_TYPE(it), Py_tp_iternext); /* static types: 3.10+ */
    if (next == NULL) {
        return PyErr_Occurred() ? -2 : -1;
    }
    switch (e.optional ? 0 : e.code) {
    case 'i': MB_ITER_LOOP(Py_TYPE(item) == &PyLong_Type)
    case 's': MB_ITER_LOOP(Py_TYPE(item) == &PyUnicode_Type)
    case 'b': MB_ITER_LOOP(Py_TYPE(item) == &PyBool_Type)
    case 'f':
        MB_ITER_LOOP(Py_TYPE(item) == &PyFloat_Type || (Py_TYPE(item) == &PyLong_Type && ++widen))
    default:
        MB_ITER_LOOP((ok = element_ok(item, e)) != 0 && (ok != OK_WIDEN || ++widen))
    }
    if (PyErr_Occurred()) {
        return -2;
    }
    return e.keep_int ? 0 : widen;
}

/* check_iterator over iter(obj), or over iter(view(obj)) when *view* (dict.keys or dict.values) is given. */
static Py_ssize_t check_items(PyObject *obj, PyObject *view, scalar_elem e)
{
    PyObject *source = view != NULL ? PyObject_CallFunctionObjArgs(view, obj, NULL) : Py_NewRef(obj);
    PyObject *it = source != NULL ? PyObject_GetIter(source) : NULL;
    Py_ssize_t widen = it != NULL ? check_iterator(it, e) : -2;
    Py_XDECREF(it);
    Py_XDECREF(source);
    return widen;
}

static PyObject *helper(mb_state *st, int which)
{
    return PyTuple_GetItem(st->helpers, which);
}

/* An exact dict with `s` (exact str) or `i` (exact int) keys -> a dict, every entry checked; *value*
 * itself when *owned*. Values (and int keys) are checked through the dict's own view iterators: a
 * PyDict_Next call per entry costs about twice as much. */
static PyObject *fast_dict(PyObject *value, char key_code, scalar_elem e, int owned, mb_state *st)
{
    Py_ssize_t pos = 0, widen = 0;
    PyObject *key, *item;
    if (key_code == 's') {
        /* "every key is a str" (PyUnicode_Check, as the general path asks), answered by CPython in O(1)
         * for the usual table of str keys; then only the values need a look */
        if (!PyArg_ValidateKeywordArguments(value)) {
            PyErr_Clear();
            return NULL;
        }
    }
    else {
        scalar_elem int_key = {'i', 0, 0};
        if (check_items(value, helper(st, MB_HELPER_DICT_KEYS), int_key) < 0) {
            return NULL;
        }
    }
    if (e.code != 'V' && (widen = check_items(value, helper(st, MB_HELPER_DICT_VALUES), e)) < 0) {
        return NULL;
    }
    PyObject *out = owned ? Py_NewRef(value) : PyDict_Copy(value);
    while (out != NULL && widen > 0 && PyDict_Next(out, &pos, &key, &item)) {
        if (Py_TYPE(item) == &PyLong_Type) {
            double d = PyLong_AsDouble(item);
            PyObject *f = d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
            /* replacing the value of a present key leaves the iteration valid (the key set is unchanged) */
            int rc = f != NULL ? PyDict_SetItem(out, key, f) : -1;
            Py_XDECREF(f);
            if (rc < 0) {
                Py_CLEAR(out);
            }
        }
    }
    return out;
}

/* No weak reference reaches *value*: with a reference count of one, nobody else can see it. */
static int unreferenced(mb_state *st, PyObject *value)
{
    PyObject *count = PyObject_CallFunctionObjArgs(helper(st, MB_HELPER_WEAKREFCOUNT), value, NULL);
    long n = count != NULL ? PyLong_AsLong(count) : -1;
    Py_XDECREF(count);
    if (n < 0) {
        PyErr_Clear(); /* then copy, as usual */
    }
    return n == 0;
}

/* An exact set or frozenset -> a set, every element checked (an exact int where a float is declared,
 * going to Mochi, is left to the general path: widening may merge elements); *value* itself when
 * *owned*, an exact set and not weakly referenced (a set, unlike a list or dict, can be: a weak
 * reference would alias it). */
static PyObject *fast_set(PyObject *value, scalar_elem e, int owned, mb_state *st)
{
    if (e.code != 'V' && check_items(value, NULL, e) != 0) {
        return NULL;
    }
    if (owned && PySet_CheckExact(value) && unreferenced(st, value)) {
        return Py_NewRef(value);
    }
    return PySet_New(value);
}

/* The fast path for descriptor desc (L, T, D, K or S) and value; NULL with no error set when it
 * does not apply or does not settle the value (take the general path). */
static PyObject *fast_container(PyObject *value, const char *desc, int owned, const mb_ctx *ctx)
{
    scalar_elem e;
    PyObject *out = NULL;
    if (!scalar_element(desc + 1, &e)) {
        return NULL;
    }
    e.keep_int = ctx->to_python;
    switch (desc[0]) {
    case 'L':
        out = PyList_CheckExact(value) ? fast_list(value, e, owned) : NULL;
        break;
    case 'T':
        out = PyList_CheckExact(value) || PyTuple_CheckExact(value) ? fast_list(value, e, owned) : NULL;
        break;
    case 'D': case 'K':
        out = PyDict_CheckExact(value) ? fast_dict(value, desc[0] == 'D' ? 's' : 'i', e, owned, ctx->st) : NULL;
        break;
    case 'S':
        out = PyAnySet_CheckExact(value) ? fast_set(value, e, owned, ctx->st) : NULL;
        break;
    default:
        break;
    }
    if (out == NULL && PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
        PyErr_Clear(); /* e.g. an int too large for a float: the general path raises it again, in its words */
    }
    return out;
}

static int is_container(char code)
{
    return code == 'L' || code == 'T' || code == 'D' || code == 'K' || code == 'S';
}

PyObject *mb_convert_owned(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
#ifndef Py_GIL_DISABLED
    if (is_container(desc[0]) && Py_REFCNT(value) == 1) {
        PyObject *fast = fast_container(value, desc, 1, ctx);
        if (fast != NULL || PyErr_Occurred()) {
            return fast;
        }
    }
#endif
    return mb_convert(value, desc, ctx, bad, where);
}

PyObject *mb_convert(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad, PyObject **where)
{
    if (is_container(desc[0])) {
        PyObject *fast = fast_container(value, desc, 0, ctx);
        if (fast != NULL || PyErr_Occurred()) {
            return fast;
        }
    }
    switch (desc[0]) {
    case 'i':
        return PyLong_Check(value) && !PyBool_Check(value) ? Py_NewRef(value) : mismatch(value, bad);
    case 'f':
        if (PyFloat_Check(value)) {
            return Py_NewRef(value);
        }
        if (PyLong_Check(value) && !PyBool_Check(value)) {
            if (ctx->to_python) {
                return Py_NewRef(value); /* Python's `float` takes an int: it is passed on unchanged */
            }
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
    case 'V':
        return Py_NewRef(value);
    case 'A':
        return convert_async_items(value, desc + 1, ctx, bad, where);
    case 'R':
        return convert_named(value, desc, ctx, bad, where);
    case 'C':
        if (!PyCallable_Check(value)) {
            return mismatch(value, bad);
        }
        return mb_wrap_callable(ctx->st, value, desc, !ctx->to_python);
    default:
        PyErr_Format(PyExc_SystemError, "mochi_bridge: corrupt type descriptor %s", desc);
        return NULL;
    }
}
