/* rt_capi.c - the C ABI for native Mochi hosts (documented in mochi_bridge.h).
 *
 * Each entry point takes the GIL, converts the host's tagged values into the Mochi-side Python
 * values the Python face takes (so argument checks, the call, exception translation and the return
 * check (R3) are the same code path), and converts the checked result back into a tagged value the
 * host owns. The function table travels in a capsule, _mochi_<dist>._mochi_c_api, so the runtime's
 * symbols stay hidden.
 */
#include "mochi_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_FN_CAPSULE "mochi_bridge.host_fn"

static const char *const kind_names[] = {"unit", "none", "int", "float", "bool", "string", "bytes", "list", "set",
                                         "map", "record", "variant", "handle", "function"};

static const char *kind_name(int kind)
{
    return kind >= 0 && kind <= MB_V_FUNC ? kind_names[kind] : "unknown kind";
}

static void set_error(mb_error *err, int code, const char *message)
{
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", message);
}

/* A Python exception -> *err (with the code given), the exception cleared. */
static void error_from_python(mb_error *err, int code)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *name = type ? PyType_GetName((PyTypeObject *)type) : NULL;
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *n = name ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
    const char *t = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s: %s", n ? n : "error", t ? t : "");
    PyErr_Clear();
    Py_XDECREF(name);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static PyObject *value_to_py(mb_state *st, const mb_value *v, const char *desc, mb_error *err);
static int py_to_value(mb_state *st, PyObject *obj, const char *desc, mb_value *out, mb_error *err);
static void release_value(mb_value *v);

static PyObject *kind_error(mb_state *st, const mb_value *v, const char *desc, mb_error *err)
{
    PyObject *expected = mb_describe(st, desc);
    const char *e = expected ? PyUnicode_AsUTF8AndSize(expected, NULL) : NULL;
    err->code = MB_ERR_ARGUMENT;
    snprintf(err->message, sizeof err->message, "expected %s, got a %s value", e ? e : desc, kind_name(v->kind));
    Py_XDECREF(expected);
    PyErr_Clear();
    return NULL;
}

/* ---- host functions handed to Python as callables ------------------------------------------- */

typedef struct {
    mb_host_fn fn;
    void *ctx;
    const char *desc; /* C<k>;... in the module's static spec */
    PyObject *module; /* keeps the spec alive */
} host_fn;

static void host_fn_free(PyObject *capsule)
{
    host_fn *h = (host_fn *)PyCapsule_GetPointer(capsule, HOST_FN_CAPSULE);
    if (h != NULL) {
        Py_XDECREF(h->module);
        PyMem_Free(h);
    }
}

static PyObject *host_fn_call(PyObject *capsule, PyObject *args)
{
    host_fn *h = (host_fn *)PyCapsule_GetPointer(capsule, HOST_FN_CAPSULE);
    mb_state *st = h ? (mb_state *)PyModule_GetState(h->module) : NULL;
    if (st == NULL) {
        return NULL;
    }
    const char *pos = NULL;
    long k = mb_callable_params(h->desc, &pos);
    Py_ssize_t n = PyTuple_Size(args);
    if (n != k) {
        PyErr_Format(PyExc_TypeError, "host function takes %ld arguments (%zd given)", k, n);
        return NULL;
    }
    mb_value *values = PyMem_Calloc((size_t)(k ? k : 1), sizeof(mb_value));
    if (values == NULL) {
        return PyErr_NoMemory();
    }
    mb_error err = {0, ""};
    int ok = 1;
    for (long i = 0; ok && i < k; i++) {
        ok = py_to_value(st, PyTuple_GetItem(args, i), pos, &values[i], &err) == 0;
        pos = mb_desc_end(pos);
    }
    mb_value result = {MB_V_UNIT, 0, 0, {.i = 0}};
    PyObject *out = NULL;
    int rc = -1;
    if (ok) { /* the host's code runs without the GIL; its calls back into the ABI take it again */
        PyThreadState *ts = PyEval_SaveThread();
        rc = h->fn(h->ctx, values, (size_t)k, &result, &err);
        PyEval_RestoreThread(ts);
    }
    if (rc == 0) {
        out = pos[0] == 'n' ? Py_NewRef(Py_None) : value_to_py(st, &result, pos, &err);
    }
    if (out == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, err.message[0] ? err.message : "host function failed");
    }
    for (long i = 0; i < k; i++) {
        release_value(&values[i]);
    }
    PyMem_Free(values);
    return out; /* the host keeps ownership of *result* (it may point at its own storage) */
}

