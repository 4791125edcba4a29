"""Find the target interpreter once, at the edge, and describe it as a frozen record.

`[python].interpreter` wins; otherwise the first interpreter on PATH (python3.N from newest to
oldest, then python3, then python) that satisfies `requires-python`. Nothing is downloaded or
bundled (A13).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging import tags
from packaging.specifiers import SpecifierSet

from ..context import TargetPython
from ..errors import InterpreterNotFound

__all__ = ["TargetPython", "abi_floor", "detect_interpreter", "probe_interpreter", "target_tags"]

# Runs inside the candidate interpreter; the marker environment is computed the way
# packaging.markers.default_environment() does it, but for that interpreter, not this one.
_PROBE = """
import json, os, platform, sys, sysconfig
def fmt(info):
    v = f"{info.major}.{info.minor}.{info.micro}"
    return v if info.releaselevel == "final" else v + info.releaselevel[0] + str(info.serial)
env = {"implementation_name": sys.implementation.name, "implementation_version": fmt(sys.implementation.version),
       "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
       "platform_system": platform.system(), "platform_version": platform.version(),
       "python_full_version": platform.python_version(),
       "platform_python_implementation": platform.python_implementation(),
       "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}
print(json.dumps({"executable": sys.executable, "version": list(sys.version_info[:3]),
                  "impl": sys.implementation.name, "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                  "env": env}))
"""


def probe_interpreter(command: str) -> TargetPython | None:
    """Run *command* once and read its facts; None if it does not run."""
    exe = shutil.which(command) or command
    try:
        out = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=20, check=True)
        data = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return TargetPython(executable=data["executable"], version=tuple(data["version"]),
                        implementation=data["impl"], gil_disabled=data["gil_disabled"], env=data["env"])


def _candidates(configured: str | None) -> list[tuple[str, str]]:
    """(name, path) of each interpreter to consider, in preference order."""
    if configured:
        return [(configured, shutil.which(configured) or configured)]
    names = [f"python3.{minor}" for minor in range(20, 7, -1)] + ["python3", "python"]
    return [(n, found) for n in names if (found := shutil.which(n)) is not None]


def _fingerprint(requires_python: str, configured: str | None, cands: list[tuple[str, str]]) -> str:
    """What the detection result depends on: the candidates' files and the variables that steer shims."""
    parts: list[object] = [requires_python, configured, os.environ.get("PYENV_VERSION")]
    for extra in (Path.home() / ".pyenv" / "version", Path(".python-version")):
        parts.append(extra.stat().st_mtime_ns if extra.is_file() else None)
    for name, path in cands:
        try:
            st = Path(path).resolve().stat()
            parts.append([name, path, st.st_mtime_ns, st.st_size])
        except OSError:
            parts.append([name, path])
    return json.dumps(parts)


def detect_interpreter(requires_python: str, configured: str | None, memo: Path | None = None,
                       write_memo: bool = True, shared: Path | None = None) -> TargetPython:
    """The target interpreter for a project.

    Probing runs each candidate once (in parallel); with *memo*, the answer is remembered until a
    candidate, the pyenv selection or the request changes, so a no-op lock starts no interpreter.
    *shared* is a directory of the same memos keyed by that fingerprint, across projects: a new
    project on a machine that already probed these interpreters starts none either.

    :raises InterpreterNotFound: when none runs and satisfies *requires_python*.
    """
    spec = SpecifierSet(requires_python)
    cands = _candidates(configured)
    key = _fingerprint(requires_python, configured, cands)
    # a relative [python].interpreter names another file from another directory
    where = str(Path.cwd()) if configured and not Path(configured).is_absolute() else ""
    digest = hashlib.sha256((where + "\0" + key).encode()).hexdigest()
    across = shared / f"{digest}.json" if shared is not None else None
    for path in (memo, across):
        found = _read_memo(path, key) if path is not None else None
        if found is not None:
            if path is across and memo is not None and write_memo:
                _write_memo(memo, key, found)
            return found
    found = _choose(spec, requires_python, configured, cands)
    for path in (memo, across):
        if path is not None and write_memo:
            _write_memo(path, key, found)
    return found


def _read_memo(path: Path, key: str) -> TargetPython | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] == key and Path(data["target"]["executable"]).is_file():
            t = data["target"]
            return TargetPython(executable=t["executable"], version=tuple(t["version"]),
                                implementation=t["implementation"], gil_disabled=t["gil_disabled"], env=t["env"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_memo(path: Path, key: str, found: TargetPython) -> None:
    from ..cache import atomic_write
    atomic_write(path, json.dumps({"key": key, "target": {
        "executable": found.executable, "version": list(found.version),
        "implementation": found.implementation, "gil_disabled": found.gil_disabled, "env": found.env}}).encode(),
        durable=False)


def _choose(spec: SpecifierSet, requires_python: str, configured: str | None,
            cands: list[tuple[str, str]]) -> TargetPython:
    with ThreadPoolExecutor(max_workers=max(1, len(cands))) as pool:
        probes = list(pool.map(probe_interpreter, [path for _, path in cands]))
    if configured:
        found = probes[0] if probes else None
        if found is None:
            raise InterpreterNotFound(f"[python].interpreter {configured!r} does not run",
                                      "point it at a CPython executable, or remove it to search PATH")
        if not spec.contains(found.version_str):
            raise InterpreterNotFound(f"[python].interpreter {configured!r} is Python {found.version_str}, "
                                      f"which does not satisfy requires-python {requires_python!r}")
        return found
    tried = []
    for (name, _), probe in zip(cands, probes, strict=True):
        if probe is None:
            continue
        tried.append(f"{name} ({probe.version_str})")
        if probe.implementation == "cpython" and spec.contains(probe.version_str):
            return probe
    raise InterpreterNotFound(
        f"no CPython on PATH satisfies requires-python {requires_python!r}"
        + (f"; found {', '.join(tried)}" if tried else ""),
        "install a matching CPython, or set [python].interpreter in mochi.toml")


def abi_floor(requires_python: str, target: TargetPython) -> tuple[int, int]:
    """The `Py_LIMITED_API` version: the lowest 3.N that requires-python allows (never above the target)."""
    spec = SpecifierSet(requires_python)
    for minor in range(2, target.version[1] + 1):
        if spec.contains(f"3.{minor}.99"):
            return (3, max(minor, 8))
    return (target.version[0], target.version[1])


def target_tags(target: TargetPython) -> list[tags.Tag]:
    """Wheel tags the target accepts, best first (the target runs on this machine, so its platform tags)."""
    return list(_tags(target.version[0], target.version[1], target.gil_disabled))


@functools.cache
def _tags(major: int, minor: int, gil_disabled: bool) -> tuple[tags.Tag, ...]:
    # about a thousand tags: computed once per process, not once per package
    abi = f"cp{major}{minor}{'t' if gil_disabled else ''}"
    platforms = list(tags.platform_tags())
    return (*tags.cpython_tags((major, minor), abis=[abi], platforms=platforms),
            *tags.compatible_tags((major, minor), f"cp{major}{minor}", platforms=platforms))
