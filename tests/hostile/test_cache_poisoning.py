"""Issue 14, item 3: a poisoned shared cache never reaches another project.

Two projects share one cache. Between their locks the cache is poisoned: a compiled wrapper (in the
cache, and through the first project's own copy of it), a cached stage output and a cached wheel. The
second project's lock rebuilds (or fetches again) instead of using what it finds, the first project's
`check` catches what changed under it, and its `lock` repairs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from helpers import build_wheel, package_files, run_cli


def _lock(root: Path, env: dict[str, str]) -> str:
    proc = run_cli("lock", str(root), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_poisoned_compiled_wrapper_is_rebuilt_not_reused(make_project: Any, cache_env: dict[str, str]) -> None:
    first = make_project(name="first")
    _lock(first, cache_env)
    cache = Path(cache_env["MOCHI_CACHE_DIR"])
    (cached,) = (cache / "wrappers").glob("*/_mochi_liarfix.abi3.so")
    good = cached.read_bytes()
    other = next((cache / "wrappers").glob("*/_mochi_typedfix.abi3.so")).read_bytes()
    # poisoned through the first project's installed module, in place (a hardlink would carry it into the cache)
    mine = first / "python_wrap" / "liarfix" / "_mochi_liarfix.abi3.so"
    with mine.open("r+b") as fh:
        fh.seek(len(good) // 2)
        fh.write(b"\xcc" * 16)
    assert cached.read_bytes() == good, "the project's module is a copy of its own, not the cache's file"
    proc = run_cli("check", str(first), env=cache_env)
    assert proc.returncode == 1, proc.stdout
    assert "liarfix: python_wrap/liarfix/_mochi_liarfix.abi3.so: changed" in proc.stdout

    cached.write_bytes(other)  # and the cache entry itself, replaced by another (valid) module
    second = make_project(name="second")
    out = _lock(second, cache_env)
    assert "wrappers: 1 compiled, 1 from the cache" in out, out
    built = json.loads((second / ".mochi" / "compile.json").read_text())
    assert built["liarfix"]["cached"] == "no" and built["typedfix"]["cached"] == "yes"
    installed = (second / "python_wrap" / "liarfix" / "_mochi_liarfix.abi3.so").read_bytes()
    assert installed != other
    assert cached.read_bytes() == installed, "the rebuilt module replaced the poisoned entry"
    assert run_cli("check", str(second), env=cache_env).returncode == 0

    _lock(first, cache_env)  # repairs the first project's module
    assert mine.read_bytes() == installed
    assert run_cli("check", str(first), env=cache_env).returncode == 0


def test_a_poisoned_stage_output_is_recomputed(make_project: Any, cache_env: dict[str, str]) -> None:
    first = make_project(name="first")
    _lock(first, cache_env)
    cache = Path(cache_env["MOCHI_CACHE_DIR"])
    shim = (first / "python_wrap" / "liarfix" / "shim.mochi").read_bytes()
    poisoned = 0
    for entry in (cache / "stages" / "codegen").rglob("*"):
        if entry.is_file() and b"liarfix_honest" in entry.read_bytes():
            entry.write_bytes(entry.read_bytes().replace(b"liarfix_honest", b"liarfix_hacked"))
            poisoned += 1
    assert poisoned == 1
    second = make_project(name="second")
    _lock(second, cache_env)
    assert (second / "python_wrap" / "liarfix" / "shim.mochi").read_bytes() == shim
    assert b"liarfix_hacked" not in (second / "python_wrap" / "liarfix" / "liarfix_externs.py").read_bytes()
    assert run_cli("check", str(second), env=cache_env).returncode == 0


def test_a_swapped_cached_wheel_is_never_installed(make_project: Any, cache_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    root = make_project(name="first")
    _lock(root, cache_env)
    cache = Path(cache_env["MOCHI_CACHE_DIR"])
    (cached,) = (cache / "wheels").glob("*/liarfix-1.0-py3-none-any.whl")
    evil = build_wheel(tmp_path / "evil", "liarfix", "1.0", {**package_files("liarfix"),
                                                             "liarfix-evil.pth": b"import os\n"})
    shutil.copy(evil, cached)
    proc = run_cli("check", str(root), env=cache_env)
    assert proc.returncode == 1 and "liarfix: wheel-blake3: locked " in proc.stdout
    shutil.rmtree(root / "python_wrap" / "site-packages")  # so the lock installs the wheels again

    _lock(root, cache_env)
    site = root / "python_wrap" / "site-packages"
    assert not (site / "liarfix-evil.pth").exists(), "the swapped wheel was not installed"
    assert (site / "liarfix" / "__init__.py").is_file()
    assert cached.read_bytes() != evil.read_bytes(), "the wheel was fetched again in its place"
    assert run_cli("check", str(root), env=cache_env).returncode == 0


def test_install_refuses_a_wheel_swapped_after_its_fetch(tmp_path: Path) -> None:
    """The install hashes each wheel again: bytes other than the fetched ones are refused, nothing replaced."""
    import sys

    import pytest

    from tasks.build.site import install_site
    from tasks.cache import digest_file
    from tasks.errors import HashMismatch
    good = build_wheel(tmp_path / "good", "liarfix", "1.0", package_files("liarfix"))
    b3 = digest_file(good).blake3
    dest = tmp_path / "python_wrap" / "site-packages"
    install_site([good], sys.executable, sys.version_info[:3], dest, tmp_path / "cache", [b3])
    before = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    shutil.copy(build_wheel(tmp_path / "evil", "liarfix", "1.0", {**package_files("liarfix"), "x.pth": b"1\n"}), good)
    with pytest.raises(HashMismatch, match="the cached wheel has blake3"):
        install_site([good], sys.executable, sys.version_info[:3], dest, tmp_path / "cache", [b3])
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == before
