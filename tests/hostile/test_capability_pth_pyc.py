"""Issue 14 item 7: code that runs without a `.py` the scan can read is a capability of its own.

A `.pth` file installed into site-packages runs its `import` lines at every interpreter start
(`startup-hook`); a `.pyc` with no matching `.py` is code the AST scan cannot see (`bytecode`).
Neither may lock as `capabilities = []`.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

from helpers import build_wheel, fixture_index, run_cli, write_project

from tasks.audit.capabilities import scan_wheel
from tasks.resolve.manifest import parse_manifest

HOOK = b"import os; os.environ.setdefault('PTHFIX_RAN', '1')\n"
CLEAN = b"def f() -> int:\n    return 1\n"


def _bytecode(source: bytes) -> bytes:
    """A real `.pyc` image of *source* (header and marshalled code), as a compiler would leave it."""
    import marshal
    return importlib.util.MAGIC_NUMBER + b"\0\0\0\0" + b"\0" * 8 + marshal.dumps(compile(source, "secret.py", "exec"))


def _wheels(out: Path) -> list[Path]:
    pth = build_wheel(out, "pthfix", "1.0", {"pthfix/__init__.py": CLEAN, "pthfix_hook.pth": b"# comment\n" + HOOK})
    pyc = build_wheel(out, "pycfix", "1.0", {"pycfix/__init__.py": CLEAN,
                                             "pycfix/secret.pyc": _bytecode(b"import socket\n")})
    return [pth, pyc]


def test_pth_and_sourceless_pyc_are_found_with_evidence(tmp_path: Path) -> None:
    pth, pyc = _wheels(tmp_path)
    assert [(f.capability, str(f)) for f in scan_wheel(pth)] == [
        ("startup-hook", "pthfix_hook.pth:2: .pth file runs at every interpreter start: "
                         "import os; os.environ.setdefault('PTHFIX_RAN', '1')")]
    assert [(f.capability, str(f)) for f in scan_wheel(pyc)] == [
        ("bytecode", "pycfix/secret.pyc:0: sourceless bytecode: no pycfix/secret.py beside it")]


def test_where_a_pth_runs_and_which_pyc_has_a_source(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "mixfix", "1.0", {
        "mixfix/__init__.py": CLEAN,
        "mixfix/__pycache__/__init__.cpython-312.pyc": _bytecode(CLEAN),  # compiled from a source that is there
        "mixfix/__pycache__/gone.cpython-312.pyc": _bytecode(CLEAN),      # its source is not
        "mixfix/inner.pth": HOOK,                                         # not in site-packages: never read
        "mixfix-1.0.data/purelib/paths.pth": b"/opt/somewhere\n",         # installed into site-packages
    })
    assert sorted(str(f) for f in scan_wheel(wheel)) == [
        "mixfix-1.0.data/purelib/paths.pth:0: .pth file (path entries only, no executable import line)",
        "mixfix/__pycache__/gone.cpython-312.pyc:0: sourceless bytecode: no mixfix/gone.py beside it",
    ]


def test_the_manifest_knows_the_new_names(tmp_path: Path) -> None:
    m = parse_manifest('[python.capabilities]\nbytecode = true\nstartup-hook = true\nnet = false\n',
                       tmp_path / "mochi.toml")
    assert m.python.capabilities == ("startup-hook", "bytecode")


def test_lock_gates_startup_hooks_and_bytecode(tmp_path: Path) -> None:
    idx = fixture_index(_wheels(tmp_path / "w"))
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = write_project(tmp_path / "proj", 'pthfix = "1.0"\npycfix = "1.0"', idx.url,
                             "[python.capabilities]\nfs = true\n")
        refused = run_cli("lock", str(root), env=env)
        out = refused.stdout + refused.stderr
        assert refused.returncode == 2, out
        assert "pthfix: startup-hook (pthfix_hook.pth:2: .pth file runs at every interpreter start: import os" in out
        assert "pycfix: bytecode (pycfix/secret.pyc:0: sourceless bytecode: no pycfix/secret.py beside it)" in out
        assert "Traceback" not in out
        assert not (root / "mochi.lock").exists()

        manifest = root / "mochi.toml"
        manifest.write_text(manifest.read_text() + "startup-hook = true\nbytecode = true\n")
        allowed = run_cli("lock", str(root), env=env)
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        entries = {e["name"]: e for e in tomllib.loads((root / "mochi.lock").read_text())["python-package"]}
        assert entries["pthfix"]["capabilities"] == ["startup-hook"]
        assert entries["pycfix"]["capabilities"] == ["bytecode"]
        assert sorted(entries["pthfix"]["capabilities-declared"]) == ["bytecode", "fs", "startup-hook"]
    finally:
        idx.stop()
