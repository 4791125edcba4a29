"""Static scans over a wheel's Python sources (no code is imported or run).

Shared by the type surface (R12: a distribution that imports trio gets its async items skipped
with `IncompatibleAsyncRuntime`) and the capability audit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from .wheel import open_wheel, read_member, safe_members

__all__ = ["imported_modules", "python_sources", "uses_trio"]


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


def imported_modules(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(top-level module name, line) of every import in *tree*, however deeply nested."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0], node.lineno


def uses_trio(wheel: Path) -> bool:
    return any(name == "trio" for _, tree in python_sources(wheel) for name, _ in imported_modules(tree))
