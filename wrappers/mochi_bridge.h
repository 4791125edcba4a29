/* mochi_bridge.h - the runtime every generated wrapper module links.
 *
 * A generated wrapper is data: a table of mb_function descriptors (Python target, parameters,
 * type descriptors) handed to mb_module_exec() from the module's Py_mod_exec slot. The runtime
 * turns each descriptor into a callable module attribute that checks its arguments, calls the
 * Python function, and checks and copies the return value (R3).
 *
 * Type descriptors are prefix strings shared with tasks/typedesc.py:
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
#define MB_CAST 5     /* return the single `value` argument, checked against ret (`[python].any = "handle"`) */

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
    const char *ret;        /* type descriptor; "n" for no return value */
    const char *ret_mochi;  /* Mochi spelling of the return type */
} mb_function;

/* A class whose instances cross as handles: the isinstance check of H<n>; descriptors. */
typedef struct {
    const char *py_module;
    const char *py_name; /* attribute path of the class in py_module */
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

/* The class of handle descriptor H<index>; (imported on first use), as a new reference. */
MB_HIDDEN PyObject *mb_resolve_class(mb_state *st, int index);
/* The Python class of named type index (dataclass, namedtuple, enum), as a new reference. */
MB_HIDDEN PyObject *mb_resolve_type(mb_state *st, int index);
/* The Mochi-side class called *name* (a record or a variant), from the bound resolver. */
MB_HIDDEN PyObject *mb_mochi_class(mb_state *st, const char *name);
/* Run an awaitable (collect = 0) or drain an async iterable into a list (collect = 1) on the loop. */
MB_HIDDEN PyObject *mb_run_async(mb_state *st, PyObject *obj, int collect);
/* A callable that converts across the boundary around *target* (desc points at a C<k>; descriptor).
 * args_to_python: 1 when Mochi calls it (a Python callable returned), 0 when Python calls it. */
MB_HIDDEN PyObject *mb_wrap_callable(mb_state *st, PyObject *target, const char *desc, int args_to_python);
/* The spec of the Callback heap type (rt_callback.c). */
MB_HIDDEN extern PyType_Spec mb_callback_spec;
/* The end of the single descriptor starting at desc. */
MB_HIDDEN const char *mb_desc_end(const char *desc);
/* A readable Mochi spelling of a descriptor for messages (`list<int>`), a new str. */
MB_HIDDEN PyObject *mb_describe(mb_state *st, const char *desc);

#endif /* MOCHI_BRIDGE_H */
