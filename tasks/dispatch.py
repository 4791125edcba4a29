"""Light references for the task graph: doit holds these, and the stage code is imported only when a
task really runs, so a lock with nothing to do never imports it (DESIGN §10's no-op budget)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["run_action", "wheel_present"]


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
    """uptodate check: the cached wheel a fetch recorded still exists (a cleared cache means fetch again)."""
    try:
        return Path(json.loads(Path(fetch_json).read_text(encoding="utf-8"))["path"]).is_file()
    except (OSError, ValueError, KeyError):
        return False