static PyMethodDef host_fn_def = {"mochi_host_function", host_fn_call, METH_VARARGS, "A native host's function."};

static PyObject *host_callable(mb_state *st, const mb_value *v, const char *desc)
{
    host_fn *h = PyMem_Malloc(sizeof(host_fn));
    if (h == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *module = PyType_GetModule((PyTypeObject *)st->callback_type); /* borrowed */
    *h = (host_fn){v->u.func.fn, v->u.func.ctx, desc, Py_XNewRef(module)};
    PyObject *capsule = PyCapsule_New(h, HOST_FN_CAPSULE, host_fn_free);
    if (capsule == NULL) {
        Py_XDECREF(h->module);
        PyMem_Free(h);
        return NULL;
    }
    PyObject *fn = PyCFunction_NewEx(&host_fn_def, capsule, NULL);
    Py_DECREF(capsule);
    return fn;
}

/* ---- host value -> Mochi-side Python value ------------------------------------------------- */

static PyObject *items_to_py(mb_state *st, const mb_value *v, const char *elem, int as_set, mb_error *err)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < v->len; i++) {
        PyObject *item = value_to_py(st, &v->u.items[i], elem, err);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(item);
    }
    if (list == NULL || !as_set) {
        return list;
    }
    PyObject *set = PySet_New(list);
    Py_DECREF(list);
    return set;
}

static PyObject *named_to_py(mb_state *st, const mb_value *v, const char *desc, mb_error *err)
{
    const mb_type *t = &st->spec->types[atoi(desc + 1)];
    if (t->kind == MB_TYPE_UNION || t->kind == MB_TYPE_ENUM) {
        if (v->kind != MB_V_VARIANT || v->tag < 0 || v->tag >= t->nfields ||
            v->len != (t->kind == MB_TYPE_UNION ? 1u : 0u)) {
            return kind_error(st, v, desc, err);
        }
        const mb_field *f = &t->fields[v->tag];
        if (t->kind == MB_TYPE_ENUM) {
            return mb_make_mochi(st, f->mochi_name, NULL);
        }
        PyObject *payload = value_to_py(st, &v->u.items[0], f->type, err);
        PyObject *kwargs = payload ? Py_BuildValue("{sN}", "v", payload) : NULL;
        PyObject *out = kwargs ? mb_make_mochi(st, f->mochi_name, kwargs) : NULL;
        Py_XDECREF(kwargs);
        return out;
    }
    if (v->kind != MB_V_RECORD || v->len != (size_t)t->nfields) {
        return kind_error(st, v, desc, err);
    }
    PyObject *fields = PyDict_New(); /* records are read by field name: a dict is enough */
    for (int i = 0; fields != NULL && i < t->nfields; i++) {
        PyObject *item = value_to_py(st, &v->u.items[i], t->fields[i].type, err);
        if (item == NULL || PyDict_SetItem(fields, mb_field_name(st, atoi(desc + 1), i, 1), item) < 0) {
            Py_CLEAR(fields);
        }
        Py_XDECREF(item);
    }
    return fields;
}

