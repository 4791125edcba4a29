/* rt_module.c - module state, the callable extern type, and the call path.
 *
 * Shaped like CPython's Modules/xxlimited.c: multi-phase init, all state in the module object,
 * heap types only, no mutable static globals. The wrapped package is imported on the first call
 * of one of its functions, not when the wrapper loads.
 */
#include "mochi_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *module; /* the wrapper module: its state holds the spec and the resolved targets */
    int index;        /* position in spec->functions */
} mb_extern;

static mb_state *state_of(PyObject *module)
{
    return (mb_state *)PyModule_GetState(module);
}

/* getattr along a dotted path ("Class.method") from an imported module; a new reference. */
static PyObject *import_path(const char *module, const char *path)
{
    PyObject *obj = PyImport_ImportModule(module);
    const char *part = path;
    while (obj != NULL && part != NULL && *part) {
        const char *dot = strchr(part, '.');
        size_t len = dot ? (size_t)(dot - part) : strlen(part);
        PyObject *name = PyUnicode_FromStringAndSize(part, (Py_ssize_t)len);
        PyObject *next = name ? PyObject_GetAttr(obj, name) : NULL;
        Py_XDECREF(name);
        Py_DECREF(obj);
        obj = next;
        part = dot ? dot + 1 : NULL;
    }
    return obj;
}

/* The item *index* of a lazily filled list; resolved with import_path on first use. */
static PyObject *cached_path(PyObject *cache, int index, const char *module, const char *path)
{
    PyObject *found = PyList_GetItem(cache, index);
    if (found == NULL) {
        return NULL;
    }
    if (found != Py_None) {
        return Py_NewRef(found);
    }
    found = import_path(module, path);
    if (found == NULL) {
        return NULL;
    }
    if (PyList_SetItem(cache, index, Py_NewRef(found)) < 0) { /* steals one reference */
        Py_DECREF(found);
        return NULL;
    }
    return found;
}

PyObject *mb_resolve_class(mb_state *st, int index)
{
    if (index < 0 || index >= st->spec->nclasses) {
        PyErr_Format(PyExc_SystemError, "mochi_bridge: handle class %d out of range", index);
        return NULL;
    }
    const mb_class *cls = &st->spec->classes[index];
    return cached_path(st->classes, index, cls->py_module, cls->py_name);
}

/* Raise *exc_type* naming the function, what was checked, the expected Mochi type (for a handle, with
 * the class it must be an instance of) and the actual Python type, down to the element. */
static void raise_mismatch(mb_state *st, PyObject *exc_type, const mb_function *fn, const char *what,
                           const char *desc, const char *mochi_type, PyObject *bad, PyObject *where)
{
    char handle[256];
    const char *expected = mochi_type;
    if (desc[0] == 'H' && atoi(desc + 1) < st->spec->nclasses) {
        const mb_class *cls = &st->spec->classes[atoi(desc + 1)];
        snprintf(handle, sizeof handle, "%s (a %s.%s)", mochi_type, cls->py_module, cls->py_name);
        expected = handle;
    }
    PyObject *actual = PyType_GetName(Py_TYPE(bad));
    if (actual == NULL) {
        return;
    }
    if (where != NULL) {
        PyErr_Format(exc_type, "%s (%s.%s): %s expected %s, got %U at %U", fn->mochi_name, fn->py_module,
                     fn->py_name, what, expected, actual, where);
    }
    else {
        PyErr_Format(exc_type, "%s (%s.%s): %s expected %s, got %U", fn->mochi_name, fn->py_module, fn->py_name,
                     what, expected, actual);
    }
    Py_DECREF(actual);
}

#define MB_STACK_ARGS 8

/* A call's converted arguments: the handle of a method or getter, positional ones, keyword ones. */
typedef struct {
    PyObject *self;
    PyObject *kw;
    PyObject *varargs; /* the list of a `*args` parameter, spread after the positional arguments */
    PyObject **pos;
    Py_ssize_t npos;
    PyObject *stack[MB_STACK_ARGS]; /* pos points here unless there are more arguments */
} bound_args;

