"""Issue 14, item 3: `lock` never reports "up to date" while `check` fails.

Each tampering below keeps what a quick look compares (size, and the mtime put back), so only the
files' contents or the directory's entries tell: the next `lock` must run what repairs it, and `check`
must pass afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import run_cli


def _same_size_edit(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("#") if data[-2] != ord("#") else ord("!")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _add_pth(root: Path) -> None:
    site = root / "python_wrap" / "site-packages"
    st = site.stat()
    (site / "zz-evil.pth").write_text("import os\n")
    os.utime(site, ns=(st.st_atime_ns, st.st_mtime_ns))


def _swap_module(root: Path) -> None:
    so = root / "python_wrap" / "liarfix" / "_mochi_liarfix.abi3.so"
    st = so.stat()
    other = (root / "python_wrap" / "typedfix" / "_mochi_typedfix.abi3.so").read_bytes()
    tmp = so.with_name("tmp")
    tmp.write_bytes(other)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    tmp.replace(so)


TAMPER: dict[str, Callable[[Path], None]] = {
    "site file": lambda root: _same_size_edit(root / "python_wrap" / "site-packages" / "typedfix" / "_impl.py"),
    "sidecar": lambda root: _same_size_edit(root / "python_wrap" / "typedfix" / "typedfix_externs.py"),
    "pth": _add_pth,
    "module": _swap_module,
}


def test_lock_repairs_what_check_finds(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    env = locked["env"]
    settle = run_cli("lock", str(root), env=env)  # the copy's first lock: its own state and no-op stamp
    assert settle.returncode == 0, settle.stdout + settle.stderr
    for what, tamper in TAMPER.items():
        assert "up to date, nothing ran" in run_cli("lock", str(root), env=env).stdout, what
        tamper(root)
        assert run_cli("check", str(root), env=env).returncode == 1, what
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "up to date, nothing ran" not in proc.stdout, f"{what}: lock said up to date"
        check = run_cli("check", str(root), env=env)
        assert check.returncode == 0, f"{what}: after lock:\n{check.stdout}"
