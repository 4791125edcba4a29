"""Issue 14 item 9: what a lock writes. Files and directories get the user's umask (not mkstemp's 0600), a
distribution named `site-packages` does not collide with `python_wrap/site-packages/`, a failed lock leaves no
`.mochi/` or `python_wrap/` behind in a fresh project, and a wrapper is replaced whole: a lock that fails at
compile time leaves the previous `python_wrap/<dist>/` exactly as it was.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import build_wheel, fixture_index, run_cli, tree_files, write_project

TYPED = b"def f(x: int) -> int:\n    return x + 1\n"


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)  # inherited by the CLI processes the test starts
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_site_packages_dist_and_the_users_umask(tmp_path: Path, umask_027: None) -> None:
    """A distribution named `site-packages` gets `python_wrap/_site-packages/`, beside the installed wheels in
    `python_wrap/site-packages/`, and works; every file the lock writes has the umask's mode (0640 under 027)."""
    idx = fixture_index([build_wheel(tmp_path / "w", "site-packages", "1.0", {
        "site_packages/__init__.py": TYPED, "site_packages/py.typed": b""})])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = write_project(tmp_path / "p", '"site-packages" = "1.0"', idx.url)
        (root / "app.mochi").write_text('import python "site-packages" as sp\n\nprint(sp.f(1))\n')
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        wrap = root / "python_wrap"
        assert (wrap / "_site-packages" / "shim.mochi").is_file()
        assert (wrap / "site-packages" / ".mochi-site.json").is_file()
        assert (wrap / "site-packages" / "site_packages" / "__init__.py").is_file()
        assert not (wrap / "site-packages" / "shim.mochi").exists()
        module = next((wrap / "_site-packages").glob("*.abi3.so")).name.split(".")[0]
        call = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                               f"{str(wrap / '_site-packages')!r})\nimport {module} as m\n"
                               f"print(m.site_packages_f(41))"], capture_output=True, text=True, check=False)
        assert call.stdout.strip() == "42", call.stderr
        checked = run_cli("check", str(root), env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        built = run_cli("build", str(root / "app.mochi"), "-o", str(tmp_path / "out"), env=env)
        assert built.returncode == 0, built.stdout + built.stderr
    finally:
        idx.stop()
    files = [root / "mochi.lock", root / "pylock.toml", wrap / "_site-packages" / "shim.mochi",
             wrap / "_site-packages" / "site_packages_externs.py", wrap / "_site-packages" / "SKIPPED.txt",
             wrap / "site-packages" / ".mochi-site.json", wrap / "site-packages" / "site_packages" / "__init__.py"]
    assert {str(f.relative_to(root)): oct(_mode(f)) for f in files} == {
        str(f.relative_to(root)): oct(0o640) for f in files}
    assert _mode(next((wrap / "_site-packages").glob("*.abi3.so"))) & 0o007 == 0  # never world-writable
    for d in (wrap / "_site-packages", wrap / "site-packages"):
        assert oct(_mode(d)) == oct(0o750), d


def test_a_failed_lock_leaves_no_debris(tmp_path: Path) -> None:
    """A first lock that fails (here: a name the index does not have) leaves the project as it found it."""
    idx = fixture_index([build_wheel(tmp_path / "w", "realfix", "1.0", {"realfix/__init__.py": TYPED})])
    try:
        root = write_project(tmp_path / "p", 'nosuchfix = "1.0"', idx.url)
        (root / "app.mochi").write_text('import python "nosuchfix" as n\n')
        before = tree_files(root)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "nosuchfix" in proc.stderr
        assert tree_files(root) == before
        assert sorted(p.name for p in root.iterdir()) == ["app.mochi", "mochi.toml"]
    finally:
        idx.stop()


def test_a_wrapper_is_replaced_whole(tmp_path: Path) -> None:
    """A lock that fails while compiling the new wrapper keeps the old python_wrap/<dist>/ intact: no new shim
    next to the old module, no temporary directories."""
    v1 = build_wheel(tmp_path / "w", "swapfix", "1.0", {"swapfix/__init__.py": TYPED, "swapfix/py.typed": b""})
    v2 = build_wheel(tmp_path / "w", "swapfix", "2.0", {
        "swapfix/__init__.py": TYPED + b"\ndef g(s: str) -> str:\n    return s\n", "swapfix/py.typed": b""})
    idx = fixture_index([v1, v2])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = write_project(tmp_path / "p", 'swapfix = "1.0"', idx.url)
        assert run_cli("lock", str(root), env=env).returncode == 0
        wrap = root / "python_wrap" / "swapfix"
        before = tree_files(wrap)
        lock_before = (root / "mochi.lock").read_bytes()
        assert "swapfix_g" not in before["shim.mochi"].decode()
        manifest = root / "mochi.toml"
        manifest.write_text(manifest.read_text().replace('swapfix = "1.0"', 'swapfix = "2.0"'))
        failed = run_cli("lock", str(root), env={**env, "CC": "false"})  # the compiler identity cannot be had
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert "compiling" in failed.stderr
        assert tree_files(wrap) == before
        assert sorted(p.name for p in wrap.parent.iterdir() if p.name.startswith(".")) == []
        assert (root / "mochi.lock").read_bytes() == lock_before
        assert tomllib.loads(lock_before.decode())["python-package"][0]["version"] == "1.0"
        fixed = run_cli("lock", str(root), env=env)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "swapfix_g" in (wrap / "shim.mochi").read_text()
    finally:
        idx.stop()
