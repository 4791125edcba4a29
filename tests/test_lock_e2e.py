"""The whole graph against the local index: lock, no-op relock, imports, hashes, R3 checks, bumps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

from blake3 import blake3
from helpers import FixtureIndex, executed_tasks, run_cli, skipped_tasks
from packaging.pylock import Pylock

STAGES = ("fetch", "stubs", "surface", "codegen")


def _lock(locked: dict[str, Any]) -> dict[str, Any]:
    return tomllib.loads((locked["root"] / "mochi.lock").read_text())


def test_first_lock_builds_every_stage(locked: dict[str, Any]) -> None:
    first = locked["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    ran = executed_tasks(first.stdout)
    for name in ("typedfix", "liarfix"):
        assert {f"{stage}:{name}" for stage in STAGES} <= ran
    assert {"resolve", "fetch:helperfix", "compile", "site", "lock"} <= ran
    root: Path = locked["root"]
    for dist in ("typedfix", "liarfix"):
        wrap = root / "python_wrap" / dist
        assert (wrap / "shim.mochi").is_file()
        assert (wrap / f"_mochi_{dist}.abi3.so").is_file()
        assert (wrap / f"{dist}_externs.py").is_file()
        assert (wrap / "SKIPPED.txt").is_file()
    assert "typedfix 1.0: 22 translated, 2 skipped (py.typed)" in first.stdout


def test_lock_records_every_package_with_served_hashes(locked: dict[str, Any], index: FixtureIndex) -> None:
    lock = _lock(locked)
    by_name = {p["name"]: p for p in lock["python-package"]}
    assert sorted(by_name) == ["helperfix", "liarfix", "typedfix"]
    for name, pkg in by_name.items():
        served = index.files[pkg["wheel-filename"]]
        assert pkg["wheel-sha256"] == hashlib.sha256(served).hexdigest()
        assert pkg["wheel-blake3"] == blake3(served).hexdigest()
        assert pkg["pypi-simple-sha256"] == pkg["wheel-sha256"]
        assert pkg["source"] == {"kind": "index", "index": index.url}
        assert pkg["markers"] == ""
        for field in ("stub-provenance", "stub-sha256", "wrapper-sha256", "dependencies", "wheel-filename"):
            assert field in pkg, (name, field)
    assert by_name["typedfix"]["dependencies"] == ["helperfix>=1"]
    assert by_name["typedfix"]["stub-provenance"] == "py.typed"
    assert by_name["helperfix"]["direct"] is False
    assert len(by_name["typedfix"]["wrapper-sha256"]) == 64


def test_wrapper_sha256_is_the_digest_of_the_generated_sources(locked: dict[str, Any]) -> None:
    root: Path = locked["root"]
    pkg = next(p for p in _lock(locked)["python-package"] if p["name"] == "typedfix")
    parts = [root / ".mochi/deps/typedfix/_mochi_typedfix.c", root / "python_wrap/typedfix/shim.mochi",
             root / "python_wrap/typedfix/typedfix_externs.py"]
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    assert pkg["wrapper-sha256"] == h.hexdigest()


def test_pylock_validates_and_keeps_blake3_out_of_hashes(locked: dict[str, Any]) -> None:
    text = (locked["root"] / "pylock.toml").read_text()
    data = tomllib.loads(text)
    pylock = Pylock.from_dict(data)
    assert {p.name for p in pylock.packages} == {"helperfix", "liarfix", "typedfix"}
    for pkg in data["packages"]:
        assert set(pkg["wheels"][0]["hashes"]) == {"sha256"}
        assert len(pkg["tool"]["mochi-pybridge"]["wheel-blake3"]) == 64


def test_uv_installs_from_the_pylock(locked: dict[str, Any], tmp_path: Path) -> None:
    from uv import find_uv_bin
    target = tmp_path / "target"
    proc = subprocess.run([find_uv_bin(), "pip", "install", "-r", str(locked["root"] / "pylock.toml"),
                           "--target", str(target), "--python", sys.executable, "--no-config",
                           "--cache-dir", str(tmp_path / "uvc")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (target / "typedfix" / "__init__.py").is_file()
    assert (target / "helperfix" / "__init__.py").is_file()


def test_second_lock_does_nothing_and_keeps_the_lock_byte_identical(locked: dict[str, Any]) -> None:
    root: Path = locked["root"]
    before = (root / "mochi.lock").read_bytes(), (root / "pylock.toml").read_bytes()
    second = run_cli("lock", str(root), env=locked["env"])
    assert second.returncode == 0, second.stdout + second.stderr
    assert executed_tasks(second.stdout) == set()
    assert {"resolve", "lock", "compile", "fetch:typedfix", "codegen:liarfix"} <= skipped_tasks(second.stdout)
    assert ((root / "mochi.lock").read_bytes(), (root / "pylock.toml").read_bytes()) == before


def _call(root: Path, dist: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter with only python_wrap/<dist> added to sys.path."""
    prelude = f"import sys; sys.path.insert(0, {str(root / 'python_wrap' / dist)!r})\n"
    return subprocess.run([sys.executable, "-I", "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, check=False)


def test_wrapped_functions_return_what_the_package_returns(locked: dict[str, Any]) -> None:
    proc = _call(locked["root"], "typedfix", """
        import json, _mochi_typedfix as m
        out = {
            "add": m.typedfix_add(2, 40),
            "scale": m.typedfix_scale_with(1.5, 2),
            "scale_default": m.typedfix_scale(4),
            "even": m.typedfix_is_even(3),
            "greet": m.typedfix_greet_with("mochi", "?"),
            "nothing": m.typedfix_nothing(1),
            "words": m.typedfix_words("a b c"),
            "counts": m.typedfix_counts("a b a"),
            "maybe_none": m.typedfix_maybe_len_with(None),
            "maybe": m.typedfix_maybe_len("four"),
            "total": m.typedfix_total([1, 2.5]),
            "lengths": m.typedfix_lengths({"x": ["a", "b"], "y": []}),
            "first": m.typedfix_first_or_none([]),
            "nested": m.typedfix_nested(3),
            "join": m.typedfix_join_with(["a", "b"], "-", True, None),
            "kwonly": m.typedfix_with_kwonly_with(3, 5),
            "shout": m.typedfix_shout("hi"),
        }
        print(json.dumps(out, sort_keys=True))
        """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "add": 42, "scale": 3.0, "scale_default": 8.0, "even": False, "greet": "hello mochi?", "nothing": None,
        "words": ["a", "b", "c"], "counts": {"a": 2, "b": 1}, "maybe_none": None, "maybe": 4, "total": 3.5,
        "lengths": {"x": 2, "y": 0}, "first": None, "nested": [{"xs": []}, {"xs": [0]}, {"xs": [0, 1]}],
        "join": "A-B", "kwonly": 15, "shout": "HI!"}


def test_arguments_are_checked_at_the_boundary(locked: dict[str, Any]) -> None:
    proc = _call(locked["root"], "typedfix", """
        import _mochi_typedfix as m
        for call in (lambda: m.typedfix_add(1, "2"), lambda: m.typedfix_add(True, 1),
                     lambda: m.typedfix_total([1.0, "x"]), lambda: m.typedfix_add(1),
                     lambda: m.typedfix_add(a=1, b=2)):
            try:
                call()
            except TypeError as exc:
                print(exc)
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "typedfix_add (typedfix.add): parameter 'b' expected int, got str",
        "typedfix_add (typedfix.add): parameter 'a' expected int, got bool",
        "typedfix_total (typedfix.total): parameter 'values_' expected list<float>, got str at [1]",
        "typedfix_add() takes 2 arguments (1 given)",
        "typedfix_add() takes positional arguments only",
    ]


def test_wrong_return_types_raise_python_type_mismatch(locked: dict[str, Any]) -> None:
    proc = _call(locked["root"], "liarfix", """
        import _mochi_liarfix as m, liarfix_externs as e
        assert e.PythonTypeMismatch is m.PythonTypeMismatch and issubclass(m.PythonTypeMismatch, TypeError)
        print(m.liarfix_honest(1))
        for f in (m.liarfix_answer, m.liarfix_numbers, m.liarfix_flag):
            try:
                f()
            except m.PythonTypeMismatch as exc:
                print(type(exc).__name__, exc)
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "2",
        "PythonTypeMismatch liarfix_answer (liarfix.answer): return value expected int, got str",
        "PythonTypeMismatch liarfix_numbers (liarfix.numbers): return value expected list<int>, got str at [2]",
        "PythonTypeMismatch liarfix_flag (liarfix.flag): return value expected bool, got int",
    ]


def test_bumping_one_dependency_reruns_only_its_chain(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    run_cli("lock", str(root), env=locked["env"])  # absolute paths moved: let the copy settle first
    manifest = root / "mochi.toml"
    manifest.write_text(manifest.read_text().replace('liarfix = "==1.0"', 'liarfix = "==1.1"'))
    proc = run_cli("lock", str(root), env=locked["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = executed_tasks(proc.stdout)
    assert ran == {"resolve", *(f"{s}:liarfix" for s in (*STAGES, "capabilities")), "compile", "site", "lock"}
    lock = tomllib.loads((root / "mochi.lock").read_text())
    assert {p["name"]: p["version"] for p in lock["python-package"]} == {
        "helperfix": "1.0", "liarfix": "1.1", "typedfix": "1.0"}


def test_import_constraint_must_agree_with_the_lock(make_project: Any, cache_env: dict[str, str]) -> None:
    root = make_project(program='import python "liarfix@^1.1" as liarfix\n')
    proc = run_cli("lock", str(root), env=cache_env)
    assert proc.returncode == 2
    assert f"{root / 'app.mochi'}:1:16: liarfix 1.0 (resolved from mochi.toml ==1.0) does not satisfy " \
           ">=1.1,<2" in proc.stdout + proc.stderr
    assert not (root / "mochi.lock").exists()


def test_import_without_manifest_entry_names_the_command_that_adds_it(make_project: Any,
                                                                      cache_env: dict[str, str]) -> None:
    root = make_project(program='import python "requests" as requests\n')
    proc = run_cli("lock", str(root), env=cache_env)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert f"{root / 'app.mochi'}:1:16: 'requests' is imported but not declared in mochi.toml" in out
    assert "mochi-py add requests" in out


def test_doit_lock_from_the_repository_dodo_shares_the_graph(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    repo = Path(__file__).resolve().parent.parent
    env = {**locked["env"], "MOCHI_PROJECT": str(root)}
    first = subprocess.run([sys.executable, "-m", "doit", "-f", str(repo / "dodo.py"), "lock"], capture_output=True,
                           text=True, env={**os.environ, **env}, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run([sys.executable, "-m", "doit", "-f", str(repo / "dodo.py"), "lock", f"project={root}"],
                           capture_output=True, text=True, env={**os.environ, **locked["env"]}, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert executed_tasks(again.stdout) == set()
    assert "lock" in skipped_tasks(again.stdout)


def test_parallel_lock_writes_the_same_bytes(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    for generated in (".mochi", "python_wrap", "mochi.lock", "pylock.toml"):
        path = root / generated
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    proc = run_cli("lock", str(root), "-n", "2", env=locked["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "mochi.lock").read_bytes() == (locked["root"] / "mochi.lock").read_bytes()
    assert (root / "pylock.toml").read_bytes() == (locked["root"] / "pylock.toml").read_bytes()


def test_each_overload_variant_is_its_own_checked_extern(locked: dict[str, Any]) -> None:
    shim = (locked["root"] / "python_wrap" / "typedfix" / "shim.mochi").read_text()
    assert "extern python fun typedfix_over(x: int): int" in shim  # the first overload: the plain name
    assert "extern python fun typedfix_over_2(x: string): string" in shim
    proc = _call(locked["root"], "typedfix", """
        import _mochi_typedfix as m
        print(m.typedfix_over(4), m.typedfix_over_2("x"))
        try:
            m.typedfix_over("x")
        except TypeError as exc:
            print(exc)
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["4 x", "typedfix_over (typedfix.over): parameter 'x' expected int, got str"]


def test_strict_return_types_false_passes_values_through(make_project: Any, index: FixtureIndex,
                                                          cache_env: dict[str, str]) -> None:
    manifest = (f'[python-dependencies]\nliarfix = "==1.0"\n[python]\nrequires-python = ">=3.11"\n'
                f'strict-return-types = false\nindexes = [{{ url = "{index.url}" }}]\n')
    root = make_project(manifest=manifest, program="")
    proc = run_cli("lock", str(root), env=cache_env)
    assert proc.returncode == 0, proc.stdout
    out = _call(root, "liarfix", "import _mochi_liarfix as m\nprint(m.liarfix_answer(), m.liarfix_numbers())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "forty-two [1, 2, 'three']"