static void release_args(bound_args *b)
{
    for (Py_ssize_t i = 0; i < b->npos; i++) {
        Py_DECREF(b->pos[i]);
    }
    if (b->pos != b->stack) {
        PyMem_Free(b->pos);
    }
    Py_XDECREF(b->kw);
    Py_XDECREF(b->varargs);
    Py_XDECREF(b->self);
}

/* Convert the arguments: handles for methods and getters go to b->self, the rest to b->pos / b->kw. */
static int bind_args(mb_state *st, const mb_function *fn, PyObject *const *args, Py_ssize_t n, bound_args *b)
{
    mb_ctx ctx = {st, 1};
    int has_self = fn->kind == MB_METHOD || fn->kind == MB_GETATTR || fn->kind == MB_SETATTR;
    b->pos = n <= MB_STACK_ARGS ? b->stack : PyMem_Calloc((size_t)n, sizeof(PyObject *));
    if (b->pos == NULL) {
        b->pos = b->stack;
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const mb_param *p = &fn->params[i];
        PyObject *bad = NULL, *where = NULL;
        PyObject *conv = mb_exact_scalar(args[i], p->type);
        if (conv == NULL) {
            conv = mb_convert(args[i], p->type, &ctx, &bad, &where);
        }
        if (conv == NULL) {
            if (!PyErr_Occurred() && bad != NULL) {
                char what[160];
                snprintf(what, sizeof what, "parameter '%s'", p->mochi_name);
                raise_mismatch(st, PyExc_TypeError, fn, what, p->type, p->mochi_type, bad, where);
            }
            Py_XDECREF(bad);
            Py_XDECREF(where);
            return -1;
        }
        if (has_self && i == 0) {
            b->self = conv;
        }
        else if (p->flags & MB_PARAM_VARARGS) {
            b->varargs = conv;
        }
        else if (p->flags & MB_PARAM_KEYWORD) {
            if (b->kw == NULL && (b->kw = PyDict_New()) == NULL) {
                Py_DECREF(conv);
                return -1;
            }
            int rc = PyDict_SetItemString(b->kw, p->name, conv);
            Py_DECREF(conv);
            if (rc < 0) {
                return -1;
            }
        }
        else {
            b->pos[b->npos++] = conv;
        }
    }
    return 0;
}

/* Call with positional arguments from a C array. Up to eight and no keywords go through
 * PyObject_CallFunctionObjArgs, which CPython turns into a vectorcall without building a tuple (the
 * limited API of 3.11 has no PyObject_Vectorcall); otherwise a tuple and PyObject_Call. */
static PyObject *call_array(PyObject *target, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    if (kw == NULL) {
        switch (n) {
        case 0: return PyObject_CallNoArgs(target);
        case 1: return PyObject_CallFunctionObjArgs(target, a[0], NULL);
        case 2: return PyObject_CallFunctionObjArgs(target, a[0], a[1], NULL);
        case 3: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], NULL);
        case 4: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], a[3], NULL);
        case 5: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], a[3], a[4], NULL);
        case 6: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        case 7: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL);
        case 8: return PyObject_CallFunctionObjArgs(target, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
        default: break;
        }
    }
    PyObject *tuple = PyTuple_New(n);
    for (Py_ssize_t i = 0; tuple != NULL && i < n; i++) {
        PyTuple_SetItem(tuple, i, Py_NewRef(a[i])); /* cannot fail: a fresh tuple, an index in range */
    }
    PyObject *out = tuple ? PyObject_Call(target, tuple, kw) : NULL;
    Py_XDECREF(tuple);
    return out;
}

