"""What the console shows, apart from doit: stage labels and colour (the shared edge, no doit here)."""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["STAGES", "paint", "use_color"]

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
