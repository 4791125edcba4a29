/* mochi_bridge.h - the runtime every generated wrapper module links.
 *
 * A generated wrapper is data: a table of mb_function descriptors (Python target, parameters,
 * type descriptors) handed to mb_module_exec() from the module's Py_mod_exec slot. The runtime
 * turns each descriptor into a callable module attribute that checks its arguments, calls the
 * Python function, and checks and copies the return value (R3).
 *
 * Type descriptors are prefix strings shared with tasks/surface/typedesc.py:
 *   i int, f float, b bool, s str, n None (returns only), V any object (a Mochi `value`), O<x> x | None,
 *   L<x> list, T<x> any iterable Python returns (materialised), A<x> an async iterable Python returns
 *   (materialised on the event loop), D<x> dict[str, x], K<x> dict[int, x], S<x> set,
 *   Y bytes (a list of ints 0..255 on the Mochi side), H<n>; a handle: an instance of class n,
 *   R<n>; the module's named type n (record, sum type or enum), C<k>;<a1>..<ak><r> a callable.
 *
 * Limited API only: define Py_LIMITED_API (the project's requires-python floor, at least 3.11)
 * before including this header. Every symbol here is hidden, so many wrappers can be loaded into
 * one process without clashing.
 */
#ifndef MOCHI_BRIDGE_H
#define MOCHI_BRIDGE_H

#ifndef Py_LIMITED_API
#error "mochi_bridge.h: define Py_LIMITED_API (e.g. 0x030b0000) before including it"
#endif
#if Py_LIMITED_API + 0 < 0x030b0000
#error "mochi_bridge.h needs Py_LIMITED_API >= 3.11 (PyType_GetName)"
#endif

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__GNUC__) || defined(__clang__)
#define MB_HIDDEN __attribute__((visibility("hidden")))
#else
#define MB_HIDDEN
#endif

/* Parameter flags. */
#define MB_PARAM_REQUIRED 1 /* must be passed; optional ones may be omitted from the end */
#define MB_PARAM_KEYWORD 2  /* passed to Python by keyword (follows a left-out parameter) */
#define MB_PARAM_VARARGS 4  /* `*args`: a list whose items are spread into the call after the positional ones */

/* One parameter of a wrapped function. */
typedef struct {
    const char *name;       /* Python parameter name */
    const char *mochi_name; /* name in the Mochi declaration */
    const char *type;       /* type descriptor */
    const char *mochi_type; /* Mochi spelling of the type, for messages */
    int flags;
} mb_param;

/* What calling an extern does. */
#define MB_CALL 0     /* call py_module.py_name (a dotted path: functions, class and static methods) */
#define MB_NEW 1      /* call the class py_module.py_name: a constructor */
#define MB_METHOD 2   /* the first argument is a handle: call its attribute py_name */
#define MB_GETATTR 3  /* the first argument is a handle: return its attribute py_name (properties, fields) */
#define MB_CONSTANT 4 /* return py_module.py_name itself (a module constant) */
#define MB_CAST 5     /* return the single argument, checked against ret (`[python].any = "handle"`) */
#define MB_SETATTR 6  /* the first argument is a handle: set its attribute py_name to the second (a setter) */

/* Function flags. */
#define MB_FN_ASYNC 1 /* the call returns an awaitable: run it to completion on the event loop */

/* One wrapped function. */
typedef struct {
    const char *mochi_name; /* attribute name and Mochi extern name */
    const char *py_module;  /* module imported on first call */
    const char *py_name;    /* attribute path in py_module, or the attribute of the handle */
    int kind;               /* MB_CALL, MB_NEW, ... */
    int flags;              /* MB_FN_ASYNC */
    const mb_param *params;
    int nparams;
    int nrequired;          /* parameters that must be passed (the first ones) */
    const char *ret;        /* type descriptor; "n" for no return value */
    const char *ret_mochi;  /* Mochi spelling of the return type */
} mb_function;

/* A class whose instances cross as handles: the isinstance check of H<n>; descriptors. */
typedef struct {
    const char *py_module;
    const char *py_name; /* attribute path of the class in py_module */
    const char *methods; /* a protocol: space-separated attributes a value must have (no isinstance); or NULL */
} mb_class;