static PyObject *value_to_py(mb_state *st, const mb_value *v, const char *desc, mb_error *err)
{
    switch (desc[0]) {
    case 'O':
        return v->kind == MB_V_NONE ? Py_NewRef(Py_None) : value_to_py(st, v, desc + 1, err);
    case 'i':
        return v->kind == MB_V_INT ? PyLong_FromLongLong(v->u.i) : kind_error(st, v, desc, err);
    case 'f':
        if (v->kind == MB_V_INT) {
            return PyFloat_FromDouble((double)v->u.i);
        }
        return v->kind == MB_V_FLOAT ? PyFloat_FromDouble(v->u.f) : kind_error(st, v, desc, err);
    case 'b':
        return v->kind == MB_V_BOOL ? PyBool_FromLong(v->u.b) : kind_error(st, v, desc, err);
    case 's':
        return v->kind == MB_V_STRING ? PyUnicode_FromStringAndSize(v->u.s, (Py_ssize_t)v->len)
                                      : kind_error(st, v, desc, err);
    case 'Y': {
        if (v->kind != MB_V_BYTES) {
            return kind_error(st, v, desc, err);
        }
        PyObject *bytes = PyBytes_FromStringAndSize(v->u.s, (Py_ssize_t)v->len);
        PyObject *list = bytes ? PySequence_List(bytes) : NULL; /* the Mochi side holds list<int> */
        Py_XDECREF(bytes);
        return list;
    }
    case 'L': case 'T': case 'A':
        return v->kind == MB_V_LIST ? items_to_py(st, v, desc + 1, 0, err) : kind_error(st, v, desc, err);
    case 'S':
        return v->kind == MB_V_SET ? items_to_py(st, v, desc + 1, 1, err) : kind_error(st, v, desc, err);
    case 'D': case 'K': {
        if (v->kind != MB_V_MAP) {
            return kind_error(st, v, desc, err);
        }
        PyObject *dict = PyDict_New();
        const char key_desc[2] = {desc[0] == 'D' ? 's' : 'i', 0};
        for (size_t i = 0; dict != NULL && i < v->len; i++) {
            PyObject *key = value_to_py(st, &v->u.items[2 * i], key_desc, err);
            PyObject *item = key ? value_to_py(st, &v->u.items[2 * i + 1], desc + 1, err) : NULL;
            if (item == NULL || PyDict_SetItem(dict, key, item) < 0) {
                Py_CLEAR(dict);
            }
            Py_XDECREF(key);
            Py_XDECREF(item);
        }
        return dict;
    }
    case 'R':
        return named_to_py(st, v, desc, err);
    case 'H': case 'V':
        return v->kind == MB_V_HANDLE && v->u.handle ? Py_NewRef((PyObject *)v->u.handle) : kind_error(st, v, desc, err);
    case 'C':
        return v->kind == MB_V_FUNC && v->u.func.fn ? host_callable(st, v, desc) : kind_error(st, v, desc, err);
    default:
        return kind_error(st, v, desc, err);
    }
}

/* ---- Mochi-side Python value (already checked) -> host value --------------------------------- */

static int mismatch_error(mb_error *err, const char *what, PyObject *obj)
{
    PyObject *name = PyType_GetName(Py_TYPE(obj));
    const char *n = name ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
    err->code = MB_ERR_MISMATCH;
    snprintf(err->message, sizeof err->message, "%s, got %s", what, n ? n : "?");
    Py_XDECREF(name);
    PyErr_Clear();
    return -1;
}

static int seq_to_value(mb_state *st, PyObject *obj, const char *elem, int kind, mb_value *out, mb_error *err)
{
    PyObject *list = PySequence_List(obj);
    Py_ssize_t n = list ? PyList_Size(list) : -1;
    if (n < 0) {
        Py_XDECREF(list);
        return mismatch_error(err, "expected a list", obj);
    }
    out->kind = kind;
    out->u.items = calloc((size_t)(n ? n : 1), sizeof(mb_value));
    out->len = out->u.items ? (size_t)n : 0; /* zeroed slots are MB_V_UNIT: releasing them frees nothing */
    int rc = out->u.items ? 0 : -1;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        rc = py_to_value(st, PyList_GetItem(list, i), elem, &out->u.items[i], err);
    }
    Py_DECREF(list);
    if (out->u.items == NULL) {
        set_error(err, MB_ERR_USAGE, "out of memory");
    }
    return rc;
}

