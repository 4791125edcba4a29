"""The cross-project cache of stage outputs (tasks/cache.py `stages/`): verified on every use.

A second project with the same pins and settings takes every stage output from the cache and writes
the same files; an entry that changed on disk (a flipped byte, a forged payload, a truncated file)
is never used: the stage runs again and replaces it. The compiled runtime library is such an entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli, tree_files

from tasks.cache import StageEntry, stage_key, stage_lookup, stage_store


def _entries(cache: Path, stage: str) -> list[Path]:
    return sorted(p for p in (cache / "stages" / stage).rglob("*") if p.is_file())


def test_an_entry_round_trips_and_any_changed_byte_is_a_miss(tmp_path: Path) -> None:
    key = stage_key("surface", {"stubs": "x"})
    entry = StageEntry(files={"surface.json": b'{"a": 1}\n', "sub/b.txt": b"bee"}, meta={"n": 2})
    stage_store(tmp_path, "surface", key, entry)
    assert stage_lookup(tmp_path, "surface", key) == entry
    (path,) = _entries(tmp_path, "surface")
    data = path.read_bytes()
    for at in (len(data) - 2, data.index(b'"n"') + 1, 20):  # the payload, the header, the digest itself
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        assert stage_lookup(tmp_path, "surface", key, remove_corrupt=False) is None
        assert path.is_file(), "check's lookups leave the cache as it was"
    assert stage_lookup(tmp_path, "surface", key) is None
    assert not path.exists(), "a corrupt entry is removed, so the rebuild replaces it"
    stage_store(tmp_path, "surface", key, entry)
    path.write_bytes(path.read_bytes()[:-1])
    assert stage_lookup(tmp_path, "surface", key) is None


def test_keys_follow_the_inputs_and_paths_stay_inside(tmp_path: Path) -> None:
    assert stage_key("stubs", {"wheel": "a", "x": [1]}) == stage_key("stubs", {"x": [1], "wheel": "a"})
    assert stage_key("stubs", {"wheel": "a"}) != stage_key("stubs", {"wheel": "b"})
    assert stage_key("stubs", {"wheel": "a"}) != stage_key("surface", {"wheel": "a"})
    for bad in ("../x", "/abs", "a/../../b", "", "a//b"):
        with pytest.raises(Exception, match="refusing"):
            stage_store(tmp_path, "stubs", stage_key("stubs", {}), StageEntry(files={bad: b""}))
    with pytest.raises(Exception, match="refusing"):
        stage_lookup(tmp_path, "../wheels", "0" * 64)


def _lock(root: Path, env: dict[str, str]) -> str:
    proc = run_cli("lock", str(root), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _outputs(root: Path) -> dict[str, bytes]:
    files = {f"python_wrap/{k}": v for k, v in tree_files(root / "python_wrap").items()
             if not k.startswith("site-packages/")}
    files.update({f".mochi/deps/{k}": v for k, v in tree_files(root / ".mochi" / "deps").items()
                  if "/stubs/" not in k})  # the stub documents are written only when the surface is built
    files["mochi.lock"] = (root / "mochi.lock").read_bytes()
    return files


def test_a_second_project_copies_and_a_corrupted_surface_is_rebuilt(locked: dict[str, Any],
                                                                   copy_project: Any, tmp_path: Path) -> None:
    cache: Path = locked["cache"]
    first = _outputs(locked["root"])
    stamps = {p: p.stat().st_mtime_ns for p in (cache / "stages").rglob("*") if p.is_file()}

    second = copy_project(locked["root"])
    for generated in (".mochi", "python_wrap", "mochi.lock", "pylock.toml"):
        shutil.rmtree(second / generated) if (second / generated).is_dir() else (second / generated).unlink()
    out = _lock(second, locked["env"])
    assert "wrappers: 0 compiled, 2 from the cache" in out
    assert _outputs(second) == first
    assert not (second / ".mochi" / "deps" / "liarfix" / "stubs").exists(), "no surface built, no documents copied"
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "every stage output came from the cache"

    # Forge the cached surface of liarfix: same length, so only the stored digest can tell.
    (entry,) = [p for p in _entries(cache, "surface") if b'"liarfix"' in p.read_bytes()]
    good = entry.read_bytes()
    assert b"liarfix.honest" in good
    entry.write_bytes(good.replace(b"liarfix.honest", b"liarfix.hacked"))
    third = tmp_path / "third"
    third.mkdir()
    shutil.copy(locked["root"] / "mochi.toml", third)
    shutil.copy(locked["root"] / "app.mochi", third)
    _lock(third, locked["env"])
    assert (third / ".mochi" / "deps" / "liarfix" / "stubs" / "liarfix" / "__init__.py").is_file(), (
        "the surface was built again, from the documents of the cached stub stage")
    surface = (third / ".mochi" / "deps" / "liarfix" / "surface.json").read_text()
    assert "liarfix.hacked" not in surface and "liarfix.honest" in surface
    assert (third / "python_wrap" / "liarfix" / "shim.mochi").read_bytes() == first["python_wrap/liarfix/shim.mochi"]
    assert entry.read_bytes() == good, "the rebuilt surface replaced the forged entry"
    assert run_cli("check", str(third), env=locked["env"]).returncode == 0


def test_a_corrupted_runtime_library_is_rebuilt_not_linked(locked: dict[str, Any], copy_project: Any) -> None:
    cache: Path = locked["cache"]
    (runtime,) = _entries(cache, "runtime")
    good = runtime.read_bytes()
    mid = len(good) // 2
    runtime.write_bytes(good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1:])
    shutil.rmtree(cache / "wrappers")  # so the modules are linked again, against the runtime
    root = copy_project(locked["root"])
    shutil.rmtree(root / ".mochi")
    shutil.rmtree(root / "python_wrap")
    out = _lock(root, locked["env"])
    assert "wrappers: 2 compiled, 0 from the cache" in out
    build = json.loads((root / ".mochi" / "compile.json").read_text())
    assert {r["cached"] for r in build.values()} == {"no"}
    cmake = next((root / ".mochi" / "build").glob("*/CMakeLists.txt")).read_text()
    assert "add_library(mochi_rt STATIC IMPORTED)" not in cmake, "the corrupt library was not linked"
    assert 'add_library(mochi_rt STATIC "' in cmake, "the runtime was compiled in this project"
    (entry,) = _entries(cache, "runtime")
    assert stage_lookup(cache, "runtime", entry.name) is not None, "and the intact library is cached again"
    assert run_cli("check", str(root), env=locked["env"]).returncode == 0
