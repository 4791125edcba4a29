"""The C runtime builds on its own with every warning as an error, and the result behaves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import PACKAGES, REPO

from tasks.build.compile import find_tool


def test_runtime_builds_with_werror_and_runs(tmp_path: Path) -> None:
    build = tmp_path / "c"
    for cmd in ([find_tool("cmake"), "-S", str(REPO), "-B", str(build), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={find_tool('ninja')}", f"-DPython_EXECUTABLE={sys.executable}"],
                [find_tool("cmake"), "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    (so,) = build.glob("_mochi_typedfix*.so")
    assert so.name == "_mochi_typedfix.abi3.so"
    nm = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True, check=True)
    exported = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    assert exported == {"PyInit__mochi_typedfix"}, "runtime symbols must stay hidden"
    code = (f"import sys; sys.path[:0] = [{str(build)!r}, {str(PACKAGES / 'typedfix')!r}]\n"
            "import _mochi_typedfix as m\nprint(m.typedfix_add(20, 22), m.typedfix_words('x y'))")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "42 ['x', 'y']"