static PyObject *invoke(mb_state *st, int index, const mb_function *fn, const bound_args *b)
{
    if (fn->kind == MB_CAST) {
        return Py_NewRef(b->pos[0]);
    }
    if (fn->kind == MB_GETATTR) {
        return PyObject_GetAttr(b->self, PyTuple_GetItem(st->attr_names, index));
    }
    if (fn->kind == MB_SETATTR) {
        if (PyObject_SetAttr(b->self, PyTuple_GetItem(st->attr_names, index), b->pos[0]) < 0) {
            return NULL;
        }
        return Py_NewRef(Py_None);
    }
    PyObject *target = fn->kind == MB_METHOD ? PyObject_GetAttr(b->self, PyTuple_GetItem(st->attr_names, index))
                                             : cached_path(st->targets, index, fn->py_module, fn->py_name);
    if (target == NULL || fn->kind == MB_CONSTANT) {
        return target;
    }
    PyObject *result;
    if (b->varargs != NULL) { /* rare: a tuple of the positional arguments and the list's items */
        PyObject *all = PyList_GetSlice(b->varargs, 0, PyList_Size(b->varargs));
        for (Py_ssize_t i = b->npos - 1; all != NULL && i >= 0; i--) {
            if (PyList_Insert(all, 0, b->pos[i]) < 0) {
                Py_CLEAR(all);
            }
        }
        PyObject *tuple = all ? PyList_AsTuple(all) : NULL;
        result = tuple ? PyObject_Call(target, tuple, b->kw) : NULL;
        Py_XDECREF(tuple);
        Py_XDECREF(all);
    }
    else {
        result = call_array(target, b->pos, b->npos, b->kw);
    }
    Py_DECREF(target);
    if (result != NULL && (fn->flags & MB_FN_ASYNC)) {
        PyObject *awaitable = result;
        result = mb_run_async(st, awaitable, 0);
        Py_DECREF(awaitable);
    }
    return result;
}

static PyObject *new_exception(PyObject *module, const char *name, PyObject *base, const char *doc);

/* The MochiBridgeError subclass named after a Python exception type (created once per module). */
static PyObject *error_class(PyObject *module, mb_state *st, PyObject *type_name)
{
    PyObject *cls = PyDict_GetItemWithError(st->errors, type_name); /* borrowed */
    if (cls != NULL || PyErr_Occurred()) {
        return Py_XNewRef(cls);
    }
    const char *name = PyUnicode_AsUTF8AndSize(type_name, NULL);
    if (name == NULL) {
        return NULL;
    }
    cls = new_exception(module, name, st->error_type, "A Python exception raised through a Mochi extern.");
    if (cls != NULL && PyDict_SetItem(st->errors, type_name, cls) < 0) {
        Py_CLEAR(cls);
    }
    return cls;
}

/* Re-raise a Python exception from a wrapped call as the Mochi runtime's catchable error
 * (mochi_runtime.except_.MochiPanic, code 7 = MOCHI_ERR_FFI) when that runtime is importable, else as
 * a MochiBridgeError subclass named after the original type; the original stays as __cause__.
 * BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit) pass through unchanged. */
/* mochi_runtime.except_ when the Mochi runtime is in this process: already imported, or importable. The
 * import is tried once per module (a failing import searches sys.path each time). New reference or NULL,
 * with no error set. */
static PyObject *mochi_runtime(mb_state *st)
{
    PyObject *name = PyUnicode_FromString("mochi_runtime.except_");
    PyObject *mod = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (mod == NULL && !PyErr_Occurred() && !st->runtime_looked_up) {
        st->runtime_looked_up = 1;
        mod = PyImport_ImportModule("mochi_runtime.except_");
    }
    if (mod == NULL) {
        PyErr_Clear();
    }
    return mod;
}

