/* rt_callback.c - what crosses besides plain data: callables (both ways), awaitables, and the
 * classes records and variants are built from on the Mochi side.
 *
 * A callable that crosses is wrapped in a Callback object holding the target and its C<k>;
 * descriptor. A Mochi function handed to Python converts the Python arguments into Mochi values and
 * its result back; a Python callable handed to Mochi does the reverse, checking the result (R3).
 *
 * Async work runs on asyncio through one small helper module shared by every wrapper in the process
 * (so persistent mode really has one loop): per-call mode gives each call a fresh asyncio.Runner in
 * the calling thread; persistent mode runs one loop forever on a daemon thread, created at first use
 * with a one-time RuntimeWarning, and hands it each coroutine (so any thread may call, the GIL
 * released while it waits); a call that would wait on the loop from inside it is refused. uvloop's
 * loop is used when uvloop is importable.
 */
#include "mochi_bridge.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    PyObject *module;   /* the wrapper module: its state holds the spec the descriptor points into */
    PyObject *target;   /* the wrapped callable */
    const char *desc;   /* C<k>;... inside the module's static spec */
    int args_to_python; /* 1: Mochi calls it (arguments go to Python); 0: Python calls it */
} mb_callback;

static const char async_helper_name[] = "_mochi_bridge_async_2";
static const char async_helper_source[] =
    "import asyncio as _asyncio\n"
    "import threading as _threading\n"
    "import warnings as _warnings\n"
    "_loop = None\n"
    "_thread = None\n"
    "_lock = _threading.Lock()\n"
    "def _loop_factory():\n"
    "    try:\n"
    "        import uvloop\n"
    "    except ImportError:\n"
    "        return None\n"
    "    return uvloop.new_event_loop\n"
    "async def _await(awaitable):\n"
    "    return await awaitable\n"
    "async def _collect(aiterable):\n"
    "    return [item async for item in aiterable]\n"
    "def _persistent():\n"
    "    global _loop, _thread\n"
    "    with _lock:\n"
    "        if _loop is None:\n"
    "            _warnings.warn('mochi-pybridge: async-mode = \"persistent\": one event loop now serves every '\n"
    "                           'async call in this process; futures, tasks and async iterators stay bound to it',\n"
    "                           RuntimeWarning, stacklevel=3)\n"
    "            factory = _loop_factory() or _asyncio.new_event_loop\n"
    "            loop = factory()\n"
    "            ready = _threading.Event()\n"
    "            def serve():\n"
    "                _asyncio.set_event_loop(loop)\n"
    "                loop.call_soon(ready.set)\n"
    "                loop.run_forever()\n"
    "            thread = _threading.Thread(target=serve, name='mochi-asyncio-loop', daemon=True)\n"
    "            thread.start()\n"
    "            ready.wait()\n"
    "            _loop, _thread = loop, thread\n"
    "    return _loop\n"
    "def run(awaitable, persistent):\n"
    "    coro = awaitable if _asyncio.iscoroutine(awaitable) else _await(awaitable)\n"
    "    if not persistent:\n"
    "        with _asyncio.Runner(loop_factory=_loop_factory()) as runner:\n"
    "            return runner.run(coro)\n"
    "    loop = _persistent()\n"
    "    if _threading.current_thread() is _thread:\n"
    "        coro.close()\n"
    "        raise RuntimeError('mochi-pybridge: an async call made while the persistent event loop runs another '\n"
    "                           '(a callback awaiting the same loop) would wait for itself; it is refused')\n"
    "    return _asyncio.run_coroutine_threadsafe(coro, loop).result()\n"
    "def collect(aiterable, persistent):\n"
    "    return run(_collect(aiterable), persistent)\n";

/* The process-wide helper module (created by the first wrapper that needs it), a new reference. */
static PyObject *async_helper(void)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *mod = PyDict_GetItemString(modules, async_helper_name);
    if (mod != NULL) {
        return Py_NewRef(mod);
    }
    mod = PyModule_New(async_helper_name);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *globals = PyModule_GetDict(mod); /* borrowed */
    PyObject *code = NULL, *result = NULL;
    if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        (code = Py_CompileString(async_helper_source, async_helper_name, Py_file_input)) == NULL ||
        (result = PyEval_EvalCode(code, globals, globals)) == NULL ||
        PyDict_SetItemString(modules, async_helper_name, mod) < 0) {
        Py_CLEAR(mod);
    }
    Py_XDECREF(result);
    Py_XDECREF(code);
    return mod;
}

PyObject *mb_run_async(mb_state *st, PyObject *obj, int collect)
{
    PyObject *helper = async_helper();
    if (helper == NULL) {
        return NULL;
    }
    PyObject *fn = mb_getattr(helper, collect ? "collect" : "run");
    PyObject *out = fn ? PyObject_CallFunction(fn, "Oi", obj, st->spec->async_mode == MB_ASYNC_PERSISTENT) : NULL;
    Py_XDECREF(fn);
    Py_DECREF(helper);
    return out;
}

/* The Python class of named type index, imported on first use and cached in the module state. */
PyObject *mb_resolve_type(mb_state *st, int index)
{
    const mb_type *t = &st->spec->types[index];
    PyObject *found = PyList_GetItem(st->py_types, index);
    if (found == NULL) {
        return NULL;
    }
    if (found != Py_None) {
        return Py_NewRef(found);
    }
    PyObject *mod = PyImport_ImportModule(t->py_module);
    found = mod ? mb_getattr(mod, t->py_name) : NULL;
    Py_XDECREF(mod);
    if (found == NULL || PyList_SetItem(st->py_types, index, Py_NewRef(found)) < 0) {
        Py_XDECREF(found);
        return NULL;
    }
    return found;
}