/* Kinds of named types (R<n>;). Records copy field by field; sum types and enums are a Mochi class
 * per variant, chosen by the value's class name on the way in. */
#define MB_TYPE_DATACLASS 0  /* Python class built with keyword arguments, fields read as attributes */
#define MB_TYPE_NAMEDTUPLE 1 /* the same, and an instance of the class */
#define MB_TYPE_TYPEDDICT 2  /* a dict; a field that is not required may be absent */
#define MB_TYPE_TUPLE 3      /* a tuple of exactly nfields items (fields item0, item1, ...) */
#define MB_TYPE_UNION 4      /* one variant per arm: the first arm whose runtime kind matches, payload `v` */
#define MB_TYPE_ENUM 5       /* one payload-less variant per member of the Enum class */

/* A record field, a union arm or an enum member. */
typedef struct {
    const char *name;       /* Python field name, tuple position, or enum member name */
    const char *mochi_name; /* Mochi field name, or variant (class) name */
    const char *type;       /* descriptor; NULL for enum members */
    int required;           /* TypedDict: 0 when the key may be absent */
} mb_field;

/* A named type. */
typedef struct {
    int kind;               /* MB_TYPE_* */
    const char *mochi_name; /* the Mochi type name */
    const char *py_module;  /* the Python class (dataclass, namedtuple, enum); "" otherwise */
    const char *py_name;
    const mb_field *fields;
    int nfields;
} mb_type;

#define MB_ASYNC_PER_CALL 0   /* a fresh event loop per call (asyncio.Runner), the default */
#define MB_ASYNC_PERSISTENT 1 /* one process-wide loop, created at first use with a one-time warning */

/* One generated module. */
typedef struct {
    const char *dist;
    const char *version;
    const mb_function *functions;
    int nfunctions;
    const mb_class *classes;
    int nclasses;
    const mb_type *types;
    int ntypes;
    int strict_returns; /* 0: return values pass through unchecked ([python].strict-return-types) */
    int async_mode;     /* MB_ASYNC_PER_CALL or MB_ASYNC_PERSISTENT */
    const char *imports; /* the distribution's own top-level import names, space-separated (NULL: none known):
                          * one already imported from elsewhere at another version refuses the wrapper */
} mb_module_spec;

/* Per-module state; its size is the module definition's m_size. */
typedef struct {
    const mb_module_spec *spec;
    PyObject *extern_type;   /* heap type of the callable externs */
    PyObject *mismatch_type; /* PythonTypeMismatch(TypeError) */
    PyObject *error_type;    /* MochiBridgeError(Exception) */
    PyObject *targets;       /* list: the resolved Python callables, None until first call */
    PyObject *classes;       /* list: the resolved handle classes, None until first use */
    PyObject *errors;        /* dict: Python exception type name -> MochiBridgeError subclass */
    PyObject *callback_type; /* heap type wrapping callables that cross (C<k>; descriptors) */
    PyObject *py_types;      /* list: the Python classes of named types, None until first use */
    PyObject *binder;        /* mapping or callable: Mochi type/variant name -> class (set by _mochi_bind) */
    PyObject *mochi_classes; /* dict: the binder's answers, cached */
    PyMethodDef *defs;       /* one per extern (PyMem), freed with the module */
    int runtime_looked_up;   /* the import of mochi_runtime.except_ was tried (see translate_error) */
    /* Interned names for the per-call paths (attribute lookups key the type cache on the name object). */
    PyObject *attr_names;    /* tuple: each function's py_name */
    PyObject *field_names;   /* tuple: per named type, a tuple name0, mochi_name0, name1, mochi_name1, ... */
    PyObject *helpers;       /* tuple: the objects the container fast paths call (rt_convert.c, MB_HELPER_*) */
    PyObject *str_v;         /* "v", the payload of a sum-type variant */
    PyObject *str_name;      /* "name", an enum member's name */
} mb_state;

/* Conversion context: the module state (for handle classes) and the direction. */
typedef struct {
    mb_state *st;
    int to_python; /* 1: Mochi value -> Python argument; 0: Python return -> Mochi value */
} mb_ctx;

/* Py_mod_exec body: builds the state, the exception types and one extern per descriptor. */
MB_HIDDEN int mb_module_exec(PyObject *module, const mb_module_spec *spec);
/* m_traverse / m_clear / m_free of every generated module. */
MB_HIDDEN int mb_module_traverse(PyObject *module, visitproc visit, void *arg);
MB_HIDDEN int mb_module_clear(PyObject *module);
MB_HIDDEN void mb_module_free(void *module);

