"""Stubgen on a compiled Cython accelerator (msgpack's `_cmsgpack.unpackb`): a real extension built here."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

from helpers import build_wheel, fixture_index, run_cli, write_project

# msgpack's shape: keyword-only C-typed parameters (`bint`, `int`), a signature embedded in the docstring
PYX = b"""# cython: language_level=3, embedsignature=True, binding=True
def unpack(data, *, bint use_list=True, int depth=2):
    out = list(data) if use_list else tuple(data)
    return [out, depth]
"""


def _cython_wheel(out: Path, work: Path) -> Path:
    """cyfix 1.0: `cyfix/_cy` compiled with Cython and gcc against this interpreter, no py.typed."""
    work = work / "cyfix"  # inside its package, so Cython names the module cyfix._cy (its __module__)
    work.mkdir(parents=True)
    (work / "__init__.py").write_bytes(b"")
    (work / "_cy.pyx").write_bytes(PYX)
    subprocess.run([sys.executable, "-m", "cython", str(work / "_cy.pyx"), "-o", str(work / "_cy.c")],
                   check=True, capture_output=True)
    ext = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-w", f"-I{sysconfig.get_paths()['include']}",
                    str(work / "_cy.c"), "-o", str(work / f"_cy{ext}")], check=True, capture_output=True)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return build_wheel(out, "cyfix", "1.0", {"cyfix/__init__.py": b"from ._cy import unpack\n",
                                             f"cyfix/_cy{ext}": (work / f"_cy{ext}").read_bytes()},
                       tag=f"{tag}-{tag}-{platform}")


def test_a_cython_function_is_stubbed_with_its_python_signature(tmp_path: Path) -> None:
    idx = fixture_index([_cython_wheel(tmp_path / "wheels", tmp_path / "build")])
    try:
        root = write_project(tmp_path / "proj", 'cyfix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    finally:
        idx.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = next(p for p in tomllib.loads((root / "mochi.lock").read_text())["python-package"] if p["name"] == "cyfix")
    assert entry["stub-provenance"] == "stubgen"
    shim = (root / "python_wrap" / "cyfix" / "shim.mochi").read_text()
    assert "extern python fun cyfix_unpack(data: value): value" in shim, shim
    # the Python names inspect.signature reads (typed from the defaults), not the docstring's `booluse_list`
    assert "extern python fun cyfix_unpack_with(data: value, use_list: bool, depth: int): value" in shim, shim
    code = f"""
        import sys; sys.path.insert(0, {str(root / 'python_wrap' / 'cyfix')!r})
        import _mochi_cyfix as m
        print(m.cyfix_unpack(b"ab"), m.cyfix_unpack_with(b"ab", False, 5))
    """
    run = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[[97, 98], 2] [(97, 98), 5]"