static void translate_error(PyObject *module, mb_state *st)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value == NULL || !PyObject_IsInstance(value, PyExc_Exception) || PyObject_IsInstance(value, st->error_type) ||
        PyObject_IsInstance(value, st->mismatch_type)) {
        PyErr_Restore(type, value, tb);
        return;
    }
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *name = PyType_GetName((PyTypeObject *)type);
    PyObject *text = PyObject_Str(value);
    PyObject *replacement = NULL;
    if (name != NULL && text != NULL) {
        PyObject *runtime = mochi_runtime(st);
        PyObject *panic = runtime ? mb_getattr(runtime, "MochiPanic") : NULL;
        if (panic != NULL) {
            PyObject *message = PyUnicode_FromFormat("%U: %U", name, text);
            replacement = message ? PyObject_CallFunction(panic, "iO", 7, message) : NULL;
            Py_XDECREF(message);
        }
        else {
            PyErr_Clear(); /* no Mochi runtime in this process: the bridge's own classes */
            PyObject *cls = error_class(module, st, name);
            replacement = cls ? PyObject_CallFunctionObjArgs(cls, text, NULL) : NULL;
            Py_XDECREF(cls);
        }
        Py_XDECREF(panic);
        Py_XDECREF(runtime);
    }
    Py_XDECREF(name);
    Py_XDECREF(text);
    if (replacement == NULL) { /* translating failed: the original error is the more useful one */
        PyErr_Clear();
        PyErr_Restore(type, value, tb);
        return;
    }
    PyException_SetCause(replacement, Py_NewRef(value)); /* steals the new reference */
    PyErr_SetObject((PyObject *)Py_TYPE(replacement), replacement);
    Py_DECREF(replacement);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* The body of every extern: METH_FASTCALL, so Python passes the arguments as a C array. */
static PyObject *extern_fastcall(PyObject *self_obj, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    mb_extern *ex = (mb_extern *)self_obj;
    if (kwnames != NULL && PyTuple_Size(kwnames) > 0) { /* Mochi passes arguments positionally (and so must Python) */
        mb_state *st = state_of(ex->module);
        PyErr_Format(PyExc_TypeError, "%s() takes positional arguments only",
                     st ? st->spec->functions[ex->index].mochi_name : "extern");
        return NULL;
    }
    return mb_call_extern(ex->module, ex->index, args, nargs);
}

PyObject *mb_call_extern(PyObject *module, int index, PyObject *const *args, Py_ssize_t n)
{
    mb_state *st = state_of(module);
    return st ? mb_call_extern_in(st, module, index, args, n) : NULL;
}

PyObject *mb_call_extern_in(mb_state *st, PyObject *module, int index, PyObject *const *args, Py_ssize_t n)
{
    const mb_function *fn = &st->spec->functions[index];
    int required = fn->nrequired;
    if (n < required || n > fn->nparams) {
        if (required == fn->nparams) {
            PyErr_Format(PyExc_TypeError, "%s() takes %d argument%s (%zd given)", fn->mochi_name, required,
                         required == 1 ? "" : "s", n);
        }
        else {
            PyErr_Format(PyExc_TypeError, "%s() takes %d to %d arguments (%zd given)", fn->mochi_name, required,
                         fn->nparams, n);
        }
        return NULL;
    }
    bound_args b; /* stack[] is not zeroed: only the first npos entries are ever read */
    b.self = b.kw = b.varargs = NULL;
    b.pos = b.stack;
    b.npos = 0;
    PyObject *result = NULL, *out = NULL;
    if (bind_args(st, fn, args, n, &b) < 0) {
        goto done;
    }
    result = invoke(st, index, fn, &b);
    if (result == NULL) {
        translate_error(module, st);
        goto done;
    }
    if (fn->ret[0] == 'n' || (!st->spec->strict_returns && fn->kind != MB_CAST)) {
        out = fn->ret[0] == 'n' ? Py_NewRef(Py_None) : Py_NewRef(result);
        goto done;
    }
    mb_ctx ctx = {st, 0};
    PyObject *bad = NULL, *where = NULL;
    out = mb_exact_scalar(result, fn->ret);
    if (out == NULL) {
        out = mb_convert_owned(result, fn->ret, &ctx, &bad, &where);
    }
    if (out == NULL && !PyErr_Occurred() && bad != NULL) {
        raise_mismatch(st, st->mismatch_type, fn, "return value", fn->ret, fn->ret_mochi, bad, where);
    }
    Py_XDECREF(bad);
    Py_XDECREF(where);
done:
    Py_XDECREF(result);
    release_args(&b);
    return out;
}