static int named_to_value(mb_state *st, PyObject *obj, const char *desc, mb_value *out, mb_error *err)
{
    const mb_type *t = &st->spec->types[atoi(desc + 1)];
    if (t->kind == MB_TYPE_UNION || t->kind == MB_TYPE_ENUM) {
        const mb_field *variant = mb_variant_of(st, t, obj);
        if (variant == NULL) {
            return mismatch_error(err, "expected a variant", obj);
        }
        int tag = (int)(variant - t->fields);
        out->kind = MB_V_VARIANT;
        out->tag = tag;
        out->len = 0;
        if (t->kind == MB_TYPE_ENUM) {
            return 0;
        }
        out->u.items = calloc(1, sizeof(mb_value));
        out->len = out->u.items != NULL;
        PyObject *payload = out->u.items ? PyObject_GetAttr(obj, st->str_v) : NULL;
        int rc = payload ? py_to_value(st, payload, t->fields[tag].type, &out->u.items[0], err) : -1;
        Py_XDECREF(payload);
        return rc == 0 ? 0 : (err->code ? -1 : mismatch_error(err, "expected a variant payload", obj));
    }
    out->kind = MB_V_RECORD;
    out->u.items = calloc((size_t)t->nfields, sizeof(mb_value));
    out->len = out->u.items ? (size_t)t->nfields : 0;
    int rc = out->u.items ? 0 : -1;
    for (int i = 0; rc == 0 && i < t->nfields; i++) {
        PyObject *key = mb_field_name(st, atoi(desc + 1), i, 1);
        PyObject *item = PyDict_Check(obj) ? Py_XNewRef(PyDict_GetItemWithError(obj, key)) : PyObject_GetAttr(obj, key);
        rc = item ? py_to_value(st, item, t->fields[i].type, &out->u.items[i], err)
                  : mismatch_error(err, "expected a record", obj);
        Py_XDECREF(item);
    }
    return rc;
}

static int py_to_value(mb_state *st, PyObject *obj, const char *desc, mb_value *out, mb_error *err)
{
    memset(out, 0, sizeof *out);
    switch (desc[0]) {
    case 'n':
        out->kind = MB_V_UNIT;
        return 0;
    case 'O':
        if (obj == Py_None) {
            out->kind = MB_V_NONE;
            return 0;
        }
        return py_to_value(st, obj, desc + 1, out, err);
    case 'i': {
        int overflow = 0;
        int is_int = PyLong_CheckExact(obj) || PyLong_Check(obj); /* exact first: no call into the API */
        long long i = is_int ? PyLong_AsLongLongAndOverflow(obj, &overflow) : -1;
        if (!is_int || overflow || (i == -1 && PyErr_Occurred())) {
            return mismatch_error(err, overflow ? "expected an int of 64 bits" : "expected int", obj);
        }
        out->kind = MB_V_INT;
        out->u.i = i;
        return 0;
    }
    case 'f':
        out->kind = MB_V_FLOAT;
        out->u.f = PyFloat_AsDouble(obj);
        return out->u.f == -1.0 && PyErr_Occurred() ? mismatch_error(err, "expected float", obj) : 0;
    case 'b':
        out->kind = MB_V_BOOL;
        out->u.b = obj == Py_True;
        return PyBool_Check(obj) ? 0 : mismatch_error(err, "expected bool", obj);
    case 's': {
        Py_ssize_t len = 0;
        const char *utf8 = PyUnicode_Check(obj) ? PyUnicode_AsUTF8AndSize(obj, &len) : NULL;
        if (utf8 == NULL) {
            return mismatch_error(err, "expected string", obj);
        }
        out->kind = MB_V_STRING;
        out->len = (size_t)len;
        out->u.s = malloc((size_t)len + 1);
        if (out->u.s == NULL) {
            set_error(err, MB_ERR_USAGE, "out of memory");
            return -1;
        }
        memcpy(out->u.s, utf8, (size_t)len + 1);
        return 0;
    }
    case 'Y': {
        PyObject *bytes = PyBytes_FromObject(obj); /* the Mochi side holds a list of ints 0..255 */
        char *data = NULL;
        Py_ssize_t len = 0;
        if (bytes == NULL || PyBytes_AsStringAndSize(bytes, &data, &len) < 0) {
            Py_XDECREF(bytes);
            return mismatch_error(err, "expected bytes", obj);
        }
        out->kind = MB_V_BYTES;
        out->len = (size_t)len;
        out->u.s = malloc((size_t)len + 1);
        if (out->u.s != NULL) {
            memcpy(out->u.s, data, (size_t)len);
            out->u.s[len] = 0;
        }
        Py_DECREF(bytes);
        return out->u.s ? 0 : -1;
    }
    case 'L': case 'T': case 'A':
        return seq_to_value(st, obj, desc + 1, MB_V_LIST, out, err);
    case 'S':
        return seq_to_value(st, obj, desc + 1, MB_V_SET, out, err);
    case 'D': case 'K': {
        PyObject *items = PyDict_Check(obj) ? PyDict_Items(obj) : NULL;
        Py_ssize_t n = items ? PyList_Size(items) : -1;
        if (n < 0) {
            Py_XDECREF(items);
            return mismatch_error(err, "expected a map", obj);
        }
        out->kind = MB_V_MAP;
        out->u.items = calloc((size_t)(2 * n + 1), sizeof(mb_value));
        out->len = out->u.items ? (size_t)n : 0; /* zeroed slots: releasing an unfilled pair frees nothing */
        int rc = out->u.items ? 0 : -1;
        const char key_desc[2] = {desc[0] == 'D' ? 's' : 'i', 0};
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
            PyObject *pair = PyList_GetItem(items, i);
            rc = py_to_value(st, PyTuple_GetItem(pair, 0), key_desc, &out->u.items[2 * i], err);
            if (rc == 0) {
                rc = py_to_value(st, PyTuple_GetItem(pair, 1), desc + 1, &out->u.items[2 * i + 1], err);
            }
        }
        Py_DECREF(items);
        return rc;
    }
    case 'R':
        return named_to_value(st, obj, desc, out, err);
    default: /* H, V, C: the object itself, as a handle */
        out->kind = MB_V_HANDLE;
        out->u.handle = Py_NewRef(obj);
        return 0;
    }
}

