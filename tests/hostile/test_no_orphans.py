"""Issue 14, item 6: a lock that is interrupted, terminated, loses a worker or hits its watchdog leaves nothing
running, and its output pipes reach EOF (a process still holding them is an orphan that hangs a CI job).

The package built here never finishes its import: stubgen's sandbox sleeps in it, with a child and a
double-forked `setsid()` daemon that carry a unique marker in their argv. The lock itself carries another
marker in its environment, which every worker and tool it starts inherits; afterwards no process may
carry either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, FixtureIndex, build_wheel, fixture_index, write_project

ENV_MARKER = "B14_ORPHAN_MARKER"

SLEEPER = '''\
"""Never finishes its import (tests/hostile/test_no_orphans.py)."""
import os, subprocess, sys, time
MARKER = {marker!r}
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", MARKER])
    os._exit(0)
os.wait()
time.sleep(600)


def f(x: int) -> int:
    return x
'''


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[FixtureIndex, str]]:
    marker = f"b14-orphan-{uuid.uuid4().hex}"
    wheel = build_wheel(tmp_path / "wheels", "sleepfix", "1.0",
                        {"sleepfix/__init__.py": SLEEPER.format(marker=marker).encode()})
    idx = fixture_index([wheel])
    yield idx, marker
    idx.stop()
    for pid in _carrying(marker):  # never leave them behind, even when the test failed
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _carrying(marker: str, parts: tuple[str, ...] = ("cmdline", "environ")) -> list[int]:
    """Processes whose argv or environment holds *marker* (zombies hold neither)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in parts:
            try:
                if marker.encode() in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                pass
    return found


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def _start(tmp_path: Path, idx: FixtureIndex, marker: str, env: dict[str, str] | None = None
           ) -> subprocess.Popen[str]:
    root = write_project(tmp_path / "proj", 'sleepfix = "1.0"', idx.url)
    full = {**os.environ, "MOCHI_CACHE_DIR": str(tmp_path / "cache"), "MOCHI_STUBGEN_TIMEOUT": "600",
            "PYTHONPATH": str(REPO), ENV_MARKER: marker, **(env or {})}
    # its own session, as a shell starts a job: a signal to its process group is what Ctrl-C sends
    return subprocess.Popen([sys.executable, "-m", "tasks", "lock", "-n", "2", str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full, start_new_session=True)


def _sleeping_in_stubgen(proc: subprocess.Popen[str], marker: str) -> int:
    """The pid of the sandboxed sleeper, once stubgen imports the package (the lock must still be running)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if found := _carrying(marker, ("cmdline",)):
            return found[0]
        time.sleep(0.1)
    raise AssertionError("stubgen never imported the package")


def _ends_with_nothing_left(proc: subprocess.Popen[str], marker: str) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)  # EOF on both pipes: no process holds them any more
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the lock's pipes are still open: {_carrying(marker)}") from None
    assert _carrying(marker) == [], "processes of the lock survived it"
    return proc.returncode, out, err


def test_ctrl_c_stops_everything_with_one_line_and_exit_130(tmp_path: Path,
                                                            sleeper: tuple[FixtureIndex, str]) -> None:
    idx, marker = sleeper
    proc = _start(tmp_path, idx, marker)
    _sleeping_in_stubgen(proc, marker)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends it to the whole foreground group
    rc, out, err = _ends_with_nothing_left(proc, marker)
    assert rc == 130, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted: the lock was stopped"), err


def test_sigterm_stops_everything(tmp_path: Path, sleeper: tuple[FixtureIndex, str]) -> None:
    idx, marker = sleeper
    proc = _start(tmp_path, idx, marker)
    _sleeping_in_stubgen(proc, marker)
    os.kill(proc.pid, signal.SIGTERM)  # to the lock process alone, as a CI runner cancelling a job does
    rc, out, err = _ends_with_nothing_left(proc, marker)
    assert rc == 143, out + err
    assert "error: terminated (SIGTERM): the lock was stopped" in err


def test_a_killed_worker_stops_the_lock_instead_of_hanging_it(tmp_path: Path,
                                                              sleeper: tuple[FixtureIndex, str]) -> None:
    idx, marker = sleeper
    proc = _start(tmp_path, idx, marker)
    pid = _sleeping_in_stubgen(proc, marker)
    while _ppid(pid) != proc.pid:  # up from the sleeper to the doit worker running its stubs task
        pid = _ppid(pid)
    os.kill(pid, signal.SIGKILL)
    rc, out, err = _ends_with_nothing_left(proc, marker)
    assert rc == 2, out + err
    assert "error: a worker process of the lock died (killed by SIGKILL); the lock was stopped" in err


def test_a_sigkilled_lock_takes_its_workers_and_the_sandbox_with_it(tmp_path: Path,
                                                                    sleeper: tuple[FixtureIndex, str]) -> None:
    idx, marker = sleeper
    proc = _start(tmp_path, idx, marker)
    _sleeping_in_stubgen(proc, marker)
    os.kill(proc.pid, signal.SIGKILL)  # nothing of the lock process runs: its workers must go on their own
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the lock's pipes are still open: {_carrying(marker)}") from None
    deadline = time.monotonic() + 60  # each dies when its parent has died: give the chain its moment
    while _carrying(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _carrying(marker) == [], "processes of the lock survived it"


def test_the_watchdog_stops_every_process(tmp_path: Path, sleeper: tuple[FixtureIndex, str]) -> None:
    idx, marker = sleeper
    # it fires wherever the lock is by then (most likely in stubgen's sandbox): either way nothing may be left
    proc = _start(tmp_path, idx, marker, env={"MOCHI_LOCK_TIMEOUT": "10"})
    rc, out, err = _ends_with_nothing_left(proc, marker)
    assert rc == 2, out + err
    assert "error: the lock did not finish within 10 s; it was stopped, and every process it started" in err