static PyObject *extern_repr(PyObject *self)
{
    mb_extern *ex = (mb_extern *)self;
    mb_state *st = state_of(ex->module);
    if (st == NULL) {
        return NULL;
    }
    const mb_function *fn = &st->spec->functions[ex->index];
    return PyUnicode_FromFormat("<mochi extern %s -> %s.%s>", fn->mochi_name, fn->py_module, fn->py_name);
}

static int extern_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((mb_extern *)self)->module);
    return 0;
}

static int extern_clear(PyObject *self)
{
    Py_CLEAR(((mb_extern *)self)->module);
    return 0;
}

static void extern_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    extern_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot extern_slots[] = {
    {Py_tp_repr, extern_repr},
    {Py_tp_traverse, extern_traverse},
    {Py_tp_clear, extern_clear},
    {Py_tp_dealloc, extern_dealloc},
    {0, NULL},
};

static PyType_Spec extern_spec = {
    .name = "mochi_bridge.Extern",
    .basicsize = sizeof(mb_extern),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = extern_slots,
};

static PyObject *new_exception(PyObject *module, const char *name, PyObject *base, const char *doc)
{
    const char *modname = PyModule_GetName(module);
    if (modname == NULL) {
        return NULL;
    }
    char qualified[256];
    snprintf(qualified, sizeof qualified, "%s.%s", modname, name);
    return PyErr_NewExceptionWithDoc(qualified, doc, base, NULL);
}

/* _mochi_bind(resolver): where records and variants returned to Mochi get their classes. A Mochi
 * program binds its generated module (a callable name -> class); the re-export module binds its own
 * dataclasses (a mapping). */
static PyObject *mb_bind(PyObject *module, PyObject *resolver)
{
    mb_state *st = state_of(module);
    if (st == NULL) {
        return NULL;
    }
    if (resolver != Py_None && !PyCallable_Check(resolver) && !PyMapping_Check(resolver)) {
        PyErr_SetString(PyExc_TypeError, "_mochi_bind() takes a mapping or a callable: Mochi type name -> class");
        return NULL;
    }
    PyObject *old = st->binder;
    st->binder = Py_NewRef(resolver);
    Py_XDECREF(old);
    PyDict_Clear(st->mochi_classes);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_mochi_bind", mb_bind, METH_O,
     "_mochi_bind(resolver)\n--\n\nSet the classes records, sum-type variants and enum variants are returned as: "
     "a mapping or a callable from the Mochi type (or variant) name to a class taking the fields as keywords."},
    {NULL, NULL, 0, NULL},
};

/* Each extern is a builtin function (METH_FASTCALL: the cheapest call the limited API offers) whose
 * self is an Extern object naming the module and the descriptor. The method definitions live in
 * the module state, freed with the module (every function keeps the module alive through self). */
static int add_externs(PyObject *module, mb_state *st)
{
    int n = st->spec->nfunctions;
    st->defs = PyMem_Calloc((size_t)n + 1, sizeof(PyMethodDef));
    PyObject *modname = PyModule_GetNameObject(module);
    if (st->defs == NULL || modname == NULL) {
        Py_XDECREF(modname);
        PyErr_NoMemory();
        return -1;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)st->extern_type, Py_tp_alloc);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const mb_function *fn = &st->spec->functions[i];
        st->defs[i] = (PyMethodDef){fn->mochi_name, (PyCFunction)(void (*)(void))extern_fastcall,
                                    METH_FASTCALL | METH_KEYWORDS, NULL};
        mb_extern *ex = (mb_extern *)alloc((PyTypeObject *)st->extern_type, 0);
        if (ex == NULL) {
            rc = -1;
            break;
        }
        ex->module = Py_NewRef(module);
        ex->index = i;
        PyObject *func = PyCFunction_NewEx(&st->defs[i], (PyObject *)ex, modname);
        Py_DECREF(ex);
        rc = func ? PyModule_AddObjectRef(module, fn->mochi_name, func) : -1;
        Py_XDECREF(func);
    }
    Py_DECREF(modname);
    return rc;
}

