"""The last stub tier: mypy's stubgen, run in a sandbox because it may import the package (DESIGN §5).

The sandbox is its own process with a clean environment (no inherited `PYTHONPATH`, `HOME`
pointed at an empty directory, isolated mode), no network (a new network namespace through
`unshare --net` where the system allows one, and in any case a socket guard that records the
attempt), and a timeout (30 s, `MOCHI_STUBGEN_TIMEOUT` overrides it). The expected output files
are checked: stubgen silently skips some sources (`six.py`, vendored directories).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StubgenResult", "run_stubgen", "sandbox_prefix"]

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


@functools.cache
def sandbox_prefix() -> tuple[str, ...]:
    """`unshare --net --` when this system lets us make a network namespace, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        ok = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (unshare, "--net", "--") if ok.returncode == 0 else ()


def run_stubgen(src: Path, modules: list[str], out: Path, inspect: bool, timeout: float | None = None,
                docstrings: bool = False, parse_only: bool = False) -> StubgenResult:
    """Generate stubs for *modules* found under *src* into *out* (with their docstrings if *docstrings*).

    *parse_only* reads the source files without importing anything: the way to type a package whose
    import needs dependencies the sandbox does not have (it misses C extension modules).
    """
    limit = timeout if timeout is not None else float(os.environ.get("MOCHI_STUBGEN_TIMEOUT", "30"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mochi-stubgen-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        marker = Path(tmp) / "network-attempt"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": tmp, "PYTHONNOUSERSITE": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        cmd = [*sandbox_prefix(), sys.executable, "-I", "-c", _RUNNER, str(marker), str(src), str(out),
               "parse" if parse_only else "inspect" if inspect else "import", "1" if docstrings else "0", *modules]
        # Its own session, so the whole tree (stubgen's inspection workers too) is killed on timeout or exit.
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, timed_out = proc.communicate(timeout=limit)[0], False
        except subprocess.TimeoutExpired:
            output, timed_out = "", True
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        network = marker.exists()
    written = [m for m in modules if (out / m / "__init__.pyi").is_file() or (out / f"{m}.pyi").is_file()]
    return StubgenResult(written=written, network=network, timed_out=timed_out, output=output)
