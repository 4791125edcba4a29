"""Every structured row of the type table through a real lock and the compiled wrapper, both directions.

Records (dataclass, NamedTuple, TypedDict, fixed tuple), sum types, enums, callbacks both ways, async
functions (per-call and persistent loops, uvloop when importable), async iterators, `Any` handles
with checked casts, and monomorphised generics; and every error kind at the boundary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mochi_subset import check_shim


def _run(root: Path, code: str, *, no_uvloop: bool = False) -> Any:
    prelude = f"import sys, json; sys.path.insert(0, {str(root / 'python_wrap' / 'tablefix')!r})\n"
    if no_uvloop:
        prelude += "sys.modules['uvloop'] = None\n"
    prelude += "import _mochi_tablefix as m, tablefix_externs as x\n"
    proc = subprocess.run([sys.executable, "-I", "-W", "error::RuntimeWarning", "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_both_projects_lock_and_the_shims_are_valid_mochi(table: dict[str, Any]) -> None:
    for proc in table["procs"]:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    default = (table["default"] / "python_wrap/tablefix/shim.mochi").read_text()
    opted = (table["opted"] / "python_wrap/tablefix/shim.mochi").read_text()
    assert check_shim(default) == [] and check_shim(opted) == []
    for text in ("type tablefix_Item {\n  name: string\n  qty: int\n  tags: list<string>\n  color: tablefix_Color\n}",
                 "type tablefix_Color = tablefix_Color_RED | tablefix_Color_GREEN | tablefix_Color_BLUE",
                 "type tablefix_Int_or_Str = tablefix_Int_or_Str_Int(v: int) | tablefix_Int_or_Str_Str(v: string)",
                 "type tablefix_Tuple_Int_Int {\n  item0: int\n  item1: int\n}",
                 "extern python fun tablefix_apply(f: fun(int): int, x: int): int",
                 "extern python fun tablefix_each(f: fun(string, int), words: list<string>): int",
                 "extern python fun tablefix_adder(n: int): fun(int): int",
                 "extern python fun tablefix_fetch(x: int): int",
                 "extern python fun tablefix_ticks(n: int): list<int>",
                 "extern python fun tablefix_maybe(v: int): tablefix_Int_or_Str?",  # plain: the scalar arm
                 "extern python fun tablefix_maybe_with(v: tablefix_Int_or_Str?): tablefix_Int_or_Str?"):
        assert text in default and text in opted
    # `[python].any = "handle"` is the default: Any crosses as a value, with checked casts both ways
    for shim in (default, opted):
        assert "extern python fun tablefix_anything(x: value): value" in shim
        assert "extern python fun tablefix_as_map(v: value): map<string, value>" in shim
        assert "extern python fun tablefix_of_string(x: string): value" in shim
        assert "extern python fun tablefix_first(xs: list<value>): value" in shim  # erased: T holds any value
    assert "extern python fun tablefix_first_int(xs: list<int>): int" in opted  # [python].monomorphise
    assert "extern python fun tablefix_first_str(xs: list<string>): string" in opted
    assert "tablefix.first" not in (table["opted"] / "python_wrap/tablefix/SKIPPED.txt").read_text()


def test_records_cross_by_value_both_ways(table: dict[str, Any]) -> None:
    out = _run(table["default"], """
        item = x.tablefix_Item(name="bolt", qty=3, tags=["m4"], color=x.tablefix_Color_RED())
        back = m.tablefix_restock(item, 2)
        span = m.tablefix_widen(x.tablefix_Span(start=2, end=5), 1)
        print(json.dumps({
            "type": type(back).__name__, "qty": back.qty, "tags": back.tags, "color": type(back.color).__name__,
            "total": m.tablefix_total([item, back, {"name": "d", "qty": 1, "tags": [],
                                                    "color": x.tablefix_Color_BLUE()}]),
            "span": [type(span).__name__, span.start, span.end],
            "describe": [m.tablefix_describe(x.tablefix_Options(verbose=True, level=None)),
                         m.tablefix_describe(x.tablefix_Options(verbose=False, level=2))],
            "defaults": [[o.verbose, o.level] for o in (m.tablefix_defaults(True), m.tablefix_defaults(False))],
            "bounds": [type(b := m.tablefix_bounds([4, 1, 9])).__name__, b.item0, b.item1],
            "swap": [(s := m.tablefix_swap(x.tablefix_Tuple_Int_Str(item0=1, item1="a"))).item0, s.item1],
        }))
        """)
    assert out == {"type": "tablefix_Item", "qty": 5, "tags": ["m4", "restocked"], "color": "tablefix_Color_RED",
                   "total": 9, "span": ["tablefix_Span", 1, 6],
                   "describe": ["verbose=True level=unset", "verbose=False level=2"],
                   "defaults": [[True, None], [False, 3]], "bounds": ["tablefix_Tuple_Int_Int", 1, 9],
                   "swap": ["a", 1]}


def test_sum_types_and_enums_pick_the_variant_both_ways(table: dict[str, Any]) -> None:
    out = _run(table["default"], """
        parsed = [m.tablefix_parse("42"), m.tablefix_parse("abc")]
        shape = m.tablefix_grow_with(x.tablefix_Shape_or_Int_Int(v=3))
        area = m.tablefix_Shape_area(shape.v)
        print(json.dumps({
            "parsed": [[type(p).__name__, p.v] for p in parsed],
            "render": [m.tablefix_render_with(x.tablefix_Int_or_Str_or_ListInt_Int(v=1)),
                       m.tablefix_render_with(x.tablefix_Int_or_Str_or_ListInt_ListInt(v=[1, 2]))],
            "maybe": [m.tablefix_maybe_with(None), m.tablefix_maybe_with(x.tablefix_Int_or_Str_Str(v="s")).v],
            "grow": [type(shape).__name__, area],
            "next": [type(m.tablefix_next_color(c())).__name__
                     for c in (x.tablefix_Color_RED, x.tablefix_Color_BLUE)],
        }))
        """)
    assert out == {"parsed": [["tablefix_Int_or_Str_Int", 42], ["tablefix_Int_or_Str_Str", "abc"]],
                   "render": ["int:1", "list:[1, 2]"], "maybe": [None, "s"],
                   "grow": ["tablefix_Shape_or_Int_Shape", 36.0],
                   "next": ["tablefix_Color_GREEN", "tablefix_Color_RED"]}


def test_a_return_that_is_no_arm_of_the_union_is_a_mismatch(table: dict[str, Any]) -> None:
    # grow(Shape) returns the float side, which is no arm of `Shape | int` (a lying stub): R3
    out = _run(table["default"], """
        try:
            m.tablefix_grow_with(x.tablefix_Shape_or_Int_Shape(v=m.tablefix_Shape_new(1.5)))
        except m.PythonTypeMismatch as exc:
            print(json.dumps(str(exc)))
        """)
    assert out == ("tablefix_grow_with (tablefix.grow): return value expected tablefix_Shape_or_Int, got float")


def test_callbacks_cross_both_ways(table: dict[str, Any]) -> None:
    out = _run(table["default"], """
        seen = []
        add5 = m.tablefix_adder(5)
        print(json.dumps({
            "apply": m.tablefix_apply(lambda v: v * 10, 4),
            "each": [m.tablefix_each(lambda w, i: seen.append([w, i]), ["a", "b"]), seen],
            "label": m.tablefix_label_item(lambda it: f"{type(it).__name__}:{it.name}:{type(it.color).__name__}",
                                           x.tablefix_Item(name="n", qty=1, tags=[], color=x.tablefix_Color_GREEN())),
            "adder": [add5(1), callable(add5)],
        }))
        """)
    assert out == {"apply": 41, "each": [2, [["a", 0], ["b", 1]]], "label": "<tablefix_Item:n:tablefix_Color_GREEN>",
                   "adder": [6, True]}


def test_async_functions_run_per_call_on_uvloop_when_installed(table: dict[str, Any]) -> None:
    code = """
        print(json.dumps({"fetch": m.tablefix_fetch(21), "ticks": m.tablefix_ticks(3),
                          "kind": m.tablefix_loop_kind(), "loops": [m.tablefix_loops_seen() for _ in range(3)]}))
        """
    import uvloop  # noqa: F401 - a test dependency (pyproject's `test` extra): its absence is a failure, not a skip
    assert _run(table["default"], code) == {"fetch": 42, "ticks": [0, 1, 2], "kind": "uvloop",
                                                 "loops": [1, 2, 3]}
    assert _run(table["default"], code, no_uvloop=True)["kind"] == "asyncio"
    reentry = _run(table["default"], """
        try:
            m.tablefix_apply_async(lambda v: m.tablefix_fetch(v), 2)
        except m.MochiBridgeError as exc:
            print(json.dumps([type(exc).__name__, m.tablefix_apply_async(lambda v: v * 5, 2)]))
        """)
    assert reentry == ["RuntimeError", 10]  # per-call: a nested loop in a running one is refused by asyncio


def test_persistent_mode_keeps_one_loop_and_warns_once(table: dict[str, Any]) -> None:
    prelude = f"import sys; sys.path.insert(0, {str(table['opted'] / 'python_wrap' / 'tablefix')!r})\n"
    code = prelude + textwrap.dedent("""
        import json, warnings
        import _mochi_tablefix as m
        import threading
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loops = [m.tablefix_loops_seen() for _ in range(3)]
            values = [m.tablefix_fetch(1), m.tablefix_ticks(2)]
        results = []
        def worker(n):  # any thread may call: the loop runs on its own thread
            results.extend(m.tablefix_fetch(n) for _ in range(20))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        try:  # a callback that awaits the loop it runs on would wait for itself
            m.tablefix_apply_async(lambda v: m.tablefix_fetch(v), 2)
        except m.MochiBridgeError as exc:
            reentry = [type(exc).__name__, "refused" in str(exc)]
        print(json.dumps([loops, values, [str(w.message).split(":")[:2] for w in caught],
                          sorted(set(results)), len(results), m.tablefix_loops_seen(), reentry,
                          m.tablefix_apply_async(lambda v: v + 1, 2)]))
        """)
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [[1, 1, 1], [2, [0, 1]], [["mochi-pybridge", ' async-mode = "persistent"']],
                                       [0, 2, 4, 6], 80, 1, ["RuntimeError", True], 3]


def test_any_handles_and_checked_casts(table: dict[str, Any]) -> None:
    out = _run(table["opted"], """
        h = m.tablefix_anything({"k": [1, "two"]})
        errors = []
        for call in (lambda: m.tablefix_as_int(h), lambda: m.tablefix_as_string(m.tablefix_anything(3))):
            try:
                call()
            except m.PythonTypeMismatch as exc:
                errors.append(str(exc))
        print(json.dumps({"map": m.tablefix_as_map(h), "list": m.tablefix_as_list(m.tablefix_as_map(h)["k"]),
                          "int": m.tablefix_as_int(m.tablefix_anything(7)), "errors": errors,
                          "mono": [m.tablefix_first_int([3, 4]), m.tablefix_first_str(["z"])],
                          "erased": m.tablefix_as_string(m.tablefix_first([m.tablefix_anything("v")]))}))
        """)
    assert out == {"map": {"k": [1, "two"]}, "list": [1, "two"], "int": 7, "mono": [3, "z"], "erased": "v", "errors": [
        "tablefix_as_int (.): return value expected int, got dict",
        "tablefix_as_string (.): return value expected string, got int"]}


@pytest.mark.parametrize(("call", "kind", "message"), [
    ("m.tablefix_restock({'name': 'x', 'qty': 'many', 'tags': [], 'color': x.tablefix_Color_RED()}, 1)", "TypeError",
     "tablefix_restock (tablefix.restock): parameter 'item' expected tablefix_Item, got str at .qty"),
    ("m.tablefix_restock({'name': 'x'}, 1)", "TypeError",
     "tablefix_restock (tablefix.restock): parameter 'item' expected tablefix_Item, got dict at (no field qty)"),
    ("m.tablefix_parse.__call__(7)", "TypeError",
     "tablefix_parse (tablefix.parse): parameter 'text' expected string, got int"),
    ("m.tablefix_render_with(x.tablefix_Int_or_Str_or_ListInt_Str(v=3))", "TypeError",
     "tablefix_render_with (tablefix.render): parameter 'v' expected tablefix_Int_or_Str_or_ListInt, got int at "
     "(variant tablefix_Int_or_Str_or_ListInt_Str)"),
    ("m.tablefix_render_with(x.tablefix_Int_or_Str_Str(v='s'))", "TypeError",
     "tablefix_render_with (tablefix.render): parameter 'v' expected tablefix_Int_or_Str_or_ListInt, got "
     "tablefix_Int_or_Str_Str"),
    ("m.tablefix_render('s')", "TypeError", "tablefix_render (tablefix.render): parameter 'v' expected int, got str"),
    ("m.tablefix_next_color(x.tablefix_Item(name='', qty=0, tags=[], color=None))", "TypeError",
     "tablefix_next_color (tablefix.next_color): parameter 'c' expected tablefix_Color, got tablefix_Item"),
    ("m.tablefix_fake_color()", "PythonTypeMismatch",
     "tablefix_fake_color (tablefix.fake_color): return value expected tablefix_Color, got int"),
    ("m.tablefix_apply(lambda v: 'no', 1)", "TypeError", "callback result: expected int, got str"),
    ("m.tablefix_liar_adder()(1)", "PythonTypeMismatch", "callback result: expected int, got str"),
    ("m.tablefix_adder(1)('one')", "TypeError", "callback argument 1: expected int, got str"),
    ("m.tablefix_apply(5, 1)", "TypeError",
     "tablefix_apply (tablefix.apply): parameter 'f' expected fun(int): int, got int"),
    ("m.tablefix_fail_later('gone')", "KeyError", "'gone'"),
])
def test_every_error_kind_names_function_expected_and_actual(table: dict[str, Any], call: str, kind: str,
                                                             message: str) -> None:
    out = _run(table["default"], f"""
        try:
            {call}
        except Exception as exc:
            print(json.dumps([type(exc).__name__, str(exc), isinstance(exc, (TypeError, m.MochiBridgeError))]))
        """)
    assert out == [kind, message, True]