/* Make the locked packages importable, and the lock win: `mochi-py lock` installs them into
 * python_wrap/site-packages, one directory above each wrapper, which goes FIRST on sys.path (moved
 * there if it is already further down), so an older or newer copy elsewhere on the path is never the
 * one imported. A module without __file__ (linked into a host) has nothing to add. *site_out is a new
 * reference to the directory, or NULL when there is none. */
static int add_site_path(PyObject *module, PyObject **site_out)
{
    *site_out = NULL;
    PyObject *file = PyModule_GetFilenameObject(module);
    if (file == NULL) {
        PyErr_Clear();
        return 0;
    }
    int rc = -1;
    PyObject *dir = NULL, *joined = NULL, *site = NULL, *isdir = NULL;
    PyObject *os_path = PyImport_ImportModule("os.path");
    if (os_path == NULL || (dir = PyObject_CallMethod(os_path, "dirname", "O", file)) == NULL ||
        (joined = PyObject_CallMethod(os_path, "join", "Oss", dir, "..", "site-packages")) == NULL ||
        (site = PyObject_CallMethod(os_path, "normpath", "O", joined)) == NULL ||
        (isdir = PyObject_CallMethod(os_path, "isdir", "O", site)) == NULL) {
        goto done;
    }
    if (isdir == Py_True) {
        PyObject *path = PySys_GetObject("path"); /* borrowed */
        if (path != NULL && PyList_Check(path)) {
            PyObject *first = PyList_Size(path) > 0 ? PyList_GetItem(path, 0) : NULL; /* borrowed */
            int at_front = first != NULL ? PyObject_RichCompareBool(first, site, Py_EQ) : 0;
            if (at_front < 0) {
                goto done;
            }
            while (!at_front) {
                int has = PySequence_Contains(path, site);
                if (has < 0) {
                    goto done;
                }
                if (!has) {
                    break;
                }
                PyObject *gone = PyObject_CallMethod(path, "remove", "O", site);
                if (gone == NULL) {
                    goto done;
                }
                Py_DECREF(gone);
            }
            if (!at_front && PyList_Insert(path, 0, site) < 0) {
                goto done;
            }
        }
        *site_out = Py_NewRef(site);
    }
    rc = 0;
done:
    Py_XDECREF(isdir);
    Py_XDECREF(site);
    Py_XDECREF(joined);
    Py_XDECREF(dir);
    Py_XDECREF(os_path);
    Py_DECREF(file);
    return rc;
}

/* The version of *dist* installed where *mod* (already imported) was loaded from, as a new str
 * reference: from its distribution's metadata in that directory, else its __version__, else
 * "an unknown version". NULL with an exception set on failure. */
static PyObject *imported_version(PyObject *os_path, PyObject *mod, PyObject *file, const char *dist)
{
    PyObject *base = NULL, *where = NULL, *metadata = NULL, *found = NULL, *kwargs = NULL, *empty = NULL;
    PyObject *func = NULL, *iter = NULL, *first = NULL, *version = NULL;
    int is_package = PyObject_HasAttrString(mod, "__path__");
    PyObject *top = PyObject_CallMethod(os_path, "dirname", "O", file);
    if (top == NULL) {
        return NULL;
    }
    base = is_package ? PyObject_CallMethod(os_path, "dirname", "O", top) : Py_NewRef(top);
    if (base == NULL || (where = Py_BuildValue("[O]", base)) == NULL ||
        (metadata = PyImport_ImportModule("importlib.metadata")) == NULL ||
        (func = PyObject_GetAttrString(metadata, "distributions")) == NULL ||
        (kwargs = Py_BuildValue("{s:s,s:O}", "name", dist, "path", where)) == NULL ||
        (empty = PyTuple_New(0)) == NULL || (found = PyObject_Call(func, empty, kwargs)) == NULL ||
        (iter = PyObject_GetIter(found)) == NULL) {
        goto done;
    }
    first = PyIter_Next(iter);
    if (first == NULL && PyErr_Occurred()) {
        goto done;
    }
    version = first != NULL ? PyObject_GetAttrString(first, "version") : PyObject_GetAttrString(mod, "__version__");
    if (version == NULL || !PyUnicode_Check(version)) {
        PyErr_Clear();
        Py_XDECREF(version);
        version = PyUnicode_FromString("an unknown version");
    }
done:
    Py_XDECREF(first);
    Py_XDECREF(iter);
    Py_XDECREF(found);
    Py_XDECREF(empty);
    Py_XDECREF(kwargs);
    Py_XDECREF(func);
    Py_XDECREF(metadata);
    Py_XDECREF(where);
    Py_XDECREF(base);
    Py_DECREF(top);
    return version;
}

