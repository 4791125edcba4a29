"""The one place that runs subprocesses: captures output, bounds time, raises SubprocessFailed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import SubprocessFailed

__all__ = ["run"]


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float = 600, hint: str = "") -> str:
    """Run *cmd*, return its combined output; raise :class:`SubprocessFailed` on a non-zero exit."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=None if env is None else dict(env), timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    except FileNotFoundError:
        raise SubprocessFailed(list(cmd), 127, f"{cmd[0]}: not found", hint) from None
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else ""
        raise SubprocessFailed(list(cmd), -1, f"{out}\ntimed out after {timeout:.0f} s", hint) from None
    if proc.returncode != 0:
        raise SubprocessFailed(list(cmd), proc.returncode, proc.stdout, hint)
    return proc.stdout
