"""The C ABI for native hosts: a C program embeds CPython and drives a generated wrapper through
wrappers/mochi_bridge.h only, under AddressSanitizer with leak detection (zero reports).

The wrapper under test is the one `mochi-py lock` generated for tablefix, compiled again here with
the sanitizer (the runtime sources and the generated C, exactly as locked), so ASan sees the
runtime's own memory accesses, not only its allocations.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

from tasks.build.compile import RUNTIME_SOURCES

SANITIZE = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"]


def _python_link() -> list[str]:
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_python_version()
    if not (Path(libdir) / f"libpython{version}.so").exists():
        pytest.fail(f"libpython{version}.so is not in {libdir}: this interpreter cannot be embedded")
    return [f"-L{libdir}", f"-lpython{version}", f"-Wl,-rpath,{libdir}", "-lm"]


def _compile(args: list[str]) -> None:
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler is needed"
    proc = subprocess.run([cc, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def host(table: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert table["procs"][0].returncode == 0, table["procs"][0].stdout + table["procs"][0].stderr
    root: Path = table["default"]
    out = tmp_path_factory.mktemp("host")
    include = sysconfig.get_paths()["include"]
    runtime = [str(REPO / "wrappers" / src) for src in RUNTIME_SOURCES]
    _compile([*SANITIZE, "-shared", "-fPIC", "-fvisibility=hidden", "-DPy_LIMITED_API=0x030b0000",
              f"-I{REPO / 'wrappers'}", f"-I{include}",
              str(root / ".mochi/deps/tablefix/_mochi_tablefix.c"), *runtime, "-o",
              str(out / "_mochi_tablefix.abi3.so")])
    _compile([*SANITIZE, "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'wrappers'}", f"-I{include}",
              str(REPO / "tests/host/host.c"), "-o", str(out / "host"), *_python_link()])
    return {"dir": out, "wrap": root / "python_wrap"}


def test_c_host_calls_every_value_kind_under_asan_with_no_report(host: dict[str, Path]) -> None:
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
           "LSAN_OPTIONS": f"suppressions={REPO / 'tests/host/lsan.supp'}:print_suppressions=0",
           "PYTHONMALLOC": "malloc", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(host["dir"] / "host"), str(host["dir"]), str(host["wrap"] / "tablefix"),
                           str(host["wrap"] / "site-packages"), "50"], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert "ERROR: AddressSanitizer" not in proc.stderr and "ERROR: LeakSanitizer" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "host: " in proc.stdout and " checks, 0 failed" in proc.stdout