/* Check *value* against descriptor *desc* and return a new, converted reference (containers
 * copied, ints widened to float where a float is declared). On a type mismatch returns NULL with
 * no exception set, *bad a new reference to the offending value and *where its path; on any other
 * failure returns NULL with an exception set. */
MB_HIDDEN PyObject *mb_convert(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad,
                               PyObject **where);

/* mb_convert of a value the caller holds the only reference to (a fresh return value): an exact list,
 * tuple, dict or (not weakly referenced) set of scalars is checked in place and, being invisible to
 * anyone else, passed on itself instead of copied. */
MB_HIDDEN PyObject *mb_convert_owned(PyObject *value, const char *desc, const mb_ctx *ctx, PyObject **bad,
                                     PyObject **where);

/* The fast path of mb_convert for a lone scalar descriptor whose value already has exactly that type
 * (the common case): a new reference, or NULL (no error set) to take the general path. */
static inline PyObject *mb_exact_scalar(PyObject *value, const char *desc)
{
    if (desc[0] == 0 || desc[1] != 0) {
        return NULL;
    }
    switch (desc[0]) {
    case 'i': return PyLong_CheckExact(value) ? Py_NewRef(value) : NULL;
    case 'f': return PyFloat_CheckExact(value) ? Py_NewRef(value) : NULL;
    case 's': return PyUnicode_CheckExact(value) ? Py_NewRef(value) : NULL;
    case 'b': return PyBool_Check(value) ? Py_NewRef(value) : NULL;
    default: return NULL;
    }
}

/* The class of handle descriptor H<index>; (imported on first use), as a new reference. */
MB_HIDDEN PyObject *mb_resolve_class(mb_state *st, int index);
/* The variant of sum type or enum *t* a Mochi value is (by its bound class, else its class name); NULL,
 * with no error set, when it is none of them. */
MB_HIDDEN const mb_field *mb_variant_of(mb_state *st, const mb_type *t, PyObject *value);
/* The Python class of named type index (dataclass, namedtuple, enum), as a new reference. */
MB_HIDDEN PyObject *mb_resolve_type(mb_state *st, int index);
/* The Mochi-side class called *name* (a record or a variant), from the bound resolver. */
MB_HIDDEN PyObject *mb_mochi_class(mb_state *st, const char *name);
/* Run an awaitable (collect = 0) or drain an async iterable into a list (collect = 1) on the loop. */
MB_HIDDEN PyObject *mb_run_async(mb_state *st, PyObject *obj, int collect);
/* A callable that converts across the boundary around *target* (desc points at a C<k>; descriptor).
 * args_to_python: 1 when Mochi calls it (a Python callable returned), 0 when Python calls it. */
MB_HIDDEN PyObject *mb_wrap_callable(mb_state *st, PyObject *target, const char *desc, int args_to_python);
/* The C<k>; descriptor of a Callback object of this module; NULL when *obj* is none. */
MB_HIDDEN const char *mb_callback_desc(mb_state *st, PyObject *obj);
/* The spec of the Callback heap type (rt_callback.c). */
MB_HIDDEN extern PyType_Spec mb_callback_spec;
/* Build the interned names of mb_state (from Py_mod_exec). */
MB_HIDDEN int mb_names_init(mb_state *st);
/* The interned Python (mochi = 0) or Mochi (mochi = 1) name of field *field* of named type *index*; borrowed. */
MB_HIDDEN PyObject *mb_field_name(mb_state *st, int index, int field, int mochi);
/* getattr with an interned name (for lookups off the per-call paths): the type attribute cache keys on the name object, so a fresh string
 * per call would miss it every time (and churn its entries). */
