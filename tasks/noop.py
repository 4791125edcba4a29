"""A no-op lock without loading the task graph: the stat of every file the graph reads or writes.

After a successful lock the CLI records the context and the (mtime, size) of every `file_dep` and
`target` of every task, of each cached wheel, and the `import python` lines of the `.mochi` sources. When the next lock
finds all of that unchanged, every task would be up to date, so doit is not even imported
(DESIGN §10: a no-op lock within twice a warm resolver run). Anything different, missing or
unreadable falls through to the full graph, which then decides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .cache import atomic_write
from .context import Context
from .resolve.sources import import_key

__all__ = ["STAMP", "read_unchanged", "write_stamp"]

STAMP = Path(".mochi") / "noop.json"


def _stat(path: str) -> list[int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _tree(root: Path) -> dict[str, list[int]]:
    """The identity of every entry under *root* (python_wrap/): inode, size, mtime and ctime, so that any
    edit, added or removed file (a directory's times move with its entries) sends the lock to the graph,
    whose up-to-date tests verify the files themselves."""
    out: dict[str, list[int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            out[str(path)] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return out


def _state(ctx: Context) -> dict[str, Any]:
    # The import lines, not the .mochi files: a lock after editing a comment is still a no-op.
    return {"version": __version__, "ctx": json.loads(json.dumps(ctx.as_args())), "imports": import_key(Path(ctx.root))}


def write_stamp(ctx: Context, creators: dict[str, Callable[..., Any]]) -> None:
    from .graph import task_dicts
    tasks = task_dicts(creators)
    files = {str(f) for t in tasks for f in (*t.get("file_dep", []), *t.get("targets", []))}
    for path in list(files):
        if path.endswith("fetch.json"):
            try:
                files.add(json.loads(Path(path).read_text(encoding="utf-8"))["path"])
            except (OSError, ValueError, KeyError):
                return  # an unreadable fetch record: no stamp, the next lock takes the full path
    files.add(str(Path(ctx.root) / ".mochi" / "doit.sqlite3"))
    atomic_write(Path(ctx.root) / STAMP, json.dumps({
        **_state(ctx), "tasks": sorted(t["full_name"] for t in tasks if t["full_name"] != "check"),
        "files": {f: _stat(f) for f in sorted(files)}, "python_wrap": _tree(Path(ctx.root) / "python_wrap")}).encode())


def read_unchanged(ctx: Context) -> list[str] | None:
    """The task names of the last lock when nothing it depends on changed since, else None."""
    try:
        data = json.loads((Path(ctx.root) / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state = _state(ctx)
    if any(data.get(k) != v for k, v in state.items()):
        return None
    files = data.get("files", {})
    if not files or any(stat is None or _stat(path) != stat for path, stat in files.items()):
        return None
    if data.get("python_wrap") != _tree(Path(ctx.root) / "python_wrap"):
        return None
    return list(data.get("tasks", []))
