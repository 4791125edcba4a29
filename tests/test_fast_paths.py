"""The runtime's container fast paths (wrappers/rt_convert.c) keep the general path's semantics.

Every case runs twice through the compiled wrapper: with exact containers (the fast path) and with
subclasses of them holding the same items (the general path, which the fast path never takes). Both
must give the same result or the same error, message and element position included; a few messages
are pinned down as well. Copies stay copies: neither side ever sees the other's container.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import build_wheel, fixture_index, package_files, run_cli, write_project

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import _mochi_fastfix as m, fastfix, fastfix_externs as x

class L(list): pass
class T(tuple): pass
class D(dict): pass
class S(set): pass
SLOW = {list: L, tuple: T, dict: D, set: S}

def slow(v):
    return SLOW[type(v)](v) if type(v) in SLOW else v

def outcome(fn, *args):
    try:
        r = fn(*args)
        return ["ok", repr(r), type(r).__name__, [type(i).__name__ for i in (r.values() if type(r) is dict else r)]
                if isinstance(r, (list, tuple, set, dict)) else None]
    except Exception as exc:
        return [type(exc).__name__, str(exc)]

def give(name, value):
    fast, general = [], []
    for sample, out in ((value, fast), (slow(value), general)):
        fastfix.SAMPLES["k"] = sample
        out += outcome(getattr(m, "fastfix_" + name), "k")
    return fast, general

def take(name, value):
    return outcome(getattr(m, "fastfix_" + name), value), outcome(getattr(m, "fastfix_" + name), slow(value))

big = 2 ** 2000
cases = {
    "ints": give("give_ints", [0, 1, 2]), "ints_bad": give("give_ints", [0, 1, "two"]),
    "ints_bool": give("give_ints", [0, True]), "ints_empty": give("give_ints", []),
    "floats_widen": give("give_floats", [1, 2.5, -3]), "floats_big": give("give_floats", [1.0, big]),
    "floats_bad": give("give_floats", [1.0, None]), "bools_int": give("give_bools", [True, 1]),
    "opt": give("give_opt_ints", [1, None, 2]), "opt_bad": give("give_opt_ints", [1, None, "x"]),
    "tuple": give("give_tuple", (1, 2, 3)), "tuple_bad": give("give_tuple", (1, 2, "x")),
    "seq_list": give("give_seq", ["a", "b"]), "seq_bad": give("give_seq", ("a", 2)),
    "map": give("give_map", {"a": 1, "b": 2}), "map_bad": give("give_map", {"a": 1, "b": "x"}),
    "map_key": give("give_map", {"a": 1, 2: 3}), "int_map": give("give_int_map", {1: 1, 2: 2.5}),
    "int_map_bool_key": give("give_int_map", {True: 1.0}), "int_map_big": give("give_int_map", {1: big}),
    "set": give("give_set", {"a", "b"}), "set_bad": give("give_set", {"a", 1}),
    "float_set": give("give_float_set", {1, 2.5}), "float_set_merge": give("give_float_set", {1, 1.0, 2}),
    "nested_bad": give("give_nested", [{"a": 1}, {"b": "x"}]),
    "row_tags_bad": give("give_row", fastfix.Row(name="r", qty=1, tags=["a", 3])),
    "fresh_ints_bad": give("fresh_ints", [0, 1, "two"]), "fresh_floats": give("fresh_floats", [1, 2.5]),
    "fresh_map_bad": give("fresh_map", {"a": 1, "b": "x"}), "fresh_int_map": give("fresh_int_map", {1: 2}),
    "take_ints_bool": take("take_ints", [1, True]),
    "take_floats": take("take_floats", [1, 2.5]), "take_floats_big": take("take_floats", [big]),
    "take_strs_bad": take("take_strs", ["a", b"b"]), "take_map": take("take_map", {"a": 1, "b": 0.5}),
    "take_map_bad": take("take_map", {"a": "x"}), "take_int_map_bool": take("take_int_map", {True: "x"}),
    "take_set": take("take_set", {3, 1, 2}), "take_set_bad": take("take_set", {1, "2"}),
    "take_row_qty": take("take_row", x.fastfix_Row(name="r", qty="many", tags=[])),
    "take_row_tags": take("take_row", x.fastfix_Row(name="r", qty=1, tags=["a", 2])),
    # past the first few entries (the iterators the checks walk), and fresh (checked in place) sets
    "map_many_bad": give("give_map", {**{f"k{i}": i for i in range(40)}, "z": None, "y": 1}),
    "map_many_widen": give("give_map", {f"k{i}": i for i in range(40)}),
    "int_map_many_bad": give("give_int_map", {**{i: 0.5 for i in range(40)}, "z": 1.0}),
    "int_map_many_widen": give("give_int_map", {i: i if i % 2 else 0.5 for i in range(40)}),
    "take_map_many_bad": take("take_map", {**{f"k{i}": 1.0 for i in range(40)}, "z": "x"}),
    "set_many_bad": give("give_set", {f"w{i}" for i in range(40)} | {7}),
    "frozenset": give("give_set", frozenset({"a", "b"})),
    "fresh_set": give("fresh_set", {"a", "b"}), "fresh_set_bad": give("fresh_set", {"a", 2}),
    "fresh_set_int": give("fresh_set", {2}),
    "fresh_set_opt": give("fresh_set", {"a", None}), "fresh_float_set": give("fresh_float_set", {1, 2.5}),
    "fresh_float_set_merge": give("fresh_float_set", {1, 1.0, 3}),
    "take_set_many_bad": take("take_set", set(range(40)) | {"x"}),
    "take_set_bool": take("take_set", {2, True}),
}

# copies stay copies: Python never holds the caller's list, the caller never gets Python's
mine = [1, 2, 3]
m.fastfix_take_ints(mine)
list_taken = fastfix.SAMPLES["taken"] is mine
theirs = fastfix.SAMPLES["k"] = [4, 5]
got = m.fastfix_give_ints("k")
mine_map = {"a": 1.0}
m.fastfix_take_map(mine_map)
aliasing = [list_taken, fastfix.SAMPLES["taken"] is mine_map, got is theirs, got == theirs]
fastfix.SAMPLES["k"] = [7, 8]
fresh = m.fastfix_fresh_ints("k")
fresh.append(9)
fresh_pair = [fresh, fastfix.SAMPLES["k"]]
# a fresh set nothing else reaches is passed on itself; one a weak reference reaches is copied
fastfix.SAMPLES["k"] = {"a", "b"}
fresh_set = m.fastfix_fresh_set("k")
fresh_set.add("c")
weak = m.fastfix_weak_set("k")
weak_alias = fastfix.SAMPLES["weak"]() is weak
weak.add("c")
print(json.dumps({"cases": cases, "aliasing": aliasing, "fresh": fresh_pair,
                  "sets": [sorted(fresh_set), sorted(fastfix.SAMPLES["k"]), weak_alias,
                           fastfix.SAMPLES["weak"]() is None]}))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("fast")
    idx = fixture_index([build_wheel(base / "wheels", "fastfix", "1.0", package_files("fastfix"))])
    try:
        root = write_project(base / "proj", 'fastfix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(base / "cache")})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        idx.stop()
    out = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(SCRIPT), str(root / "python_wrap" / "fastfix")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    yield json.loads(out.stdout)


def test_fast_and_general_paths_agree_on_every_case(run: dict[str, Any]) -> None:
    differ = {name: pair for name, pair in run["cases"].items() if pair[0] != pair[1]}
    assert differ == {}


@pytest.mark.parametrize(("case", "expected"), [
    ("ints", ["ok", "[0, 1, 2]", "list", ["int", "int", "int"]]),
    ("ints_bad", ["PythonTypeMismatch",
                  "fastfix_give_ints (fastfix.give_ints): return value expected list<int>, got str at [2]"]),
    ("ints_bool", ["PythonTypeMismatch",
                   "fastfix_give_ints (fastfix.give_ints): return value expected list<int>, got bool at [1]"]),
    ("floats_widen", ["ok", "[1.0, 2.5, -3.0]", "list", ["float", "float", "float"]]),
    ("floats_big", ["OverflowError", "int too large to convert to float"]),
    ("opt_bad", ["PythonTypeMismatch",
                 "fastfix_give_opt_ints (fastfix.give_opt_ints): return value expected list<int?>, got str at [2]"]),
    ("tuple", ["ok", "[1, 2, 3]", "list", ["int", "int", "int"]]),
    ("map_bad", ["PythonTypeMismatch",
                 "fastfix_give_map (fastfix.give_map): return value expected map<string, int>, got str at ['b']"]),
    ("map_key", ["PythonTypeMismatch",
                 "fastfix_give_map (fastfix.give_map): return value expected map<string, int>, got int at a key"]),
    ("int_map", ["ok", "{1: 1.0, 2: 2.5}", "dict", ["float", "float"]]),
    ("float_set_merge", ["ok", "{1.0, 2.0}", "set", ["float", "float"]]),
    ("fresh_float_set_merge", ["ok", "{1.0, 3.0}", "set", ["float", "float"]]),
    ("fresh_set_int", ["PythonTypeMismatch",
                       "fastfix_fresh_set (fastfix.fresh_set): return value expected set<string>, got int at [0]"]),
    ("map_many_bad", ["PythonTypeMismatch",
                      "fastfix_give_map (fastfix.give_map): return value expected map<string, int>, got NoneType "
                      "at ['z']"]),
    ("int_map_many_bad", ["PythonTypeMismatch", "fastfix_give_int_map (fastfix.give_int_map): return value "
                          "expected map<int, float>, got str at a key"]),
    ("nested_bad", ["PythonTypeMismatch", "fastfix_give_nested (fastfix.give_nested): return value expected "
                    "list<map<string, int>>, got str at [1]['b']"]),
    ("row_tags_bad", ["PythonTypeMismatch",
                      "fastfix_give_row (fastfix.give_row): return value expected fastfix_Row, got int at .tags[1]"]),
    ("fresh_ints_bad", ["PythonTypeMismatch",
                        "fastfix_fresh_ints (fastfix.fresh_ints): return value expected list<int>, got str at [2]"]),
    ("fresh_floats", ["ok", "[1.0, 2.5]", "list", ["float", "float"]]),
    ("take_ints_bool", ["TypeError",
                        "fastfix_take_ints (fastfix.take_ints): parameter 'xs' expected list<int>, got bool at [1]"]),
    ("take_floats", ["ok", "['int:1', 'float:2.5']", "list", ["str", "str"]]),  # an int argument stays an int
    ("take_map", ["ok", "['a=int', 'b=float']", "list", ["str", "str"]]),
    ("take_map_bad", ["TypeError", "fastfix_take_map (fastfix.take_map): parameter 'm' expected "
                      "map<string, float>, got str at ['a']"]),
    ("take_int_map_bool", ["TypeError", "fastfix_take_int_map (fastfix.take_int_map): parameter 'm' expected "
                           "map<int, string>, got bool at a key"]),
    ("take_row_qty", ["TypeError",
                      "fastfix_take_row (fastfix.take_row): parameter 'r' expected fastfix_Row, got str at .qty"]),
    ("take_row_tags", ["TypeError", "fastfix_take_row (fastfix.take_row): parameter 'r' expected fastfix_Row, "
                       "got int at .tags[1]"]),
])
def test_messages_name_the_element(run: dict[str, Any], case: str, expected: list[Any]) -> None:
    assert run["cases"][case][0] == expected


def test_containers_are_copied_both_ways(run: dict[str, Any]) -> None:
    assert run["aliasing"] == [False, False, False, True]
    assert run["fresh"] == [[7, 8, 9], [7, 8]]


def test_fresh_sets_pass_on_unless_weakly_referenced(run: dict[str, Any]) -> None:
    # the weakly referenced set was copied: the weak reference died with Python's own set
    assert run["sets"] == [["a", "b", "c"], ["a", "b"], False, True]


def test_every_fixture_function_is_translated() -> None:
    """Nothing the cases rely on is skipped (the sample store holds `Any`: a value, with `any = "handle"`)."""
    from helpers import PACKAGES

    from tasks.surface.items import build_surface
    from tasks.surface.model import SurfaceOptions

    surface = build_surface(PACKAGES / "fastfix", ["fastfix"], "fastfix", "1.0", "py.typed",
                            SurfaceOptions(python_version=(3, 11)))
    assert [s.item for s in surface.skipped] == []
