"""Issue 14, item 8: the lock wins at run time, and `check` passes on its own fresh lock.

Another version of a locked package is installed into a directory that comes first on `sys.path`
(PYTHONPATH, as a virtualenv or the system's site-packages would): importing the wrapper must put
`python_wrap/site-packages` in front, so the locked version is the one that runs; and when the other
version was imported before the wrapper, the wrapper refuses to load, naming both versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import build_wheel, fixture_index, run_cli, write_project

PROBE = """
import importlib.metadata, os, sys
{pre}
sys.path.insert(0, os.path.join("python_wrap", "liarfix"))
import liarfix_externs
print(liarfix_externs.liarfix_honest(41))
import liarfix
base = os.path.dirname(os.path.dirname(liarfix.__file__))
print(next(importlib.metadata.distributions(name="liarfix", path=[base])).version)
print(os.path.relpath(liarfix.__file__))
print(sys.path[0] == os.path.abspath(os.path.join("python_wrap", "site-packages")))
"""


def _other_version(wheel_dir: Path, dest: Path) -> Path:
    """liarfix 1.1 installed into *dest* (the lock has 1.0)."""
    wheel = wheel_dir / "liarfix-1.1-py3-none-any.whl"
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-deps", "--target",
                    str(dest), str(wheel)], check=True, capture_output=True)
    return dest


def _probe(root: Path, other: Path, pre: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(other)}
    return subprocess.run([sys.executable, "-c", PROBE.format(pre=pre)], cwd=root, env=env, capture_output=True,
                          text=True, check=False)


def test_the_locked_version_is_imported_ahead_of_another_on_the_path(locked: dict[str, Any], wheel_dir: Path,
                                                                    tmp_path: Path) -> None:
    other = _other_version(wheel_dir, tmp_path / "other")
    proc = _probe(locked["root"], other)
    assert proc.returncode == 0, proc.stderr
    answer, version, where, first = proc.stdout.split()
    assert (answer, version, first) == ("42", "1.0", "True")
    assert where == "python_wrap/site-packages/liarfix/__init__.py"


def test_another_version_imported_first_is_refused_naming_both(locked: dict[str, Any], wheel_dir: Path,
                                                               tmp_path: Path) -> None:
    other = _other_version(wheel_dir, tmp_path / "other")
    proc = _probe(locked["root"], other, pre="import liarfix")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: liarfix 1.1 is already imported (module liarfix from "), last
    assert "but this wrapper was locked against liarfix 1.0" in last
    assert "import the wrapper before anything imports liarfix" in last
    # the same version from elsewhere is no conflict: the locked one is what it is
    same = tmp_path / "same"
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-deps", "--target",
                    str(same), str(wheel_dir / "liarfix-1.0-py3-none-any.whl")], check=True, capture_output=True)
    assert _probe(locked["root"], same, pre="import liarfix").returncode == 0


CAPS = '''\
import socket
import os
import subprocess


def go(path: str) -> int:
    """Reaches for the network, the file system, processes and a subprocess, in that order."""
    socket.create_connection(("localhost", 1))
    with open(path) as fh:
        fh.read()
    os.kill(0, 0)
    return subprocess.call(["true"])
'''


def test_check_passes_on_a_fresh_lock_whatever_order_capabilities_are_found_in(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "capfix", "1.0", {"capfix/__init__.py": CAPS.encode(),
                                                                "capfix/py.typed": b""})
    idx = fixture_index([wheel])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = write_project(tmp_path / "proj", 'capfix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lock = (root / "mochi.lock").read_text()
        line = next(ln for ln in lock.splitlines() if ln.startswith("capabilities = "))
        caps = line.removeprefix("capabilities = ").strip("[]").replace('"', "").split(", ")
        assert len(caps) >= 3 and caps == sorted(caps), line
        check = run_cli("check", str(root), env=env)
        assert check.returncode == 0, check.stdout + check.stderr
        # a lock written in another order (by hand, by another tool) still holds: capabilities are a set
        (root / "mochi.lock").write_text(lock.replace(line, "capabilities = [" + ", ".join(
            f'"{c}"' for c in reversed(caps)) + "]"))
        check = run_cli("check", str(root), env=env)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        idx.stop()
