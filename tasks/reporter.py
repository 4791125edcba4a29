"""The doit reporter: progress a person can follow on long locks.

On a terminal the reporter prints one line per task as it starts and finishes: a counter, the stage,
the package and version, and for downloads the bytes; colours unless `NO_COLOR` is set. Elsewhere
(pipes, CI logs) it prints doit's plain `.  task` / `-- task` lines, which scripts can parse. A failure is
one `error: <stage> <package>: <message>` block on stderr, not doit's `TaskFailed - taskid:` dump (that, and
a crashed action's traceback, only with -v). `QuietReporter` (-q) prints failures alone; `VerboseReporter`
(-v) also lists up-to-date tasks on a terminal. The classes are importable at module level so doit can hand
them to worker processes.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from doit.exceptions import TaskError
from doit.reporter import ConsoleReporter

from .console import STAGES, paint, use_color

__all__ = ["ProgressReporter", "QuietReporter", "VerboseReporter"]


class ProgressReporter(ConsoleReporter):  # type: ignore[misc]  # doit ships no type hints
    desc = "mochi-pybridge progress"
    quiet = False
    verbose = False

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.tty = bool(getattr(outstream, "isatty", lambda: False)())
        self.color = use_color(outstream)
        self.done = 0
        self.started = 0
        self.cached = 0

    def _paint(self, code: str, text: str) -> str:
        return paint(code, text, self.color)

    @staticmethod
    def _describe(task: Any) -> tuple[str, str]:
        stage, _, name = str(task.name).partition(":")
        return STAGES.get(stage, stage), name

    def execute_task(self, task: Any) -> None:
        if not task.actions or task.name.startswith("_") or self.quiet:
            return
        if not self.tty:
            super().execute_task(task)
            return
        stage, name = self._describe(task)
        self.started += 1  # counted at the start: with parallel workers several run before one is done
        self.write(f"{self._paint('36', f'[{self.started:>3}]')} {stage:<14} {name}\n")

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
        if not self.quiet and (not self.tty or self.verbose):
            super().skip_uptodate(task)

    def add_failure(self, task: Any, fail: Any) -> None:
        if not fail.report:
            return
        self.failures.append({"task": task, "exception": fail})
        stage, name = self._describe(task)
        text = str(fail.get_msg()).strip()
        if isinstance(fail, TaskError) and not self.verbose:
            text = text.splitlines()[-1] + "\n  hint: this is a bug in mochi-pybridge; rerun with -v for the traceback"
        label = self._paint("31", "error:") if use_color(sys.stderr) else "error:"
        sys.stderr.write(f"{label} {stage}{' ' + name if name else ''}: {text}\n")
        sys.stderr.flush()

    def complete_run(self) -> None:
        if self.tty and self.cached and not self.quiet:
            self.write(self._paint("2", f"      {self.cached} task(s) up to date\n"))
        if self.verbose:
            super().complete_run()  # doit's own report: the output each failed task captured
        elif self.runtime_errors:
            sys.stderr.write("error: " + "\n".join(self.runtime_errors) + "\n")


class QuietReporter(ProgressReporter):
    """-q: failures only."""

    quiet = True


class VerboseReporter(ProgressReporter):
    """-v: up-to-date tasks too, and doit's full report of a failure."""

    verbose = True
