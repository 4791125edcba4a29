"""Find the target interpreter once, at the edge, and describe it as a frozen record.

`[python].interpreter` wins; otherwise the first interpreter on PATH (python3.N from newest to
oldest, then python3, then python) that satisfies `requires-python`. Nothing is downloaded or
bundled (A13).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from packaging import tags
from packaging.specifiers import SpecifierSet

from .errors import InterpreterNotFound

__all__ = ["TargetPython", "abi_floor", "detect_interpreter", "probe_interpreter", "target_tags"]

_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'executable': sys.executable, "
    "'version': list(sys.version_info[:3]), 'impl': sys.implementation.name, "
    "'gil_disabled': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
    "'include': sysconfig.get_paths()['include']}))"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPython:
    executable: str
    version: tuple[int, int, int]
    implementation: str
    gil_disabled: bool

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


def probe_interpreter(command: str) -> TargetPython | None:
    """Run *command* once and read its facts; None if it does not run."""
    exe = shutil.which(command) or command
    try:
        out = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=20, check=True)
        data = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return TargetPython(executable=data["executable"], version=tuple(data["version"]),
                        implementation=data["impl"], gil_disabled=data["gil_disabled"])


def detect_interpreter(requires_python: str, configured: str | None) -> TargetPython:
    """The target interpreter for a project.

    :raises InterpreterNotFound: when none runs and satisfies *requires_python*.
    """
    spec = SpecifierSet(requires_python)
    if configured:
        found = probe_interpreter(configured)
        if found is None:
            raise InterpreterNotFound(f"[python].interpreter {configured!r} does not run",
                                      "point it at a CPython executable, or remove it to search PATH")
        if not spec.contains(found.version_str):
            raise InterpreterNotFound(f"[python].interpreter {configured!r} is Python {found.version_str}, "
                                      f"which does not satisfy requires-python {requires_python!r}")
        return found
    tried = []
    candidates = [f"python3.{minor}" for minor in range(20, 7, -1)] + ["python3", "python"]
    path = os.environ.get("PATH", "")
    for name in candidates:
        if shutil.which(name, path=path) is None:
            continue
        found = probe_interpreter(name)
        if found is None:
            continue
        tried.append(f"{name} ({found.version_str})")
        if found.implementation == "cpython" and spec.contains(found.version_str):
            return found
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
    major, minor = target.version[:2]
    abi = f"cp{major}{minor}{'t' if target.gil_disabled else ''}"
    platforms = list(tags.platform_tags())
    return [*tags.cpython_tags((major, minor), abis=[abi], platforms=platforms),
            *tags.compatible_tags((major, minor), f"cp{major}{minor}", platforms=platforms)]