/* Refuse to run against another version of the wrapped distribution than the locked one: when one of
 * its import names (spec->imports) is already in sys.modules, loaded from outside *site* and of another
 * version, raise ImportError naming both versions. Returns 0 when the wrapper may run. */
static int refuse_other_version(const mb_module_spec *spec, PyObject *site)
{
    if (spec->imports == NULL || *spec->imports == '\0') {
        return 0;
    }
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    if (modules == NULL || !PyDict_Check(modules)) {
        return 0;
    }
    PyObject *os_path = PyImport_ImportModule("os.path");
    if (os_path == NULL) {
        return -1;
    }
    PyObject *real_site = NULL, *prefix = NULL;
    if ((real_site = PyObject_CallMethod(os_path, "realpath", "O", site)) == NULL ||
        (prefix = PyObject_CallMethod(os_path, "join", "Os", real_site, "")) == NULL) {
        Py_XDECREF(real_site);
        Py_DECREF(os_path);
        return -1;
    }
    int rc = 0;
    const char *name = spec->imports;
    while (rc == 0 && *name) {
        const char *end = strchr(name, ' ');
        size_t len = end ? (size_t)(end - name) : strlen(name);
        PyObject *key = PyUnicode_FromStringAndSize(name, (Py_ssize_t)len);
        name = end ? end + 1 : name + len;
        PyObject *mod = key != NULL ? PyDict_GetItemWithError(modules, key) : NULL; /* borrowed */
        if (mod == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            Py_XDECREF(key);
            continue;
        }
        PyObject *file = PyObject_GetAttrString(mod, "__file__");
        if (file == NULL || !PyUnicode_Check(file)) { /* a namespace package or a built-in: nothing to compare */
            PyErr_Clear();
            Py_XDECREF(file);
            Py_DECREF(key);
            continue;
        }
        PyObject *real = PyObject_CallMethod(os_path, "realpath", "O", file);
        PyObject *inside = real != NULL ? PyObject_CallMethod(real, "startswith", "O", prefix) : NULL;
        if (inside == NULL) {
            rc = -1;
        } else if (inside != Py_True) {
            PyObject *version = imported_version(os_path, mod, file, spec->dist);
            if (version == NULL) {
                rc = -1;
            } else if (PyUnicode_CompareWithASCIIString(version, spec->version) != 0) {
                PyErr_Format(PyExc_ImportError,
                             "%s %U is already imported (module %U from %U), but this wrapper was locked against "
                             "%s %s (%U): import the wrapper before anything imports %U, or lock the version in "
                             "use (mochi.toml, then `mochi-py lock`)",
                             spec->dist, version, key, file, spec->dist, spec->version, site, key);
                rc = -1;
            }
            Py_XDECREF(version);
        }
        Py_XDECREF(inside);
        Py_XDECREF(real);
        Py_DECREF(file);
        Py_DECREF(key);
    }
    Py_DECREF(prefix);
    Py_DECREF(real_site);
    Py_DECREF(os_path);
    return rc;
}

static PyObject *none_list(int n)
{
    PyObject *list = PyList_New(n);
    for (int i = 0; list != NULL && i < n; i++) {
        if (PyList_SetItem(list, i, Py_NewRef(Py_None)) < 0) {
            Py_CLEAR(list);
        }
    }
    return list;
}

