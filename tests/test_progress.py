"""The progress reporter on and off a terminal, the closing summary, and `mochi-py graph`."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import run_cli

from tasks.reporter import ProgressReporter


class _Out(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _task(name: str, values: dict[str, Any] | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, actions=[object()], values=values or {}, title=lambda: name, executed=True)


def _drive(out: _Out) -> str:
    rep = ProgressReporter(out, {})
    fetch = _task("fetch:inflection", {"bytes": 9454, "filename": "inflection-0.5.1-py2.py3-none-any.whl"})
    rep.execute_task(fetch)
    rep.add_success(fetch)
    rep.skip_uptodate(_task("stubs:inflection"))
    lock = _task("lock")
    rep.execute_task(lock)
    rep.add_success(lock)
    rep.complete_run()
    return out.getvalue()


def test_terminal_mode_shows_stage_package_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    text = _drive(_Out(tty=True))
    assert text.splitlines() == [
        "[  1] fetching       inflection",
        "      done fetching  inflection (9,454 bytes, inflection-0.5.1-py2.py3-none-any.whl)",
        "[  2] writing locks  ",
        "      1 task(s) up to date",
    ]


def test_terminal_mode_colours_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\033[36m[  1]\033[0m fetching" in _drive(_Out(tty=True))


def test_plain_mode_prints_parseable_task_lines() -> None:
    assert _drive(_Out(tty=False)).splitlines() == [".  fetch:inflection", "-- stubs:inflection", ".  lock"]


def test_lock_ends_with_a_summary_and_quiet_prints_nothing(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    proc = run_cli("lock", str(root), env=locked["env"])
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1].startswith(
        "locked 3 package(s), 2 direct: 26 translated, 2 skipped; wrappers: ")
    quiet = run_cli("lock", str(root), "-q", env=locked["env"])
    assert (quiet.returncode, quiet.stdout) == (0, "")


def test_graph_writes_the_task_graph(locked: dict[str, Any], copy_project: Any, tmp_path: Path) -> None:
    root = copy_project(locked["root"])
    out = tmp_path / "g.dot"
    proc = run_cli("graph", str(root), "--tasks", "-o", str(out), env=locked["env"])
    assert proc.returncode == 0, proc.stderr
    dot = out.read_text()
    for edge in ('"stubs:typedfix" -> "fetch:typedfix"', '"surface:typedfix" -> "stubs:typedfix"',
                 '"codegen:liarfix" -> "surface:liarfix"', '"compile" -> "codegen:typedfix"',
                 '"lock" -> "compile"', '"lock" -> "capabilities:helperfix"', '"fetch:helperfix" -> "resolve"'):
        assert edge in dot, edge
    assert dot.startswith("digraph mochi_lock {")
