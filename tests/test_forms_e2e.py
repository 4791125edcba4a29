"""The calling conventions of DESIGN §6a through a real lock and the compiled wrapper (formfix, shapesfix)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import build_wheel, fixture_index, package_files, run_cli, write_project
from mochi_subset import check_shim


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("forms")
    wheels = [build_wheel(base / "wheels", "formfix", "1.0", package_files("formfix"), ("shapesfix>=1",)),
              build_wheel(base / "wheels", "shapesfix", "1.0", package_files("shapesfix"))]
    idx = fixture_index(wheels)
    root = write_project(base / "proj", 'formfix = "1.0"', idx.url)
    proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(base / "cache")})
    yield {"root": root, "proc": proc}
    idx.stop()


def _run(root: Path, code: str) -> Any:
    prelude = f"import sys, json; sys.path.insert(0, {str(root / 'python_wrap' / 'formfix')!r})\n"
    proc = subprocess.run([sys.executable, "-I", "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_lock_offers_every_form_and_the_shim_is_valid(forms: dict[str, Any]) -> None:
    assert forms["proc"].returncode == 0, forms["proc"].stdout + forms["proc"].stderr
    shim = (forms["root"] / "python_wrap/formfix/shim.mochi").read_text()
    assert check_shim(shim) == []
    for line in ("extern python fun formfix_naturalsize(value: int): string",
                 "extern python fun formfix_naturalsize_binary(value: int, binary: bool): string",
                 "extern python fun formfix_naturalsize_with(value: formfix_Float_or_Str, binary: bool, gnu: bool, "
                 "fmt: string): string",
                 "extern python fun formfix_join(parts: list<string>): string",
                 "extern python fun formfix_shapesfix_Box_size(self: value): int",  # from shapesfix's own stubs
                 "extern python fun formfix_Counter_set_value(self: value, n: int)",
                 "extern python fun formfix_utfeight_len(text: string): int",
                 # `Box | Cube`: Cube derives from Box, so the return is a Box handle, not an overlapping sum type
                 "extern python fun formfix_biggest(n: int): value"):
        assert line in shim, line
    skipped = (forms["root"] / "python_wrap/formfix/SKIPPED.txt").read_text()
    assert "formfix.dropped\tPartiallyBound\tleft out: parameter 'cb'" in skipped


def test_forms_pass_what_they_name_and_keep_every_default(forms: dict[str, Any]) -> None:
    out = _run(forms["root"], """
        import _mochi_formfix as m
        print(json.dumps({
            "plain": m.formfix_naturalsize(3000000),
            "positional": m.formfix_naturalsize_binary(3000000, True),
            "with": m.formfix_naturalsize_with("2.5", False, True, "%.2f"),
            "int_kept": m.formfix_intcomma(1234567),
            "float_arm": m.formfix_intcomma_with(__import__("formfix_externs").formfix_Float_or_Str_Float(v=1.5)),
            "kwonly": [m.formfix_keywords(3), m.formfix_keywords_with(3, 10, "y")],
            "varargs": [m.formfix_join(["a", "b", "c"]), m.formfix_join([]), m.formfix_join_with(["a", "b"], "+"),
                        m.formfix_spread(1, [2, 3])],
            "narrowed": m.formfix_pick(7), "index": m.formfix_index(5),
            "unpacked": [m.formfix_styled("t"), m.formfix_styled_with("t", True, "red")],
            "overloads": [m.formfix_scale(4), m.formfix_scale_2("ab")],
            "partial": m.formfix_dropped_with(1, "z"),
            "keyword": [m.formfix_query_params("u", "q=1"), m.formfix_query_params_map("u", {"q": "1"})],
        }))
        """)
    assert out == {"plain": "int:3000000.0:False:False:3000000.0", "positional": "int:3000000.0:True:False:3000000.0",
                   "with": "str:2.5:False:True:2.50", "int_kept": "int:1234567", "float_arm": "float:1.5",
                   "kwonly": ["x6", "y30"], "varargs": ["a-b-c", "", "a+b", [1, 2, 3]], "narrowed": "int",
                   "index": 5, "unpacked": ["t|False|", "t|True|red"], "overloads": [8, "abab"], "partial": "1z",
                   "keyword": ["u|'q=1'", "u|{'q': '1'}"]}


def test_properties_classvars_protocols_and_foreign_classes(forms: dict[str, Any]) -> None:
    out = _run(forms["root"], """
        import io
        import _mochi_formfix as m
        c = m.formfix_Counter_new()
        m.formfix_Counter_set_value(c, 41)
        m.formfix_Counter_add_with(c, 1, False)
        errors = []
        for bad in (lambda: m.formfix_read_all(object()), lambda: m.formfix_write_to(object(), "x"),
                    lambda: m.formfix_Counter_set_value(c, "x")):
            try:
                bad()
            except TypeError as exc:
                errors.append(str(exc))
        box = m.formfix_make_box(3)
        d = m.formfix_when(2024)
        print(json.dumps({
            "getter": m.formfix_Counter_value(c), "limit": m.formfix_Counter_LIMIT(),
            "mangled": m.formfix_Counter_ISOeightsixzeroone_FORMAT(),
            "protocol": m.formfix_read_all(io.StringIO("text")),
            "io": m.formfix_write_to(io.StringIO(), "four"),
            "derived": [m.formfix_shapesfix_Box_size(m.formfix_biggest(3)), m.formfix_shapesfix_Box_size(
                m.formfix_biggest(1))],
            "foreign": [m.formfix_shapesfix_Box_size(box),
                        m.formfix_shapesfix_Box_size(m.formfix_shapesfix_Box_grow_with(box, 2))],
            "stdlib": [m.formfix_datetime_date_year(d), m.formfix_datetime_date_isoformat(d)],
            "errors": errors,
        }))
        """)
    assert out["getter"] == 42 and out["limit"] == 10 and out["mangled"] == "%Y-%m-%d"
    assert out["protocol"] == "text" and out["io"] == 4
    assert out["derived"] == [3, 1]
    assert out["foreign"] == [3, 5] and out["stdlib"] == [2024, "2024-03-05"]
    assert out["errors"] == [
        "formfix_read_all (formfix.read_all): parameter 'r' expected value (a formfix.Reader), got object",
        "formfix_write_to (formfix.write_to): parameter 'stream_' expected value (a typing.IO), got object",
        "formfix_Counter_set_value (formfix.value): parameter 'n' expected int, got str"]
