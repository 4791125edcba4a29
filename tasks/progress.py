"""Progress a person can follow on long locks, and the closing summary.

On a terminal the reporter prints one line per task as it starts and finishes: a counter, the stage,
the package and version, and for downloads the bytes; colours unless `NO_COLOR` is set. Elsewhere
(pipes, CI logs) it prints doit's plain `.  task` / `-- task` lines, which scripts can parse. The
class is importable at module level so doit can hand it to worker processes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from doit.reporter import ConsoleReporter

__all__ = ["ProgressReporter", "summary"]

_STAGES = {"resolve": "resolving", "fetch": "fetching", "capabilities": "auditing", "stubs": "reading stubs",
           "surface": "mapping types", "codegen": "generating", "compile": "compiling", "site": "installing",
           "lock": "writing locks", "check": "checking"}


class ProgressReporter(ConsoleReporter):  # type: ignore[misc]  # doit ships no type hints
    desc = "mochi-pybridge progress"

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.tty = bool(getattr(outstream, "isatty", lambda: False)())
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self.done = 0
        self.cached = 0

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    @staticmethod
    def _describe(task: Any) -> tuple[str, str]:
        stage, _, name = str(task.name).partition(":")
        return _STAGES.get(stage, stage), name

    def execute_task(self, task: Any) -> None:
        if not task.actions or task.name.startswith("_"):
            return
        if not self.tty:
            super().execute_task(task)
            return
        stage, name = self._describe(task)
        self.write(f"{self._paint('36', f'[{self.done + 1:>3}]')} {stage:<14} {name}\n")

    def add_success(self, task: Any) -> None:
        if not task.actions or task.name.startswith("_"):
            return
        self.done += 1
        values = getattr(task, "values", None) or {}
        if self.tty and "bytes" in values:
            stage, name = self._describe(task)
            self.write(f"      {self._paint('32', 'done')} {stage:<9} {name} ({values['bytes']:,} bytes, "
                       f"{values.get('filename', '')})\n")

    def skip_uptodate(self, task: Any) -> None:
        if task.name.startswith("_"):
            return
        self.cached += 1
        if not self.tty:
            super().skip_uptodate(task)

    def complete_run(self) -> None:
        if self.tty and self.cached:
            self.write(self._paint("2", f"      {self.cached} task(s) up to date\n"))
        super().complete_run()


def summary(root: Path, started: float, ran_after: float) -> str:
    """One line on what the lock holds and what this run did."""
    from .lockfile import read_lock
    entries = read_lock(root / "mochi.lock")
    direct = [e for e in entries if e.direct]
    compiled = hits = 0
    compile_json = root / ".mochi" / "compile.json"
    if compile_json.is_file() and compile_json.stat().st_mtime >= ran_after:
        results = json.loads(compile_json.read_text(encoding="utf-8"))
        compiled = sum(r["cached"] == "no" for r in results.values())
        hits = sum(r["cached"] == "yes" for r in results.values())
    return (f"locked {len(entries)} package(s), {len(direct)} direct: {sum(e.translated for e in direct)} translated, "
            f"{sum(e.skipped for e in direct)} skipped; wrappers: {compiled} compiled, {hits} from the cache; "
            f"{time.monotonic() - started:.1f} s")