MB_HIDDEN PyObject *mb_getattr(PyObject *obj, const char *name);
/* The parameter count of a C<k>; descriptor; *first is set to its first parameter's descriptor. */
MB_HIDDEN long mb_callable_params(const char *desc, const char **first);
/* callable(**kwargs) (kwargs may be NULL). */
MB_HIDDEN PyObject *mb_call_kwargs(PyObject *callable, PyObject *kwargs);
/* An instance of the bound Mochi class *name* (a record or variant), built with keywords *kwargs*. */
MB_HIDDEN PyObject *mb_make_mochi(mb_state *st, const char *name, PyObject *kwargs);
/* The end of the single descriptor starting at desc. */
MB_HIDDEN const char *mb_desc_end(const char *desc);
/* A readable Mochi spelling of a descriptor for messages (`list<int>`), a new str. */
MB_HIDDEN PyObject *mb_describe(mb_state *st, const char *desc);

/* ===================================================================================================
 * The C ABI for native Mochi hosts.
 *
 * A host that embeds CPython (Py_Initialize, or an interpreter it already runs) loads a generated
 * wrapper through this ABI only:
 *
 *     const mb_api *api; mb_error err;
 *     mb_module *m = mb_open("tablefix", &api, &err);       // imports tablefix_externs + the capsule
 *     int add = api->lookup(m, "tablefix_add");              // index of an extern, -1 if absent
 *     mb_value args[2] = {mb_int(2), mb_int(3)}, out;
 *     if (api->call(m, add, args, 2, &out, &err) == 0) { ... out.u.i ...; api->release(&out); }
 *     mb_close(m);
 *
 * Every entry point takes the GIL with PyGILState_Ensure (so any host thread may call) and gives it
 * back before returning. Values the host passes in are only read. Values the runtime returns are
 * owned by the host and freed with api->release(), which also drops handles under the GIL. The
 * kinds follow the Mochi side of the type table (DESIGN §6):
 *
 *   Mochi type            kind           payload
 *   int / float / bool    MB_V_INT ...   u.i / u.f / u.b
 *   string                MB_V_STRING    u.s: UTF-8, NUL-terminated, len bytes
 *   list<int> of bytes    MB_V_BYTES     u.s: len raw bytes (Python bytes / bytearray)
 *   list<T> / set<T>      MB_V_LIST/SET  u.items[len]
 *   map<K, V>             MB_V_MAP       u.items[2 * len]: key, value, key, value, ...
 *   record                MB_V_RECORD    u.items[len]: the fields in declaration order
 *   sum type / enum       MB_V_VARIANT   tag: the variant's index; u.items[len]: its payload (0 or 1)
 *   T? when absent        MB_V_NONE      -
 *   value (a handle)      MB_V_HANDLE    u.handle: a strong reference to the Python object
 *   fun(A...): R          MB_V_FUNC      u.func: a host function, as an argument; a callable Python
 *                                        returns comes back as MB_V_HANDLE, called with api->invoke
 *   no return value       MB_V_UNIT      -
 * =================================================================================================== */

#include <stddef.h>
#include <stdint.h>

#define MB_C_ABI_VERSION 1

enum {
    MB_V_UNIT = 0,
    MB_V_NONE,
    MB_V_INT,
    MB_V_FLOAT,
    MB_V_BOOL,
    MB_V_STRING,
    MB_V_BYTES,
    MB_V_LIST,
    MB_V_SET,
    MB_V_MAP,
    MB_V_RECORD,
    MB_V_VARIANT,
    MB_V_HANDLE,
    MB_V_FUNC,
};

/* Error codes (mb_error.code); 0 is success. */
enum {
    MB_OK = 0,
    MB_ERR_MISMATCH = 1, /* PythonTypeMismatch: Python returned a value its stub does not allow (R3) */
    MB_ERR_ARGUMENT = 2, /* an argument does not fit its parameter's type */
    MB_ERR_PYTHON = 3,   /* the Python function raised; message is "Type: text" */
    MB_ERR_USAGE = 4,    /* no such extern, wrong argument count, ABI version, import failure */
};

typedef struct {
    int code;
    char message[1024];
} mb_error;

typedef struct mb_value mb_value;

/* A host function passed where Python expects a callable. It runs with the GIL released (it may call
 * the ABI again, which takes it). Return 0 and fill *result, which stays the host's (read, not freed),
 * or return -1 and fill *err (err->message becomes the Python exception's text). */
typedef int (*mb_host_fn)(void *ctx, const mb_value *args, size_t nargs, mb_value *result, mb_error *err);

