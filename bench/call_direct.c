/* bench/call_direct.c - the baseline of bench/call_host.c: the full CPython API, as a host would
 * write it by hand - GIL, PyLongs, PyObject_Vectorcall, result back to int64, GIL released. */
#include <Python.h>

#include <time.h>

double direct_calls(long n)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *mod = PyImport_ImportModule("tablefix");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, "add") : NULL;
    PyGILState_Release(gil);
    if (fn == NULL) {
        return -1.0;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    long long total = 0;
    for (long i = 0; i < n; i++) {
        gil = PyGILState_Ensure();
        PyObject *args[2] = {PyLong_FromLong(i), PyLong_FromLong(1)};
        PyObject *out = PyObject_Vectorcall(fn, args, 2, NULL);
        total += out ? PyLong_AsLongLong(out) : 0;
        Py_XDECREF(out);
        Py_DECREF(args[0]);
        Py_DECREF(args[1]);
        PyGILState_Release(gil);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    gil = PyGILState_Ensure();
    Py_DECREF(fn);
    Py_DECREF(mod);
    PyGILState_Release(gil);
    (void)total;
    return ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9) / (double)n * 1e9;
}
