"""Issue 14, item 4 (the lock side): a hostile `mochi.lock` is validated before anything uses it. `check`
fails with a clear message naming package and field, writes nothing anywhere (no download to an
absolute path, no directory outside the project), and reports every disagreement (version,
dependencies, unknown fields, wrong types) as drift with exit 1, never a traceback or "a bug"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from helpers import run_cli, tree_files


def _edit(root: Path, name: str, change: Callable[[Any], None]) -> None:
    lock = root / "mochi.lock"
    doc = tomlkit.parse(lock.read_text())
    (pkg,) = [p for p in doc["python-package"] if p["name"] == name]
    change(pkg)
    lock.write_text(tomlkit.dumps(doc))


def _check(root: Path, env: dict[str, str], cache: Path) -> tuple[int, str]:
    before = tree_files(root), tree_files(cache)
    proc = run_cli("check", str(root), env=env)
    out = proc.stdout + proc.stderr
    assert (tree_files(root), tree_files(cache)) == before, "check wrote something"
    assert "Traceback" not in out and "report this as a bug" not in out, out
    return proc.returncode, out


def test_hostile_paths_in_the_lock_are_never_used(locked: dict[str, Any], copy_project: Any, tmp_path: Path) -> None:
    root = copy_project(locked["root"])
    target = tmp_path / "outside" / "planted.whl"
    target.parent.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")

    def wheel(pkg: Any) -> None:
        pkg["wheel-filename"] = str(target)  # absolute: `scratch / filename` would be the file outside
        pkg["wheel-blake3"] = "0" * 64  # not in the cache, so check would fetch it

    _edit(root, "liarfix", wheel)
    _edit(root, "typedfix", lambda pkg: pkg.__setitem__("name", str(victim)))  # the package's scratch directory
    code, out = _check(root, locked["env"], locked["cache"])
    assert code == 1, out
    assert "liarfix: wheel-filename: locked '/" in out
    assert "actual not a wheel file name (one path component, PEP 427)" in out
    assert "python-package[2]: name: locked '/" in out
    assert "actual not a normalised distribution name (PEP 503)" in out
    assert list(target.parent.iterdir()) == []
    assert tree_files(victim) == {"keep.txt": b"mine"}


_MALFORMED = {
    "wheel-sha256": ("/abs/dir/x", "actual not 64 lowercase hex digits"),
    "wheel-size": ("big", "actual not a whole number"),
    "capabilities": ("fs", "actual not a list of strings"),
    "wheel-url": ("ftp://127.0.0.1/x.whl", "actual a ftp URL (only http, https and file are opened)"),
    "surprise": ("field", "actual unknown field"),
    "dependencies": (["not a requirement !"], "actual not a PEP 508 requirement"),
}


def test_every_disagreement_is_drift_with_exit_1(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    _edit(root, "liarfix", lambda pkg: [pkg.__setitem__(k, v) for k, (v, _) in _MALFORMED.items()])
    _edit(root, "helperfix", lambda pkg: pkg.__setitem__("version", "9.9"))
    _edit(root, "typedfix", lambda pkg: pkg.__setitem__("dependencies", []))
    code, out = _check(root, locked["env"], locked["cache"])
    assert code == 1, out
    for field, (_, why) in _MALFORMED.items():
        assert f"liarfix: {field}: locked " in out
        assert why in out
    assert "helperfix: version: locked '9.9', actual the locked wheel helperfix-1.0-py3-none-any.whl is version 1.0" \
        in out
    assert "typedfix: dependencies: locked (none), actual helperfix>=1" in out


def test_lock_refuses_a_hostile_lock_naming_the_field(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    _edit(root, "liarfix", lambda pkg: pkg.__setitem__("wheel-blake3", "../../../../etc"))
    proc = run_cli("lock", str(root), env=locked["env"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "liarfix: wheel-blake3: not 64 lowercase hex digits (locked '../../../../etc')" in out
    assert "Traceback" not in out
