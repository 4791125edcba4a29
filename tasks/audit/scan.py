"""A wheel's Python sources, parsed without importing or running anything (for the capability scan)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from ..fetch.wheel import open_wheel, read_member, safe_members

__all__ = ["python_sources"]


def python_sources(wheel: Path) -> Iterator[tuple[str, ast.Module]]:
    """(member name, parsed module) for every `.py` file of *wheel* that parses."""
    with open_wheel(wheel) as zf:
        for info in safe_members(zf, wheel):
            if not info.filename.endswith(".py"):
                continue
            try:
                tree = ast.parse(read_member(zf, info, wheel), filename=info.filename)
            except (SyntaxError, ValueError):
                continue
            yield info.filename, tree
