/* A native Mochi host in miniature: embeds CPython and drives the generated tablefix wrapper through
 * the C ABI of wrappers/mochi_bridge.h only - every value kind in both directions, every error code.
 * Built and run by tests/test_c_host.py under AddressSanitizer with leak detection: a C leak or a
 * Python reference leak in the runtime shows up as a LeakSanitizer report.
 *
 * usage: host <directory for sys.path>... <iterations>
 */
#define Py_LIMITED_API 0x030b0000
#include "mochi_bridge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        checks++;                                                                                          \
        if (!(cond)) {                                                                                     \
            failures++;                                                                                    \
            fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fprintf(stderr, "\n");                                                                         \
        }                                                                                                  \
    } while (0)

static const mb_api *api;
static mb_module *mod;

static int call(const char *name, const mb_value *args, size_t n, mb_value *out, mb_error *err)
{
    int index = api->lookup(mod, name);
    CHECK(index >= 0, "no extern %s", name);
    return api->call(mod, index, args, n, out, err);
}

/* A host function passed as fun(int): int - triples its argument. */
static int triple(void *ctx, const mb_value *args, size_t n, mb_value *result, mb_error *err)
{
    (void)err;
    (*(int *)ctx)++;
    if (n != 1 || args[0].kind != MB_V_INT) {
        return -1;
    }
    *result = mb_int(args[0].u.i * 3);
    return 0;
}

/* A host function that calls back into the ABI while Python waits for it (the GIL is taken again). */
static int reenter(void *ctx, const mb_value *args, size_t n, mb_value *result, mb_error *err)
{
    (void)ctx;
    mb_value pair[2] = {n == 1 ? args[0] : mb_int(0), mb_int(100)};
    return api->call(mod, api->lookup(mod, "tablefix_add"), pair, 2, result, err);
}

static int refuse(void *ctx, const mb_value *args, size_t n, mb_value *result, mb_error *err)
{
    (void)ctx, (void)args, (void)n, (void)result;
    err->code = MB_ERR_PYTHON;
    snprintf(err->message, sizeof err->message, "host says no");
    return -1;
}

static mb_value item_value(mb_value *fields, mb_value *tags, mb_value *color, const char *name, int64_t qty)
{
    tags[0] = mb_string("a", 1);
    tags[1] = mb_string("b", 1);
    *color = mb_variant(1, NULL); /* tablefix_Color_GREEN */
    fields[0] = mb_string(name, strlen(name));
    fields[1] = mb_int(qty);
    fields[2] = mb_items(MB_V_LIST, tags, 2);
    fields[3] = *color;
    return mb_items(MB_V_RECORD, fields, 4);
}

