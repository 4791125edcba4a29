"""`mochi-py tree` and `mochi-py graph`: the locked packages as a dependency tree (like `uv tree`) or as DOT.

Read from `mochi.lock` and the `import python` lines alone: nothing is resolved or fetched. Each direct
dependency names the import lines that brought it in; a subtree already shown is marked `(*)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import BridgeError
from ..resolve.sources import PythonImport
from .lockfile import LockEntry

__all__ = ["dependency_edges", "render_package_dot", "render_tree"]


def dependency_edges(entries: list[LockEntry]) -> dict[str, list[str]]:
    """Package -> the locked packages it requires (its requirement strings, read as names)."""
    names = {e.name for e in entries}
    edges: dict[str, list[str]] = {}
    for e in entries:
        out = set()
        for text in e.dependencies:
            try:
                dep = canonicalize_name(Requirement(text).name)
            except InvalidRequirement:
                continue
            if dep in names and dep != e.name:
                out.add(dep)
        edges[e.name] = sorted(out)
    return edges


def _sites(imports: list[PythonImport], root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for imp in imports:
        path = imp.where.path
        shown = os.path.relpath(path, root) if path.is_absolute() else str(path)
        out.setdefault(imp.name, []).append(f"{shown}:{imp.where.line} as {imp.alias}")
    return out


def render_tree(entries: list[LockEntry], imports: list[PythonImport], root: Path, only: Iterable[str] = (),
                invert: bool = False) -> str:
    """The tree text: direct dependencies at the top (or, with *invert*, the packages required by others)."""
    by_name = {e.name: e for e in entries}
    wanted = [str(canonicalize_name(n)) for n in only]
    for name in wanted:
        if name not in by_name:
            raise BridgeError(f"{name} is not in mochi.lock",
                              f"the locked packages are: {', '.join(sorted(by_name)) or '(none)'}")
    if not entries:
        return "no packages are locked (mochi.toml declares no [python-dependencies])"
    edges = dependency_edges(entries)
    if invert:
        parents: dict[str, list[str]] = {n: [] for n in by_name}
        for name, deps in edges.items():
            for dep in deps:
                parents[dep].append(name)
        tops = wanted or sorted(n for n in by_name if not edges[n])
        edges = {n: sorted(p) for n, p in parents.items()}
    else:
        tops = wanted or sorted(e.name for e in entries if e.direct)
    sites = _sites(imports, root)
    lines: list[str] = []
    expanded: set[str] = set()

    def label(name: str) -> str:
        e = by_name[name]
        text = f"{name} v{e.version}"
        if e.direct:
            where = sites.get(name)
            text += f" (imported at {', '.join(where)})" if where else " (in mochi.toml, not imported)"
        return text

    def walk(name: str, prefix: str, path: tuple[str, ...]) -> None:
        children = edges.get(name, [])
        for i, child in enumerate(children):
            last = i == len(children) - 1
            branch, carry = ("└── ", "    ") if last else ("├── ", "│   ")
            repeat = child in expanded and edges.get(child)
            lines.append(f"{prefix}{branch}{label(child)}{' (*)' if repeat or child in path else ''}")
            if child not in path and not repeat:
                expanded.add(child)
                walk(child, prefix + carry, (*path, child))

    for top in tops:
        lines.append(label(top))
        expanded.add(top)
        walk(top, "", (top,))
    return "\n".join(lines)


def render_package_dot(entries: list[LockEntry], imports: list[PythonImport], root: Path) -> str:
    """The package graph as Graphviz DOT: an edge from each package to each one it requires; imports as notes."""
    sites = _sites(imports, root)
    out = ["digraph mochi_packages {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname="sans"];']
    for e in sorted(entries, key=lambda e: e.name):
        note = "\\n".join(sites.get(e.name, [])) if e.direct else ""
        fill = "palegreen" if e.direct else "white"
        out.append(f'  "{e.name}" [label="{e.name} {e.version}{chr(92) + "n" + note if note else ""}", '
                   f'fillcolor="{fill}"];')
    for name, deps in sorted(dependency_edges(entries).items()):
        out += [f'  "{name}" -> "{dep}";' for dep in deps]
    out.append("}")
    return "\n".join(out) + "\n"