int mb_module_exec(PyObject *module, const mb_module_spec *spec)
{
    mb_state *st = state_of(module);
    if (st == NULL) {
        return -1;
    }
    st->spec = spec;
    st->mismatch_type = new_exception(module, "PythonTypeMismatch", PyExc_TypeError,
                                      "A Python function returned a value of another type than it declares.");
    if (st->mismatch_type == NULL || PyModule_AddObjectRef(module, "PythonTypeMismatch", st->mismatch_type) < 0) {
        return -1;
    }
    st->error_type = new_exception(module, "MochiBridgeError", PyExc_Exception, "Base of the bridge's errors.");
    if (st->error_type == NULL || PyModule_AddObjectRef(module, "MochiBridgeError", st->error_type) < 0) {
        return -1;
    }
    st->extern_type = PyType_FromModuleAndSpec(module, &extern_spec, NULL);
    st->callback_type = PyType_FromModuleAndSpec(module, &mb_callback_spec, NULL);
    if (st->extern_type == NULL || st->callback_type == NULL) {
        return -1;
    }
    st->targets = none_list(spec->nfunctions);
    st->classes = none_list(spec->nclasses);
    st->py_types = none_list(spec->ntypes);
    st->errors = PyDict_New();
    st->mochi_classes = PyDict_New();
    st->binder = Py_NewRef(Py_None);
    if (st->targets == NULL || st->classes == NULL || st->py_types == NULL || st->errors == NULL ||
        st->mochi_classes == NULL) {
        return -1;
    }
    if (PyModule_AddFunctions(module, module_methods) < 0 || mb_names_init(st) < 0) {
        return -1;
    }
    if (PyModule_AddStringConstant(module, "__mochi_dist__", spec->dist) < 0 ||
        PyModule_AddStringConstant(module, "__mochi_version__", spec->version) < 0) {
        return -1;
    }
    PyObject *site = NULL;
    if (add_site_path(module, &site) < 0) {
        return -1;
    }
    int refused = site != NULL ? refuse_other_version(spec, site) : 0;
    Py_XDECREF(site);
    if (refused < 0 || mb_capi_add(module) < 0) {
        return -1;
    }
    return add_externs(module, st);
}

int mb_module_traverse(PyObject *module, visitproc visit, void *arg)
{
    mb_state *st = state_of(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->extern_type);
    Py_VISIT(st->mismatch_type);
    Py_VISIT(st->error_type);
    Py_VISIT(st->targets);
    Py_VISIT(st->classes);
    Py_VISIT(st->errors);
    Py_VISIT(st->callback_type);
    Py_VISIT(st->py_types);
    Py_VISIT(st->binder);
    Py_VISIT(st->mochi_classes);
    Py_VISIT(st->attr_names);
    Py_VISIT(st->field_names);
    Py_VISIT(st->helpers);
    Py_VISIT(st->str_v);
    Py_VISIT(st->str_name);
    return 0;
}

int mb_module_clear(PyObject *module)
{
    mb_state *st = state_of(module);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->extern_type);
    Py_CLEAR(st->mismatch_type);
    Py_CLEAR(st->error_type);
    Py_CLEAR(st->targets);
    Py_CLEAR(st->classes);
    Py_CLEAR(st->errors);
    Py_CLEAR(st->callback_type);
    Py_CLEAR(st->py_types);
    Py_CLEAR(st->binder);
    Py_CLEAR(st->mochi_classes);
    Py_CLEAR(st->attr_names);
    Py_CLEAR(st->field_names);
    Py_CLEAR(st->helpers);
    Py_CLEAR(st->str_v);
    Py_CLEAR(st->str_name);
    return 0;
}

void mb_module_free(void *module)
{
    (void)mb_module_clear((PyObject *)module);
    mb_state *st = state_of((PyObject *)module);
    if (st != NULL) {
        PyMem_Free(st->defs);
        st->defs = NULL;
    }
}
