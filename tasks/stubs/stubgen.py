"""The last stub tier: mypy's stubgen, run in a sandbox because it may import the package (DESIGN §5).

The import runs in :mod:`tasks.stubs.sandbox`: new user, mount, network and PID namespaces, a root of its
own (system and interpreter read-only, the sources read-only, only the output writable, an empty HOME
and `/tmp`, a private `/proc`), no capabilities, and an environment holding nothing of the caller's. A
socket guard in the runner records a connection attempt (`ImportTimeNetwork`); the network namespace
is what blocks it, `_socket` and child processes included. Every process of the sandbox ends with it,
and it has a timeout (30 s, `MOCHI_STUBGEN_TIMEOUT` overrides it). Where the namespaces cannot be had,
nothing is imported: stubgen reads the sources (parse mode) and the result says why. The expected
output files are checked: stubgen silently skips some sources (`six.py`, vendored directories).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .sandbox import sandbox_command, sandbox_status

__all__ = ["StubgenResult", "run_stubgen"]

_RUNNER = r"""
import json, socket, sys
marker, src, out, mode, docs, modules = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1",
                                        sys.argv[6:])
def blocked(*args, **kwargs):
    with open(marker, "w") as fh:
        fh.write(json.dumps({"args": repr(args)[:200]}))
    raise OSError("network access is blocked while stubs are generated (mochi-pybridge sandbox)")
def guard(original):
    # local (AF_UNIX) sockets stay: stubgen's own worker processes talk over them
    def connect(self, address, *rest):
        if self.family == socket.AF_UNIX:
            return original(self, address, *rest)
        return blocked(address)
    return connect
socket.socket.connect = guard(socket.socket.connect)
socket.socket.connect_ex = guard(socket.socket.connect_ex)
socket.create_connection = blocked
socket.getaddrinfo = blocked
sys.path.insert(0, src)
from mypy import stubgen
args = ["-o", out, "--ignore-errors"] + (["--inspect-mode"] if mode == "inspect" else [])
args += ["--include-docstrings"] if docs else []
if mode == "parse":  # the sources as files: nothing is imported
    import os
    args += [os.path.join(src, m) if os.path.isdir(os.path.join(src, m)) else os.path.join(src, m + ".py")
             for m in modules]
else:
    for m in modules:
        args += ["-p", m]
if mode == "inspect":
    # Cython functions (a compiled accelerator's `unpackb`) are functions with real signatures, but stubgen
    # takes them for variables and would read their embedded docstring signatures, C types and all.
    # A mypy without these hooks gets no patch (and stubs as before) rather than a failing runner.
    from mypy import stubgenc
    CY = ("cython_function_or_method", "fused_cython_function")
    G = stubgenc.InspectionStubGenerator
    HOOKS = ("is_function", "get_default_function_sig", "generate_function_stub", "get_signatures")
    def cython(obj):
        return type(obj).__name__ in CY
    orig = {n: getattr(G, n, None) for n in HOOKS}
    def is_function(self, obj):
        return orig["is_function"](self, obj) or cython(obj)
    def get_default_function_sig(self, func, ctx):
        # outside a C module stubgen reads inspect.signature, which a (binding) Cython function answers
        saved = self.is_c_module
        self.is_c_module = saved and not cython(func)
        try:
            return orig["get_default_function_sig"](self, func, ctx)
        finally:
            self.is_c_module = saved
    def generate_function_stub(self, name, obj, **kw):
        self.mb_cython = cython(obj)
        try:
            return orig["generate_function_stub"](self, name, obj, **kw)
        finally:
            self.mb_cython = False
    def get_signatures(self, default_sig, sig_generators, ctx):
        # the signature read above wins over the docstring's (`booluse_list`); `*args` means none was read
        if getattr(self, "mb_cython", False) and default_sig.args and default_sig.args[0].name != "*args":
            return [default_sig]
        return orig["get_signatures"](self, default_sig, sig_generators, ctx)
    if all(orig.values()):
        for n, f in zip(HOOKS, (is_function, get_default_function_sig, generate_function_stub, get_signatures)):
            setattr(G, n, f)
stubgen.main(args)
"""


@dataclass(frozen=True, slots=True)
class StubgenResult:
    written: list[str]
    """Modules stubgen produced a stub for."""
    network: bool
    """The package tried to reach the network while it was imported."""
    timed_out: bool
    output: str
    unsandboxed: str = ""
    """Why the package could not be imported in a sandbox here, so stubgen read its sources instead."""


_SRC, _OUT, _REPORT, _HOME = "/sandbox/src", "/sandbox/out", "/sandbox/report", "/sandbox/home"


def _scrub(out: Path) -> None:
    """Leave only directories and regular files in the sandbox's output: a symlink planted there would make
    the stages reading it afterwards read or write outside it."""
    for path in sorted(out.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        mode = path.lstat().st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            path.unlink()


def run_stubgen(src: Path, modules: list[str], out: Path, inspect: bool, timeout: float | None = None,
                docstrings: bool = False, parse_only: bool = False) -> StubgenResult:
    """Generate stubs for *modules* found under *src* into *out* (with their docstrings if *docstrings*).

    *parse_only* reads the source files without importing anything: the way to type a package whose
    import needs dependencies the sandbox does not have (it misses C extension modules).
    """
    limit = timeout if timeout is not None else float(os.environ.get("MOCHI_STUBGEN_TIMEOUT", "30"))
    out.mkdir(parents=True, exist_ok=True)
    status = sandbox_status()
    unsandboxed = "" if parse_only or status.available else status.why_not
    mode = "parse" if parse_only or unsandboxed else "inspect" if inspect else "import"
    with tempfile.TemporaryDirectory(prefix="mochi-stubgen-") as tmp:
        report = Path(tmp) / "report"
        report.mkdir()
        # nothing of the caller's environment: no PYTHONPATH, no credentials, a minimal PATH
        env = {"PATH": "/usr/bin:/bin", "HOME": _HOME, "TMPDIR": "/tmp", "PYTHONNOUSERSITE": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        runner = [sys.executable, "-I", "-c", _RUNNER, f"{_REPORT}/network-attempt", _SRC, _OUT, mode,
                  "1" if docstrings else "0", *modules]
        if mode == "parse" and not status.available:
            # nothing is imported: the same runner, outside any namespace, on the real paths
            home = Path(tmp) / "home"
            home.mkdir()
            cmd = [runner[0], "-I", "-c", _RUNNER, str(report / "network-attempt"), str(src), str(out), mode,
                   runner[7], *modules]
            env = {**env, "HOME": str(home), "TMPDIR": tmp}
            cwd = tmp
        else:
            root = Path(tmp) / "root"
            root.mkdir()
            from ..cache import cache_root
            hide = [cache_root(), Path.home(), Path.cwd()]
            cmd = sandbox_command(runner, env, root, binds=[(src, _SRC)], writable=[(out, _OUT), (report, _REPORT)],
                                  hide=hide, home=_HOME, cwd="/tmp")
            env, cwd = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, tmp
        # Its own session, so the whole tree is killed on timeout or exit (the namespace dies with its PID 1).
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, timed_out = proc.communicate(timeout=limit)[0], False
        except subprocess.TimeoutExpired:
            output, timed_out = "", True
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        network = (report / "network-attempt").exists()
    _scrub(out)
    written = [m for m in modules if (out / m / "__init__.pyi").is_file() or (out / f"{m}.pyi").is_file()]
    return StubgenResult(written=written, network=network, timed_out=timed_out, output=output,
                         unsandboxed=unsandboxed)