struct mb_value {
    int kind; /* MB_V_* */
    int tag;  /* MB_V_VARIANT: index of the variant in its type */
    size_t len;
    union {
        int64_t i;
        double f;
        int b;
        char *s;
        mb_value *items;
        void *handle;
        struct {
            mb_host_fn fn;
            void *ctx;
        } func;
    } u;
};

typedef struct mb_module mb_module; /* opaque: a loaded wrapper */

typedef struct {
    int version; /* MB_C_ABI_VERSION */
    int (*lookup)(mb_module *m, const char *mochi_name);
    int (*call)(mb_module *m, int index, const mb_value *args, size_t nargs, mb_value *result, mb_error *err);
    void (*release)(mb_value *value);
    /* Call a function value Python returned (an MB_V_HANDLE from a `fun(...)` return), converting and
     * checking like call(); MB_ERR_USAGE when the handle is no such function. */
    int (*invoke)(mb_module *m, const mb_value *fn, const mb_value *args, size_t nargs, mb_value *result,
                  mb_error *err);
} mb_api;

/* Constructors for arguments (nothing to release: the host owns what it passes). */
static inline mb_value mb_int(int64_t i) { mb_value v = {MB_V_INT, 0, 0, {.i = i}}; return v; }
static inline mb_value mb_float(double f) { mb_value v = {MB_V_FLOAT, 0, 0, {.f = f}}; return v; }
static inline mb_value mb_bool(int b) { mb_value v = {MB_V_BOOL, 0, 0, {.b = b}}; return v; }
static inline mb_value mb_string(const char *s, size_t len) { mb_value v = {MB_V_STRING, 0, len, {.s = (char *)s}}; return v; }
static inline mb_value mb_items(int kind, mb_value *items, size_t len) { mb_value v = {kind, 0, len, {.items = items}}; return v; }
static inline mb_value mb_variant(int tag, mb_value *payload) { mb_value v = {MB_V_VARIANT, tag, payload ? 1u : 0u, {.items = payload}}; return v; }

/* Load the wrapper of distribution *dist* (its re-export module <dist>_externs, then the capsule of
 * _mochi_<dist>); NULL with *err filled on failure. The interpreter must be initialised. */
static inline mb_module *mb_open(const char *dist, const mb_api **api, mb_error *err)
{
    char name[256];
    PyGILState_STATE gil = PyGILState_Ensure();
    mb_module *out = NULL;
    PyOS_snprintf(name, sizeof name, "%s_externs", dist);
    PyObject *externs = PyImport_ImportModule(name);
    PyOS_snprintf(name, sizeof name, "_mochi_%s", dist);
    PyObject *module = externs ? PyImport_ImportModule(name) : NULL;
    PyOS_snprintf(name, sizeof name, "_mochi_%s._mochi_c_api", dist);
    *api = module ? (const mb_api *)PyCapsule_Import(name, 0) : NULL;
    if (*api != NULL && (*api)->version != MB_C_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError, "%s speaks C ABI %d, this host %d", name, (*api)->version, MB_C_ABI_VERSION);
        *api = NULL;
    }
    if (*api != NULL) {
        out = (mb_module *)Py_NewRef(module);
    }
    else {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *text = value ? PyObject_Str(value) : NULL;
        const char *utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
        err->code = MB_ERR_USAGE;
        PyOS_snprintf(err->message, sizeof err->message, "cannot load %s: %s", name, utf8 ? utf8 : "unknown error");
        PyErr_Clear();
        Py_XDECREF(text);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    Py_XDECREF(module);
    Py_XDECREF(externs);
    PyGILState_Release(gil);
    return out;
}

/* Drop a module opened with mb_open. */
static inline void mb_close(mb_module *m)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_XDECREF((PyObject *)m);
    PyGILState_Release(gil);
}

/* The capsule the runtime publishes as _mochi_<dist>._mochi_c_api (rt_capi.c). */
MB_HIDDEN int mb_capi_add(PyObject *module);
/* Call extern *index* of *module* with n Mochi-side arguments: the Python face's call path. */
MB_HIDDEN PyObject *mb_call_extern(PyObject *module, int index, PyObject *const *args, Py_ssize_t n);
/* The same with the module's state already at hand. */
MB_HIDDEN PyObject *mb_call_extern_in(mb_state *st, PyObject *module, int index, PyObject *const *args, Py_ssize_t n);

#endif /* MOCHI_BRIDGE_H */
