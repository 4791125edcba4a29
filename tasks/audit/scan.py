"""A wheel's Python sources, parsed without importing or running anything (for the capability scan)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from ..errors import UnsafeArchive
from ..fetch.wheel import open_wheel, read_member, safe_members

__all__ = ["python_sources", "too_deep"]


def too_deep(wheel: Path, member: str) -> UnsafeArchive:
    """A source nested too deeply for the parser or the scan to walk: the audit cannot vouch for it."""
    return UnsafeArchive(f"{wheel.name}: {member} nests too deeply to be scanned for capabilities (RecursionError)",
                         "do not use this wheel; no capability can be recorded for code the scan cannot read")


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
            except RecursionError:
                raise too_deep(wheel, info.filename) from None
            yield info.filename, tree