/* ---- the entry points --------------------------------------------------------------------------- */

static void release_value(mb_value *v)
{
    switch (v->kind) {
    case MB_V_STRING: case MB_V_BYTES:
        free(v->u.s);
        break;
    case MB_V_LIST: case MB_V_SET: case MB_V_RECORD: case MB_V_VARIANT: case MB_V_MAP: {
        size_t n = v->kind == MB_V_MAP ? 2 * v->len : v->len;
        for (size_t i = 0; v->u.items != NULL && i < n; i++) {
            release_value(&v->u.items[i]);
        }
        free(v->u.items);
        break;
    }
    case MB_V_HANDLE:
        Py_XDECREF((PyObject *)v->u.handle);
        break;
    default:
        break;
    }
    memset(v, 0, sizeof *v);
}

static void capi_release(mb_value *value)
{
    PyGILState_STATE gil = PyGILState_Ensure(); /* handles are dropped under the GIL */
    release_value(value);
    PyGILState_Release(gil);
}

static int capi_lookup(mb_module *m, const char *mochi_name)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    mb_state *st = (mb_state *)PyModule_GetState((PyObject *)m);
    int found = -1;
    for (int i = 0; st != NULL && i < st->spec->nfunctions; i++) {
        if (strcmp(st->spec->functions[i].mochi_name, mochi_name) == 0) {
            found = i;
            break;
        }
    }
    PyErr_Clear();
    PyGILState_Release(gil);
    return found;
}

/* The end of call and invoke: the Mochi-side result *out* (stolen) as the host's value of type *ret*, or,
 * when the call failed, the error as *err*: a return mismatch, an argument the checks refused (Python's
 * own TypeErrors come back translated as MochiBridgeError), or what Python raised. 0 or -1. */
static inline int finish_call(mb_state *st, PyObject *out, const char *ret, mb_value *result, mb_error *err)
{
    int rc = -1;
    if (out != NULL) {
        rc = py_to_value(st, out, ret, result, err);
        if (rc < 0) {
            release_value(result);
        }
        Py_DECREF(out);
    }
    else if (!err->code) {
        error_from_python(err, PyErr_ExceptionMatches(st->mismatch_type) ? MB_ERR_MISMATCH
                               : PyErr_ExceptionMatches(PyExc_TypeError) ? MB_ERR_ARGUMENT : MB_ERR_PYTHON);
    }
    if (rc != 0) {
        PyErr_Clear(); /* everything the host needs is in *err */
    }
    return rc;
}

