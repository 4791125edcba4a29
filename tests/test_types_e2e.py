"""The type table through a real lock: handles, methods, properties, constants and collection rows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FixtureIndex, fixture_index, run_cli
from mochi_subset import check_shim


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory, wheel_dir: Path) -> Iterator[dict[str, Any]]:
    idx: FixtureIndex = fixture_index(sorted((wheel_dir / "extra").glob("*fix-*.whl")))
    base = tmp_path_factory.mktemp("rich")
    root = base / "proj"
    root.mkdir()
    (root / "mochi.toml").write_text(f'[python-dependencies]\nrichfix = "1.0"\ntriofix = "1.0"\n[python]\n'
                                     f'requires-python = ">=3.11"\nindexes = [{{ url = "{idx.url}" }}]\n')
    proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(base / "cache")})
    yield {"root": root, "proc": proc}
    idx.stop()


def _run(root: Path, code: str) -> Any:
    prelude = f"import sys, json; sys.path.insert(0, {str(root / 'python_wrap' / 'richfix')!r})\n"
    proc = subprocess.run([sys.executable, "-I", "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_lock_translates_classes_and_collections(rich: dict[str, Any]) -> None:
    assert rich["proc"].returncode == 0, rich["proc"].stdout + rich["proc"].stderr
    assert "richfix 1.0: 33 translated, 0 skipped (py.typed)" in rich["proc"].stdout
    shim = (rich["root"] / "python_wrap" / "richfix" / "shim.mochi").read_text()
    assert check_shim(shim) == []
    for line in ("extern python fun richfix_Counter_new(start: int): value",
                 "extern python fun richfix_Counter_new_with(start: int, step: int): value",
                 "extern python fun richfix_Counter_bump(self: value): int",
                 "extern python fun richfix_Counter_bump_with(self: value, times: int): int",
                 "extern python fun richfix_Counter_doubled(self: value): int",
                 "extern python fun richfix_LIMIT(): int",
                 "extern python fun richfix_RETRIES(): int",  # `Final = 3`: typed by its value
                 "extern python fun richfix_crate_of(n: int): value",  # a generic class: a handle
                 "extern python fun richfix_is_crate(c: value): bool",
                 "extern python fun richfix_checksum(data: list<int>): list<int>",
                 "extern python fun richfix_inverse(m: map<string, int>): map<int, string>",
                 "extern python fun richfix_unique(words: set<string>): set<string>",
                 "extern python fun richfix_square_area(side: float): float"):
        assert line in shim


def test_handles_methods_properties_and_constants(rich: dict[str, Any]) -> None:
    out = _run(rich["root"], """
        import _mochi_richfix as m
        c = m.richfix_Counter_new_with(5, 2)
        loud = m.richfix_LoudCounter_new(1)
        import richfix_externs as x
        p = x.richfix_Point(x=3.0, y=-4.0)
        print(json.dumps({
            "bump": m.richfix_Counter_bump_with(c, 3), "doubled": m.richfix_Counter_doubled(c),
            "step": m.richfix_Counter_step(c), "same": m.richfix_Counter_again(c) is c,
            "zero": m.richfix_Counter_doubled(m.richfix_Counter_zero()),
            "describe": m.richfix_Counter_describe(7), "shout": m.richfix_LoudCounter_shout(loud),
            "inherited": m.richfix_LoudCounter_bump(loud), "norm": m.richfix_norm1(p),
            "dict": m.richfix_norm1({"x": 1, "y": 2}),
            "limit": m.richfix_LIMIT(), "version": m.richfix_VERSION(), "retries": m.richfix_RETRIES(),
            "crate": m.richfix_is_crate(m.richfix_crate_of(2)),
        }))
        """)
    assert out == {"bump": 11, "doubled": 22, "step": 2, "same": True, "zero": 0, "describe": "counter 7",
                   "shout": "1!", "inherited": 2, "norm": 7.0, "dict": 3.0, "limit": 3, "version": "1.0", "retries": 3,
                   "crate": True}


def test_collection_rows_convert_both_ways(rich: dict[str, Any]) -> None:
    out = _run(rich["root"], """
        import _mochi_richfix as m
        print(json.dumps({
            "checksum": m.richfix_checksum([1, 2, 255]), "unique": sorted(m.richfix_unique({"a", "b"})),
            "pair": m.richfix_pair(4), "squares": m.richfix_squares(4), "inverse": m.richfix_inverse({"a": 1}),
            "mode": m.richfix_mode("slow"), "many": m.richfix_many([1, 2]), "half": m.richfix_half(3),
            "present": m.richfix_present(2), "square": m.richfix_square_area(1.5),
        }))
        """)
    assert out == {"checksum": [255, 2, 1], "unique": ["A", "B"], "pair": [4, 5], "squares": [0, 1, 4, 9],
                   "inverse": {"1": "a"}, "mode": 2, "many": ["1", "2"], "half": 1.5, "present": 2.0,
                   "square": 2.25}


def test_handles_are_checked_at_the_boundary(rich: dict[str, Any]) -> None:
    out = _run(rich["root"], """
        import _mochi_richfix as m
        errors = []
        for call in (lambda: m.richfix_Counter_bump_with(object(), 1),
                     lambda: m.richfix_norm1(m.richfix_Counter_new(1)),
                     lambda: m.richfix_checksum([1, 300]), lambda: m.richfix_unique(["a"])):
            try:
                call()
            except TypeError as exc:
                errors.append(str(exc))
        print(json.dumps(errors))
        """)
    assert out == [
        "richfix_Counter_bump_with (richfix.bump): parameter 'self' expected value (a richfix.Counter), got object",
        "richfix_norm1 (richfix.norm1): parameter 'p' expected richfix_Point, got Counter at (no field x)",
        "richfix_checksum (richfix.checksum): parameter 'data' expected list<int>, got int at [1] (a byte is 0..255)",
        "richfix_unique (richfix.unique): parameter 'words' expected set<string>, got list",
    ]


def test_async_items_of_a_trio_package_are_refused_with_the_runtime_reason(rich: dict[str, Any]) -> None:
    skipped = (rich["root"] / "python_wrap" / "triofix" / "SKIPPED.txt").read_text()
    assert "triofix.fetch\tIncompatibleAsyncRuntime\tthe distribution imports trio (R12)" in skipped
    assert ("  triofix: 1 async item(s) skipped: the package runs its async code on trio (R12) "
            "(IncompatibleAsyncRuntime; see python_wrap/triofix/SKIPPED.txt)") in rich["proc"].stdout
    shim = (rich["root"] / "python_wrap" / "triofix" / "shim.mochi").read_text()
    assert "extern python fun triofix_plain(x: int): int" in shim


def test_python_exceptions_become_bridge_errors_keeping_type_and_message(rich: dict[str, Any]) -> None:
    out = _run(rich["root"], """
        import _mochi_richfix as m
        try:
            m.richfix_explode("no good")
        except m.MochiBridgeError as exc:
            print(json.dumps([type(exc).__name__, type(exc).__module__, str(exc), type(exc.__cause__).__name__,
                              str(exc.__cause__), isinstance(exc, ValueError)]))
        """)
    assert out == ["ValueError", "_mochi_richfix", "no good", "ValueError", "no good", False]


def test_python_exceptions_become_mochi_panics_when_the_runtime_is_there(rich: dict[str, Any], tmp_path: Path) -> None:
    runtime = tmp_path / "mochi_runtime"
    runtime.mkdir()
    (runtime / "__init__.py").write_text("")
    (runtime / "except_.py").write_text(
        "class MochiPanic(Exception):\n    def __init__(self, code, msg):\n"
        "        super().__init__(code, msg)\n        self.code, self.msg = code, msg\n")
    out = _run(rich["root"], f"""
        sys.path.insert(0, {str(tmp_path)!r})
        import _mochi_richfix as m
        from mochi_runtime.except_ import MochiPanic
        try:
            m.richfix_explode("boom")
        except MochiPanic as exc:
            print(json.dumps([exc.code, exc.msg, type(exc.__cause__).__name__]))
        """)
    assert out == [7, "ValueError: boom", "ValueError"]