static void scenario(void)
{
    mb_value out;
    mb_error err;

    mb_value two[2] = {mb_int(40), mb_int(2)};
    CHECK(call("tablefix_add", two, 2, &out, &err) == 0 && out.kind == MB_V_INT && out.u.i == 42, "%s", err.message);
    api->release(&out);

    mb_value name = mb_string("mochi", 5);
    CHECK(call("tablefix_greet", &name, 1, &out, &err) == 0 && out.kind == MB_V_STRING &&
              strcmp(out.u.s, "hello mochi") == 0 && out.len == 11, "%s", err.message);
    api->release(&out);

    mb_value t = mb_bool(1);
    CHECK(call("tablefix_flip", &t, 1, &out, &err) == 0 && out.kind == MB_V_BOOL && out.u.b == 0, "%s", err.message);
    api->release(&out);

    mb_value xs[3] = {mb_float(1.5), mb_int(2), mb_float(-1)};
    mb_value scale_args[2] = {mb_items(MB_V_LIST, xs, 3), mb_float(2.0)};
    CHECK(call("tablefix_scale", scale_args, 2, &out, &err) == 0 && out.kind == MB_V_LIST && out.len == 3 &&
              out.u.items[0].kind == MB_V_FLOAT && fabs(out.u.items[1].u.f - 4.0) < 1e-9, "%s", err.message);
    api->release(&out);

    mb_value words[2] = {mb_string("x", 1), mb_string("y", 1)};
    mb_value wl = mb_items(MB_V_LIST, words, 2);
    CHECK(call("tablefix_index_words", &wl, 1, &out, &err) == 0 && out.kind == MB_V_MAP && out.len == 2 &&
              out.u.items[0].kind == MB_V_STRING && out.u.items[1].kind == MB_V_INT, "%s", err.message);
    api->release(&out);

    mb_value bytes = {MB_V_BYTES, 0, 3, {.s = "\x01\x02\xff"}};
    CHECK(call("tablefix_checksum", &bytes, 1, &out, &err) == 0 && out.kind == MB_V_BYTES && out.len == 3 &&
              (unsigned char)out.u.s[0] == 0xff, "%s", err.message);
    api->release(&out);

    /* records in and out, with a nested enum variant and a list field */
    mb_value fields[4], tags[2], color;
    mb_value restock_args[2] = {item_value(fields, tags, &color, "bolt", 3), mb_int(2)};
    CHECK(call("tablefix_restock", restock_args, 2, &out, &err) == 0 && out.kind == MB_V_RECORD && out.len == 4 &&
              out.u.items[1].u.i == 5 && out.u.items[2].len == 3 && out.u.items[3].kind == MB_V_VARIANT &&
              out.u.items[3].tag == 1 && strcmp(out.u.items[0].u.s, "bolt") == 0, "%s", err.message);
    api->release(&out);

    CHECK(call("tablefix_item_tags", restock_args, 1, &out, &err) == 0 && out.kind == MB_V_SET && out.len == 2,
          "%s", err.message);
    api->release(&out);

    /* sum types: a variant in, the matching variant out */
    mb_value payload = mb_string("abc", 3);
    mb_value variant = mb_variant(1, &payload); /* tablefix_Int_or_Str_or_ListInt_Str */
    CHECK(call("tablefix_render_with", &variant, 1, &out, &err) == 0 && strcmp(out.u.s, "str:abc") == 0, "%s",
          err.message);
    api->release(&out);
    mb_value digits = mb_string("17", 2);
    CHECK(call("tablefix_parse", &digits, 1, &out, &err) == 0 && out.kind == MB_V_VARIANT && out.tag == 0 &&
              out.len == 1 && out.u.items[0].u.i == 17, "%s", err.message);
    api->release(&out);
    mb_value blue = mb_variant(2, NULL);
    CHECK(call("tablefix_next_color", &blue, 1, &out, &err) == 0 && out.kind == MB_V_VARIANT && out.tag == 0,
          "%s", err.message);
    api->release(&out);

    /* optionals */
    mb_value none = {MB_V_NONE, 0, 0, {.i = 0}};
    CHECK(call("tablefix_maybe_len_with", &none, 1, &out, &err) == 0 && out.kind == MB_V_NONE, "%s", err.message);
    api->release(&out);
    CHECK(call("tablefix_maybe_len_with", &name, 1, &out, &err) == 0 && out.kind == MB_V_INT && out.u.i == 5, "%s",
          err.message);
    api->release(&out);

    /* handles: constructed, passed back, released */
    mb_value side = mb_float(3.0);
    mb_value shape;
    CHECK(call("tablefix_Shape_new", &side, 1, &shape, &err) == 0 && shape.kind == MB_V_HANDLE, "%s", err.message);
    CHECK(call("tablefix_Shape_area", &shape, 1, &out, &err) == 0 && out.u.f == 9.0, "%s", err.message);
    api->release(&out);
    api->release(&shape);

    /* a host function as a callback, and a unit return */
    int calls = 0;
    mb_value fn = {MB_V_FUNC, 0, 0, {.func = {triple, &calls}}};
    mb_value apply_args[2] = {fn, mb_int(4)};
    CHECK(call("tablefix_apply", apply_args, 2, &out, &err) == 0 && out.u.i == 13 && calls == 1, "%s", err.message);
    api->release(&out);
    /* a function value Python returns, called back from C: checked like any call */
    mb_value five = mb_int(5), one = mb_int(1), adder;
    CHECK(call("tablefix_adder", &five, 1, &adder, &err) == 0 && adder.kind == MB_V_HANDLE, "%s", err.message);
    CHECK(api->invoke(mod, &adder, &one, 1, &out, &err) == 0 && out.kind == MB_V_INT && out.u.i == 6, "%s",
          err.message);
    CHECK(api->invoke(mod, &adder, &name, 1, &out, &err) == -1 && err.code == MB_ERR_ARGUMENT, "%s", err.message);
    api->release(&adder);
    mb_value liar;
    CHECK(call("tablefix_liar_adder", NULL, 0, &liar, &err) == 0, "%s", err.message);
    CHECK(api->invoke(mod, &liar, &one, 1, &out, &err) == -1 && err.code == MB_ERR_MISMATCH &&
              strstr(err.message, "callback result: expected int, got str") != NULL, "%d %s", err.code, err.message);
    CHECK(api->invoke(mod, &five, &one, 1, &out, &err) == -1 && err.code == MB_ERR_USAGE, "%s",
          err.message);
    api->release(&liar);
    mb_value again[2] = {{MB_V_FUNC, 0, 0, {.func = {reenter, NULL}}}, mb_int(4)};
    CHECK(call("tablefix_apply", again, 2, &out, &err) == 0 && out.u.i == 105, "%s", err.message);
    mb_value seven = mb_int(7);
    CHECK(call("tablefix_forget", &seven, 1, &out, &err) == 0 && out.kind == MB_V_UNIT, "%s", err.message);

    /* an async function, run on the event loop */
    mb_value twenty = mb_int(20);
    CHECK(call("tablefix_fetch", &twenty, 1, &out, &err) == 0 && out.u.i == 40, "%s", err.message);

    /* every error code */
    CHECK(call("tablefix_fake_color", NULL, 0, &out, &err) == -1 && err.code == MB_ERR_MISMATCH &&
              strstr(err.message, "expected tablefix_Color, got int") != NULL, "%d %s", err.code, err.message);
    CHECK(call("tablefix_add", &name, 1, &out, &err) == -1 && err.code == MB_ERR_ARGUMENT &&
              strstr(err.message, "parameter 'a' expected int, got a string value") != NULL, "%s", err.message);
    mb_value bad_item = mb_items(MB_V_RECORD, fields, 2);
    CHECK(call("tablefix_restock", (mb_value[]){bad_item, mb_int(1)}, 2, &out, &err) == -1 &&
              err.code == MB_ERR_ARGUMENT, "%s", err.message);
    mb_value gone = mb_string("gone", 4);
    CHECK(call("tablefix_fail_later", &gone, 1, &out, &err) == -1 && err.code == MB_ERR_PYTHON &&
              strstr(err.message, "KeyError") != NULL, "%s", err.message);
    mb_value refuse_args[2] = {{MB_V_FUNC, 0, 0, {.func = {refuse, NULL}}}, mb_int(1)};
    CHECK(call("tablefix_apply", refuse_args, 2, &out, &err) == -1 && err.code == MB_ERR_PYTHON &&
              strstr(err.message, "host says no") != NULL, "%s", err.message);
    CHECK(call("tablefix_big_numbers", NULL, 0, &out, &err) == -1 && err.code == MB_ERR_MISMATCH &&
              strstr(err.message, "64 bits") != NULL, "%s", err.message); /* what was built so far is freed */
    CHECK(api->call(mod, 100000, NULL, 0, &out, &err) == -1 && err.code == MB_ERR_USAGE, "%s", err.message);
    CHECK(call("tablefix_add", (mb_value[]){mb_int(1), mb_int(2), mb_int(3)}, 3, &out, &err) == -1 &&
              err.code == MB_ERR_USAGE, "%s", err.message);
    CHECK(api->lookup(mod, "no_such_extern") == -1, "lookup of a missing name");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <directory for sys.path>... <iterations>\n", argv[0]);
        return 2;
    }
    Py_Initialize();
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    for (int i = argc - 2; i >= 1; i--) {
        PyObject *dir = PyUnicode_FromString(argv[i]);
        if (path == NULL || dir == NULL || PyList_Insert(path, 0, dir) < 0) {
            PyErr_Print();
            return 2;
        }
        Py_DECREF(dir);
    }
    PyThreadState *main_state = PyEval_SaveThread(); /* from here on, every entry takes the GIL itself */

    mb_error err;
    mod = mb_open("tablefix", &api, &err);
    if (mod == NULL) {
        fprintf(stderr, "mb_open: %s\n", err.message);
        return 2;
    }
    int iterations = atoi(argv[argc - 1]);
    for (int i = 0; i < iterations; i++) {
        /* With PYTHONMALLOC=malloc every Python object is a malloc block: an object whose reference
         * count never drops is unreachable memory, which LeakSanitizer reports at exit like any C leak. */
        scenario();
    }
    mb_close(mod);
    PyEval_RestoreThread(main_state);
    if (Py_FinalizeEx() < 0) {
        return 2;
    }
    printf("host: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
