"""What the console shows, apart from doit: stage labels and colour (the shared edge, no doit here)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["QUIET", "STAGES", "VERBOSE", "paint", "say", "use_color", "warn"]

QUIET, VERBOSE = -1, 1
"""Verbosity levels: `-q` is QUIET (only failures), `-v` is VERBOSE; 0 is the default."""

STAGES = {"resolve": "resolving", "fetch": "fetching", "capabilities": "auditing", "stubs": "reading stubs",
          "surface": "mapping types", "codegen": "generating", "compile": "compiling", "site": "installing",
          "lock": "writing locks", "check": "checking"}
"""Task family -> what a person reads while it runs."""


def use_color(stream: TextIO) -> bool:
    """Colours on a terminal, unless `NO_COLOR` is set (no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def paint(code: str, text: str, on: bool) -> str:
    """*text* in the SGR colour *code* when *on*."""
    return f"\033[{code}m{text}\033[0m" if on else text


def say(verbosity: int, text: str, level: int = 0) -> None:
    """Print *text* on stdout when the run's *verbosity* reaches *level* (0: normal, 1: only with -v)."""
    if verbosity >= level:
        print(text, flush=True)


def warn(verbosity: int, text: str) -> None:
    """A warning on stderr (silenced by -q, which prints only failures)."""
    if verbosity > QUIET:
        print(f"warning: {text}", file=sys.stderr, flush=True)