static int capi_call(mb_module *m, int index, const mb_value *args, size_t nargs, mb_value *result, mb_error *err)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = (PyObject *)m;
    mb_state *st = (mb_state *)PyModule_GetState(module);
    int rc = -1;
    memset(result, 0, sizeof *result);
    err->code = MB_OK;
    err->message[0] = 0;
    if (st == NULL || index < 0 || index >= st->spec->nfunctions) {
        set_error(err, MB_ERR_USAGE, "no extern with that index: use lookup()");
        PyErr_Clear();
        PyGILState_Release(gil);
        return -1;
    }
    const mb_function *fn = &st->spec->functions[index];
    if (nargs > (size_t)fn->nparams) {
        err->code = MB_ERR_USAGE;
        snprintf(err->message, sizeof err->message, "%s takes at most %d arguments", fn->mochi_name, fn->nparams);
        PyGILState_Release(gil);
        return -1;
    }
    PyObject *stack[8];
    PyObject **items = nargs <= 8 ? stack : PyMem_Calloc(nargs, sizeof(PyObject *));
    size_t made = 0;
    for (; items != NULL && made < nargs; made++) {
        items[made] = value_to_py(st, &args[made], fn->params[made].type, err);
        if (items[made] == NULL) {
            if (err->code) { /* name the parameter in front of what value_to_py said */
                char detail[sizeof err->message];
                snprintf(detail, sizeof detail, "%s", err->message);
                snprintf(err->message, sizeof err->message, "%.200s: parameter '%.200s' %.600s", fn->mochi_name,
                         fn->params[made].mochi_name, detail);
            }
            break;
        }
    }
    PyObject *out = items != NULL && made == nargs ? mb_call_extern_in(st, module, index, items, (Py_ssize_t)nargs) : NULL;
    for (size_t i = 0; items != NULL && i < made; i++) {
        Py_DECREF(items[i]);
    }
    if (items != stack) {
        PyMem_Free(items);
    }
    rc = finish_call(st, out, fn->ret, result, err);
    PyGILState_Release(gil);
    return rc;
}

/* Calls a Callback object (a `fun` return): Mochi-side arguments in, its own checks, Mochi-side result out. */
static int capi_invoke(mb_module *m, const mb_value *fn, const mb_value *args, size_t nargs, mb_value *result,
                       mb_error *err)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    mb_state *st = (mb_state *)PyModule_GetState((PyObject *)m);
    const char *desc = st && fn->kind == MB_V_HANDLE && fn->u.handle ? mb_callback_desc(st, (PyObject *)fn->u.handle)
                                                                    : NULL;
    int rc = -1;
    memset(result, 0, sizeof *result);
    err->code = MB_OK;
    err->message[0] = 0;
    const char *pos = NULL;
    long k = desc ? mb_callable_params(desc, &pos) : -1;
    if (desc == NULL || (long)nargs != k) {
        set_error(err, MB_ERR_USAGE, desc ? "wrong number of arguments for this function value"
                                          : "not a function value returned by this wrapper");
        PyErr_Clear();
        PyGILState_Release(gil);
        return -1;
    }
    PyObject *tuple = PyTuple_New((Py_ssize_t)nargs);
    for (size_t i = 0; tuple != NULL && i < nargs; i++) {
        PyObject *item = value_to_py(st, &args[i], pos, err);
        if (item == NULL || PyTuple_SetItem(tuple, (Py_ssize_t)i, item) < 0) { /* steals item */
            Py_CLEAR(tuple);
        }
        pos = mb_desc_end(pos);
    }
    PyObject *out = tuple ? PyObject_Call((PyObject *)fn->u.handle, tuple, NULL) : NULL;
    Py_XDECREF(tuple);
    rc = finish_call(st, out, pos, result, err);
    PyGILState_Release(gil);
    return rc;
}

static const mb_api capi = {MB_C_ABI_VERSION, capi_lookup, capi_call, capi_release, capi_invoke};

static void capsule_free(PyObject *capsule)
{
    PyMem_Free((void *)PyCapsule_GetName(capsule));
}

int mb_capi_add(PyObject *module)
{
    const char *modname = PyModule_GetName(module);
    if (modname == NULL) {
        return -1;
    }
    size_t size = strlen(modname) + sizeof "._mochi_c_api";
    char *name = PyMem_Malloc(size); /* a capsule's name must outlive it: freed by its destructor */
    if (name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    snprintf(name, size, "%s._mochi_c_api", modname);
    PyObject *capsule = PyCapsule_New((void *)&capi, name, capsule_free);
    if (capsule == NULL) {
        PyMem_Free(name);
        return -1;
    }
    int rc = PyModule_AddObjectRef(module, "_mochi_c_api", capsule);
    Py_DECREF(capsule);
    return rc;
}
