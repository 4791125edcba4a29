"""Light references for the task graph: doit holds these, and the stage code is imported only when a
task really runs, so a lock with nothing to do never imports it (DESIGN §10's no-op budget)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .codegen.wrapdir import wrapper_dir

__all__ = ["run_action", "site_intact", "wheel_present", "wrap_intact", "wrappers_intact"]


def run_action(name: str, *args: Any) -> Any:
    """Call `tasks.actions.<name>(*args)`; module-level, so doit can pickle it for worker processes."""
    from . import actions
    try:
        return getattr(actions, name)(*args)
    except OSError as exc:  # a full or read-only disk under a stage: its message, not "a bug" with a traceback
        from doit.exceptions import TaskFailed

        from .errors import storage_error
        return TaskFailed(str(storage_error(exc)))


def wheel_present(fetch_json: str) -> bool:
    """uptodate check: the cached wheel a fetch recorded still exists and still has the BLAKE3 it was
    fetched with (a cleared cache or a swapped wheel means fetch again)."""
    from .cache import recorded_digests
    try:
        fetched = json.loads(Path(fetch_json).read_text(encoding="utf-8"))
        path = Path(fetched["path"])
        return path.is_file() and recorded_digests(path.parents[2], path).blake3 == fetched["blake3"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def wrap_intact(root: str, name: str, interpreter: str) -> bool:
    """uptodate check of `codegen:<name>`: `python_wrap/<name>/` holds exactly the files the last codegen
    and compile wrote, unchanged (bytecode caches verified), so a tampered or added file makes it run again."""
    from .build.verify import pyc_problems, tree_problems
    state = Path(root) / ".mochi"
    try:
        expected = dict(_read(state / "deps" / name / "codegen.json")["files"])
        built = _read(state / "compile.json")[name]
        expected[built["file"]] = built["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    wrap = wrapper_dir(Path(root), name)
    return not tree_problems(wrap, expected, name) and not pyc_problems(wrap, interpreter, name)


def wrappers_intact(root: str, names: list[str], interpreter: str) -> bool:
    """uptodate check of `compile`: every published `python_wrap/<dist>/` is still exactly what codegen and
    compile made (compile publishes the staged directory, so a drifted one is repaired by publishing again)."""
    return all(wrap_intact(root, n, interpreter) for n in names)


def site_intact(root: str, names: list[str], interpreter: str) -> bool:
    """uptodate check of `site`: `python_wrap/site-packages` is exactly the install of the fetched wheels."""
    from .build.verify import pyc_problems, site_problems
    try:
        wheels = [Path(_read(Path(root) / ".mochi" / "deps" / n / "fetch.json")["path"]) for n in names]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    site = Path(root) / "python_wrap" / "site-packages"
    return not site_problems(site, wheels) and not pyc_problems(site, interpreter, "site-packages")