PyObject *mb_mochi_class(mb_state *st, const char *name)
{
    PyObject *cls = PyDict_GetItemString(st->mochi_classes, name); /* borrowed */
    if (cls != NULL) {
        return Py_NewRef(cls);
    }
    if (st->binder == NULL || st->binder == Py_None) {
        PyErr_Format(st->error_type,
                     "no Mochi class for %s: import the %s re-export module (<dist>_externs, which binds its own "
                     "classes) or call _mochi_bind(resolver) first",
                     name, st->spec->dist);
        return NULL;
    }
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL) {
        return NULL;
    }
    cls = PyDict_Check(st->binder) || !PyCallable_Check(st->binder) ? PyObject_GetItem(st->binder, key)
                                                                     : PyObject_CallFunctionObjArgs(st->binder, key, NULL);
    if (cls != NULL && PyDict_SetItem(st->mochi_classes, key, cls) < 0) {
        Py_CLEAR(cls);
    }
    Py_DECREF(key);
    return cls;
}

static mb_state *callback_state(mb_callback *cb)
{
    return (mb_state *)PyModule_GetState(cb->module);
}

/* Convert one value crossing inside a callback; a mismatch is PythonTypeMismatch when Python produced the
 * value (it flows into Mochi), TypeError when Mochi did. */
static PyObject *callback_convert(mb_state *st, PyObject *value, const char *desc, int to_python, const char *what)
{
    mb_ctx ctx = {st, to_python};
    PyObject *bad = NULL, *where = NULL;
    PyObject *out = mb_convert(value, desc, &ctx, &bad, &where);
    if (out == NULL && !PyErr_Occurred() && bad != NULL) {
        PyObject *expected = mb_describe(st, desc);
        PyObject *actual = PyType_GetName(Py_TYPE(bad));
        PyObject *exc_type = to_python ? PyExc_TypeError : st->mismatch_type;
        if (expected != NULL && actual != NULL && where != NULL) {
            PyErr_Format(exc_type, "callback %s: expected %U, got %U at %U", what, expected, actual, where);
        }
        else if (expected != NULL && actual != NULL) {
            PyErr_Format(exc_type, "callback %s: expected %U, got %U", what, expected, actual);
        }
        Py_XDECREF(expected);
        Py_XDECREF(actual);
    }
    Py_XDECREF(bad);
    Py_XDECREF(where);
    return out;
}

static PyObject *callback_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    mb_callback *cb = (mb_callback *)self;
    mb_state *st = callback_state(cb);
    if (st == NULL) {
        return NULL;
    }
    if (kwargs != NULL && PyDict_Size(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "a Mochi callback takes positional arguments only");
        return NULL;
    }
    const char *pos = NULL;
    long k = mb_callable_params(cb->desc, &pos);
    Py_ssize_t n = PyTuple_Size(args);
    if (n != k) {
        PyErr_Format(PyExc_TypeError, "callback takes %ld arguments (%zd given)", k, n);
        return NULL;
    }
    PyObject *converted = PyTuple_New(n);
    for (Py_ssize_t i = 0; converted != NULL && i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "argument %zd", i + 1);
        PyObject *conv = callback_convert(st, PyTuple_GetItem(args, i), pos, cb->args_to_python, what);
        if (conv == NULL || PyTuple_SetItem(converted, i, conv) < 0) { /* steals conv */
            Py_CLEAR(converted);
        }
        pos = mb_desc_end(pos);
    }
    if (converted == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(cb->target, converted, NULL);
    Py_DECREF(converted);
    if (result == NULL) {
        return NULL;
    }
    if (pos[0] == 'n') { /* the declared return is nothing: whatever came back is dropped */
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    PyObject *out = callback_convert(st, result, pos, !cb->args_to_python, "result");
    Py_DECREF(result);
    return out;
}

static int callback_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((mb_callback *)self)->module);
    Py_VISIT(((mb_callback *)self)->target);
    return 0;
}

static int callback_clear(PyObject *self)
{
    Py_CLEAR(((mb_callback *)self)->module);
    Py_CLEAR(((mb_callback *)self)->target);
    return 0;
}

static void callback_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    callback_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyObject *callback_repr(PyObject *self)
{
    mb_callback *cb = (mb_callback *)self;
    return PyUnicode_FromFormat("<mochi callback %s around %R>", cb->desc, cb->target);
}

static PyType_Slot callback_slots[] = {
    {Py_tp_call, callback_call},
    {Py_tp_repr, callback_repr},
    {Py_tp_traverse, callback_traverse},
    {Py_tp_clear, callback_clear},
    {Py_tp_dealloc, callback_dealloc},
    {0, NULL},
};

PyType_Spec mb_callback_spec = {
    .name = "mochi_bridge.Callback",
    .basicsize = sizeof(mb_callback),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = callback_slots,
};

const char *mb_callback_desc(mb_state *st, PyObject *obj)
{
    if ((PyObject *)Py_TYPE(obj) != st->callback_type) {
        return NULL;
    }
    return ((mb_callback *)obj)->desc;
}

PyObject *mb_wrap_callable(mb_state *st, PyObject *target, const char *desc, int args_to_python)
{
    PyTypeObject *tp = (PyTypeObject *)st->callback_type;
    allocfunc alloc = (allocfunc)PyType_GetSlot(tp, Py_tp_alloc);
    mb_callback *cb = (mb_callback *)alloc(tp, 0);
    if (cb == NULL) {
        return NULL;
    }
    PyObject *module = PyType_GetModule(tp);
    if (module == NULL) {
        Py_DECREF(cb);
        return NULL;
    }
    cb->module = Py_NewRef(module);
    cb->target = Py_NewRef(target);
    cb->desc = desc;
    cb->args_to_python = args_to_python;
    return (PyObject *)cb;
}
