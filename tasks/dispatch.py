"""Light references for the task graph: doit holds these, and the stage code is imported only when a
task really runs, so a lock with nothing to do never imports it (DESIGN §10's no-op budget)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .codegen.wrapdir import wrapper_dir

__all__ = ["run_action", "site_intact", "staged_intact", "wheel_present", "wrappers_intact"]


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


def _expected_wrapper(state: Path, name: str) -> dict[str, str] | None:
    """{file: sha256} of the wrapper of *name*: what the last codegen wrote and the module compile built."""
    try:
        expected = dict(_read(state / "deps" / name / "codegen.json")["files"])
        built = _read(state / "compile.json")[name]
        expected[built["file"]] = built["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return expected


def staged_intact(root: str, name: str) -> bool:
    """uptodate check of `codegen:<name>`: the staged wrapper (`.mochi/deps/<name>/wrap/`, what compile
    publishes) holds exactly what the last codegen and compile put there. The published copy is compile's."""
    from .build.verify import tree_problems
    state = Path(root) / ".mochi"
    expected = _expected_wrapper(state, name)
    return expected is not None and not tree_problems(state / "deps" / name / "wrap", expected, name)


def wrappers_intact(root: str, names: list[str], interpreter: str) -> bool:
    """uptodate check of `compile`: every published `python_wrap/<dist>/` holds exactly the files codegen and
    compile made, unchanged (bytecode caches verified); a drifted one is repaired by publishing again."""
    from .build.verify import pyc_problems, tree_problems
    state = Path(root) / ".mochi"
    for name in names:
        expected = _expected_wrapper(state, name)
        wrap = wrapper_dir(Path(root), name)
        if expected is None or tree_problems(wrap, expected, name) or pyc_problems(wrap, interpreter, name):
            return False
    return True


def site_intact(root: str, names: list[str], interpreter: str) -> bool:
    """uptodate check of `site`: `python_wrap/site-packages` is exactly the install of the fetched wheels."""
    from .build.verify import pyc_problems, site_problems
    try:
        wheels = [Path(_read(Path(root) / ".mochi" / "deps" / n / "fetch.json")["path"]) for n in names]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    site = Path(root) / "python_wrap" / "site-packages"
    return not site_problems(site, wheels) and not pyc_problems(site, interpreter, "site-packages")
