"""Every process a lock starts ends with it: workers, their children (uv, cmake, ninja, cc), stubgen's sandbox.

The lock process becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), so a process orphaned anywhere
below it, a double-forked daemon included, is re-parented to it instead of to PID 1 and stays findable
as a descendant. :func:`kill_descendants` walks that tree in `/proc` and SIGKILLs it. :func:`guarded` makes
SIGINT and SIGTERM (to the lock or to any of its workers, which inherit the handlers through fork) one
teardown in the lock process: kill every descendant, print one line, exit 130 or 143. A worker asks for
SIGKILL when the lock process dies (a fork hook), and a worker that dies under the lock is
noticed (:func:`watch_workers`) instead of leaving doit waiting for its result forever. Linux-only
pieces do nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

__all__ = ["descendants", "guarded", "kill_descendants", "stop", "watch_workers"]

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_pids = {"main": 0, "active": 0, "hooked": 0}
"""The lock process, whether a lock runs in it, whether the fork hook is in place (fork copies this)."""
_spared: set[int] = set()
"""Descendants the lock found when it started (a caller's own processes): never killed."""
_stopping = threading.Lock()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    try:
        return libc is not None and bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except AttributeError:
        return False


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    # the command name, in parentheses, may hold spaces and parentheses: the fields follow the last ")"
    return stat[stat.rfind(")") + 2:].split(" ", 1)[0]


def _children(pid: int) -> list[int] | None:
    """Direct children of *pid* from `/proc/<pid>/task/*/children` (None where the kernel does not have it)."""
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except FileNotFoundError:
            if not (task / "children").parent.exists():
                continue  # the thread ended meanwhile
            return None
        except (OSError, ValueError):
            continue
    return kids


def _parents() -> dict[int, list[int]]:
    """ppid -> pids, from every /proc/<pid>/stat (the slow way)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 1:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """The live processes below *pid* (a zombie has exited already and only waits to be reaped)."""
    if not sys.platform.startswith("linux"):
        return []
    tree: dict[int, list[int]] | None = None
    out, todo, seen = [], [pid], {pid}
    while todo:
        current = todo.pop()
        kids = _children(current)
        if kids is None:
            tree = tree if tree is not None else _parents()
            kids = tree.get(current, [])
        for kid in kids:
            if kid not in seen:
                seen.add(kid)
                todo.append(kid)
                if _state(kid) not in ("Z", "X"):
                    out.append(kid)
    return out


def kill_descendants(pid: int | None = None) -> None:
    """SIGKILL every process below *pid* (default: this one) and reap those that are its children, until none
    is left (a process may fork while the tree is walked)."""
    me = os.getpid() if pid is None else pid
    killed: set[int] = set()
    for _ in range(500):
        found = [p for p in descendants(me) if p not in _spared]
        for child in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        if me == os.getpid():
            killed.update(found)
            for child in list(killed):  # only those killed here: a caller's own children stay its to wait for
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(child, os.WNOHANG)[0] == child:
                        killed.discard(child)
                    continue
                killed.discard(child)  # not a child of this process: its own parent reaps it
        if not found:
            return
        time.sleep(0.01)


def stop(message: str, code: int) -> None:
    """End the lock now: every descendant killed, *message* as the one line on stderr, exit *code*."""
    if not _stopping.acquire(blocking=False):
        return  # another thread is stopping it already
    kill_descendants()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    os._exit(code)


_SIGNALS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _pids["main"]:  # a worker: the lock process tears everything down, once
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(_pids["main"], signum)
        return
    what, code = _SIGNALS[signal.Signals(signum)]
    stop(f"error: {what}: the lock was stopped, and every process it started with it (finished stages are kept; "
         "rerun it to go on)", code)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """While the lock runs in this process: be the subreaper of everything below, turn SIGINT/SIGTERM into a
    teardown, and at the end kill whatever it left running. Processes that were there before are spared, and
    the previous signal handlers come back (a caller running the lock in-process keeps its own)."""
    _pids["main"], _pids["active"] = os.getpid(), 1
    if not _pids["hooked"]:
        os.register_at_fork(after_in_child=_die_with_parent)
        _pids["hooked"] = 1
    _spared.clear()
    _spared.update(descendants(os.getpid()))
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    for signum in _SIGNALS:
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        kill_descendants()  # what a failed or finished task left running (a daemon it started) ends here
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _prctl(_PR_SET_CHILD_SUBREAPER, 0)
        _pids["active"] = 0


def _die_with_parent() -> None:
    """In a process the lock forked (a doit worker): SIGKILL when the lock process dies, so even a SIGKILLed lock
    leaves no worker behind holding its pipes."""
    if _pids["active"] and os.getppid() == _pids["main"]:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != _pids["main"]:  # it died before the request
            os._exit(1)


def watch_workers(on_death: Callable[[int], None], interval: float = 0.2) -> Callable[[], None]:
    """Call *on_death(exitcode)* when a multiprocessing child (a doit worker) ends abnormally; returns the stopper.

    doit waits for each worker's result without a timeout, so a worker killed under it would hang the lock.
    """
    import multiprocessing
    done = threading.Event()

    def watch() -> None:
        seen: set[multiprocessing.process.BaseProcess] = set()
        while not done.wait(interval):
            try:
                live = set(multiprocessing.active_children())
            except RuntimeError:  # the set of children changed while it was read: next round
                continue
            for proc in seen - live:
                if proc.exitcode not in (None, 0) and not done.is_set():
                    on_death(proc.exitcode)
            seen = live | {p for p in seen - live if p.exitcode is None}

    threading.Thread(target=watch, name="mochi-worker-watch", daemon=True).start()
    return done.set
