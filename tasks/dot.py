"""`mochi-py graph`: the project's task graph as Graphviz DOT (and SVG when `dot` is installed).

Nodes are tasks; an edge runs from a task to each task it depends on, through `task_dep` or through
a `file_dep` that another task's `targets` produce. The per-dependency chains exist only once
`resolve` has pinned the set, so before the first lock the graph holds `resolve` alone.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["render_dot", "write_graph"]

_COLORS = {"resolve": "lightblue", "fetch": "lightyellow", "capabilities": "mistyrose", "stubs": "honeydew",
           "surface": "honeydew", "codegen": "lavender", "compile": "lightgrey", "site": "lightgrey",
           "lock": "palegreen", "check": "white"}


def render_dot(tasks: list[dict[str, Any]]) -> str:
    producers = {str(t): task["full_name"] for task in tasks for t in task.get("targets", [])}
    names = {task["full_name"] for task in tasks}
    lines = ["digraph mochi_lock {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname="sans"];']
    for task in sorted(tasks, key=lambda t: t["full_name"]):
        stage = task["full_name"].split(":")[0]
        lines.append(f'  "{task["full_name"]}" [fillcolor="{_COLORS.get(stage, "white")}"];')
    edges = set()
    for task in tasks:
        for dep in task.get("task_dep", []):
            if dep in names:
                edges.add((task["full_name"], dep))
        for dep in task.get("file_dep", []):
            if str(dep) in producers and producers[str(dep)] != task["full_name"]:
                edges.add((task["full_name"], producers[str(dep)]))
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(creators: dict[str, Callable[..., Any]], dest: Path) -> list[Path]:
    """Write DOT to *dest* and, when Graphviz is installed, SVG beside it; returns the files written."""
    from .graph import task_dicts
    text = render_dot(task_dicts(creators))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    written = [dest]
    dot = shutil.which("dot")
    if dot is not None:
        svg = dest.with_suffix(".svg")
        subprocess.run([dot, "-Tsvg", str(dest), "-o", str(svg)], check=True, capture_output=True)
        written.append(svg)
    return written
