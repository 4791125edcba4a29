/* bench/call_host.c - the C side of bench/call_overhead.py: `tablefix.add(int, int) -> int` called N
 * times from C, through the C ABI of wrappers/mochi_bridge.h and, side by side, through the plain
 * CPython API (bench/call_direct.c). Both take the GIL on every call, as a native host must.
 * usage: call_host <dir for sys.path>... <calls>; prints "cabi <ns/call>" and "direct <ns/call>".
 */
#define Py_LIMITED_API 0x030b0000
#include "mochi_bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double direct_calls(long n); /* call_direct.c */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <dir>... <calls>\n", argv[0]);
        return 2;
    }
    long n = atol(argv[argc - 1]);
    Py_Initialize();
    PyObject *path = PySys_GetObject("path");
    for (int i = argc - 2; i >= 1; i--) {
        PyObject *dir = PyUnicode_FromString(argv[i]);
        PyList_Insert(path, 0, dir);
        Py_DECREF(dir);
    }
    PyThreadState *saved = PyEval_SaveThread();
    const mb_api *api;
    mb_error err;
    mb_module *m = mb_open("tablefix", &api, &err);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    int add = api->lookup(m, "tablefix_add");
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        int64_t total = 0;
        for (long i = 0; i < n; i++) {
            mb_value args[2] = {mb_int(i), mb_int(1)}, out;
            if (api->call(m, add, args, 2, &out, &err) != 0) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            total += out.u.i;
        }
        double cabi = (now() - t0) / (double)n * 1e9;
        double direct = direct_calls(n);
        printf("cabi %.1f direct %.1f check %lld\n", cabi, direct, (long long)total);
    }
    mb_close(m);
    PyEval_RestoreThread(saved);
    return Py_FinalizeEx() < 0 ? 2 : 0;
}
