"""Issue 14 item 9: every bad input is a message (what, where, what to do) with exit code 2, never a traceback,
and nothing is changed or left behind.

Full and read-only disks are real ones where the test may mount a tmpfs (root); elsewhere a read-only
directory (honoured for an unprivileged user) or a path through a regular file stands in.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import build_wheel, fixture_index, run_cli, tree_files, write_project

from tasks.errors import FetchError, ManifestError
from tasks.fetch.index import fetch_project
from tasks.resolve.manifest import parse_manifest
from tasks.surface.documents import Documents

EMPTY = '[python-dependencies]\n\n[python]\nrequires-python = ">=3.11"\n'


def _lock(root: Path, cache: Path, *args: str) -> tuple[int, str]:
    proc = run_cli("lock", "--offline", *args, str(root), env={"MOCHI_CACHE_DIR": str(cache)})
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert "this is a bug" not in out, out
    return proc.returncode, out


def _refused(root: Path, cache: Path, *expected: str) -> str:
    """Lock *root*: exit 2, each of *expected* in the message, the project exactly as it was (no .mochi/)."""
    before = tree_files(root)
    rc, out = _lock(root, cache)
    assert rc == 2, out
    for text in expected:
        assert text in out, out
    assert "hint:" in out, out
    assert tree_files(root) == before
    assert not (root / ".mochi").exists() and not (root / "python_wrap").exists()
    return out


# --- manifests and programs -----------------------------------------------------------------------------------

def test_a_non_utf8_manifest_names_the_byte(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_bytes(b'[python-dependencies]\nabc = "1"\n\xff\xfe = "2"\n')
    _refused(root, tmp_path / "cache", f"{root / 'mochi.toml'}:3:1: not UTF-8 text (byte 0xff",
             "save the file as UTF-8")


def test_a_binary_manifest(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_bytes(bytes(range(256)) * 4)
    _refused(root, tmp_path / "cache", f"{root / 'mochi.toml'}:", "not UTF-8 text")


def test_a_directory_named_mochi_toml(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "mochi.toml").mkdir(parents=True)
    out = _refused(root, tmp_path / "cache", f"{root / 'mochi.toml'} is not a file", "remove or rename it")
    assert "no mochi.toml in" not in out  # not the "no project here" message: there is one, and it is wrong


def test_a_non_utf8_program(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_text(EMPTY)
    (root / "app.mochi").write_bytes(b'print("ok")\nimport python "x\xc3(" as y\n')
    _refused(root, tmp_path / "cache", f"{root / 'app.mochi'}:2:17: not UTF-8 text (byte 0xc3")


def test_requires_python_below_the_floor_is_refused_at_its_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_text('[python-dependencies]\n\n[python]\nrequires-python = ">=3.8"\n')
    _refused(root, tmp_path / "cache", f"{root / 'mochi.toml'}:4:19: requires-python '>=3.8' allows Python 3.8, "
             "below 3.11", 'write requires-python = ">=3.11"')
    for ok in (">=3.11", ">=3.12,<4", "==3.12.*"):
        assert parse_manifest(f'[python]\nrequires-python = "{ok}"\n', Path("mochi.toml")).python.requires_python == ok
    for low in ("<4", "!=3.11.*", ">=2.7", "~=3.10"):
        with pytest.raises(ManifestError, match=r"below 3\.11"):
            parse_manifest(f'[python]\nrequires-python = "{low}"\n', Path("mochi.toml"))


@pytest.mark.parametrize(("text", "where", "message"), [
    ('[python]\ncapabilities = { net = 1 }\n', "2:24", "capability 'net' must be true or false"),
    ('[python]\ncapabilities = { net = true, netx = true }\n', "2:30", "unknown capability 'netx'"),
    ('[python]\n\n[python.capabilities]\nfs = true\nnet = "yes"\n', "5:7", "capability 'net' must be true or false"),
    ('[python]\n\n[python.capabilities]\nfs = true\nnetx = true\n', "5:1", "unknown capability 'netx'"),
    ('[python]\ncapabilities = ["net"]\n', "2:16", "[python.capabilities] must be a table of booleans"),
    ('[python]\ncapabilities.net = 1\n', "1:1", "capability 'net' must be true or false"),  # a dotted key: its table
])
def test_capability_errors_have_exact_positions(text: str, where: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, Path("mochi.toml"))
    assert f"mochi.toml:{where}: {message}" in str(info.value)


def test_bad_manifests_exit_2_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_text('[python-dependencies]\n[python]\nrequires-python = ">=3.11"\n'
                                     'capabilities = { net = 1 }\n')
    _refused(root, tmp_path / "cache", f"{root / 'mochi.toml'}:4:24: capability 'net' must be true or false")


# --- hostile stubs and sources --------------------------------------------------------------------------------

DEEP = "int" + " | int" * 1000     # parses, but walking it overflows Python's recursion limit
DEEPER = "int" + " | int" * 5000   # the parser itself gives up (RecursionError during ast construction)


def test_a_deeply_nested_stub_annotation_is_a_skip(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "deepfix", "1.0", {
        "deepfix/__init__.py": b"def f(x):\n    return 1\n\ndef g(x):\n    return x\n",
        "deepfix/__init__.pyi": f"def f(x: {DEEP}) -> int: ...\ndef g(x: int) -> int: ...\n".encode(),
        "deepfix/py.typed": b""})
    idx = fixture_index([wheel])
    try:
        root = write_project(tmp_path / "p", 'deepfix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "RecursionError" not in out
        skipped = (root / "python_wrap" / "deepfix" / "SKIPPED.txt").read_text()
        assert "deepfix.f\tUnsupportedTypingConstruct\tan annotation nests too deeply to map" in skipped
        assert "deepfix_g" in (root / "python_wrap" / "deepfix" / "shim.mochi").read_text()  # the rest is bound
    finally:
        idx.stop()


def test_a_stub_too_deep_to_parse_is_no_stub(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "__init__.pyi").write_text(f"def f(x: {DEEPER}) -> int: ...\n")
    assert Documents(tmp_path, (3, 12), "linux", {"deep"}).load("deep") is None  # like a stub that does not parse


def test_a_source_too_deep_to_scan_is_a_clear_error(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "deepsrc", "1.0", {
        "deepsrc/__init__.py": f"X = {'1' + ' + 1' * 1000}\n\ndef f(x: int) -> int:\n    return x\n".encode(),
        "deepsrc/py.typed": b""})
    idx = fixture_index([wheel])
    try:
        root = write_project(tmp_path / "p", 'deepsrc = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert ("deepsrc-1.0-py3-none-any.whl: deepsrc/__init__.py nests too deeply to be scanned for capabilities"
                in out), out
        assert "Traceback" not in out and "this is a bug" not in out
        assert not (root / "mochi.lock").exists()
    finally:
        idx.stop()


# --- a malformed index ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _serving(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"files": 3}', b'{"files": {"a": 1}}'])
def test_malformed_index_json_is_a_fetch_error(body: bytes) -> None:
    with _serving(body) as url, pytest.raises(FetchError, match="not a PEP 691 project page"):
        fetch_project(url, "x")


@pytest.mark.parametrize("body", [
    b'{"files": [1]}', b'{"files": [{"filename": "x-1.0-py3-none-any.whl"}]}',
    b'{"files": [{"url": "x", "hashes": []}]}',
    json.dumps({"files": [{"filename": "x-1.0-py3-none-any.whl", "url": "x", "hashes": 5}]}).encode(),
])
def test_a_malformed_file_entry_is_no_file(body: bytes) -> None:
    """An entry of the wrong shape offers nothing usable (no file, or a file with no digest, which is never
    downloaded), never a traceback; a usable entry beside it still counts."""
    good = {"filename": "x-1.0-py3-none-any.whl", "url": "x-1.0-py3-none-any.whl", "hashes": {"sha256": "a" * 64}}
    page = json.loads(body)
    with _serving(json.dumps(page).encode()) as url:
        assert all(not f.sha256 for f in fetch_project(url, "x"))
    page["files"].append(good)
    with _serving(json.dumps(page).encode()) as url:
        assert [f.sha256 for f in fetch_project(url, "x") if f.sha256] == ["a" * 64]


def test_malformed_index_json_through_the_cli(tmp_path: Path) -> None:
    with _serving(b'{"meta": {"api-version": "1.0"}, "files": [1, 2]}') as url:
        root = write_project(tmp_path / "p", 'x = "1.0"', url)
        before = tree_files(root)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out and "this is a bug" not in out
    assert tree_files(root) == before and not (root / ".mochi").exists()


# --- full and read-only disks ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _tmpfs(where: Path, size_kb: int, readonly: bool = False) -> Iterator[bool]:
    """A tmpfs of *size_kb* at *where* when this process may mount one (True), else nothing (False)."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_kb}k" + (",ro" if readonly else "")
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                                                   capture_output=True, check=False).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _fill(where: Path, leave_kb: int) -> None:
    """Fill the file system at *where* up to *leave_kb* free."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    with (where / "filler").open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kb * 1024))


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_text(EMPTY)
    return root


def test_a_read_only_cache(tmp_path: Path) -> None:
    root = _project(tmp_path)
    ro = tmp_path / "ro"
    with _tmpfs(ro, 64, readonly=True) as mounted:
        if mounted:
            out = _refused(root, ro / "cache", f"{ro / 'cache'}: Read-only file system", "make that place writable")
        elif os.geteuid() != 0:
            ro.chmod(0o555)  # honoured for an unprivileged user
            try:
                out = _refused(root, ro / "cache", f"{ro / 'cache'}: Permission denied", "make that place writable")
            finally:
                ro.chmod(0o755)
        else:  # root ignores modes and may not mount: a path through a regular file fails the same way
            (ro / "file").write_text("")
            out = _refused(root, ro / "file" / "cache", str(ro / "file"), "hint:")
    assert "MOCHI_CACHE_DIR" in out or "check that path" in out


def test_a_full_cache(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with _tmpfs(tmp_path / "full", 128) as mounted:
        if mounted:
            _fill(tmp_path / "full", 0)
            _refused(root, tmp_path / "full" / "cache", "No space left on device", "the disk is full")
        else:  # no tmpfs to fill: a cache under a read-only directory is the nearest failure
            (tmp_path / "full").chmod(0o555)
            try:
                _refused(root, tmp_path / "full" / "cache", str(tmp_path / "full"))
            finally:
                (tmp_path / "full").chmod(0o755)


def test_a_full_project_disk(tmp_path: Path) -> None:
    """A project on a full disk: each write that fails is a message, doit's sqlite database ("database or disk is
    full") included; nothing is left. Without a tmpfs, `.mochi` taken by a regular file fails the same writes."""
    with _tmpfs(tmp_path / "disk", 256) as mounted:
        if not mounted:
            root = _project(tmp_path)
            (root / ".mochi").write_text("not a directory")
            before = tree_files(root)
            rc, out = _lock(root, tmp_path / "cache")
            assert rc == 2 and str(root / ".mochi") in out and "hint:" in out, out
            assert tree_files(root) == before
            return
        root = _project(tmp_path / "disk")
        outs: list[str] = []
        for leave in (0, 12, 16):
            (tmp_path / "disk" / "filler").unlink(missing_ok=True)
            _fill(tmp_path / "disk", leave)
            rc, out = _lock(root, tmp_path / "cache")
            assert rc == 2, out
            assert "the disk is full" in out or "database or disk is full" in out, out
            assert not (root / "mochi.lock").exists() and not (root / ".mochi").exists()
            outs.append(out)
        assert f"{root / '.mochi'}" in outs[0] and "No space left on device" in outs[0]
        assert any("doit.sqlite3: the task state database cannot be used: database or disk is full" in o
                   for o in outs), outs


def test_a_task_state_database_that_cannot_be_used(tmp_path: Path) -> None:
    """doit's sqlite file: a directory in its place, or garbage (what a full disk leaves as "disk is full")."""
    root = _project(tmp_path)
    cache = tmp_path / "cache"
    (root / ".mochi" / "doit.sqlite3").mkdir(parents=True)
    rc, out = _lock(root, cache)
    assert rc == 2
    assert f"{root / '.mochi' / 'doit.sqlite3'}: the task state database cannot be used: unable to open" in out
    (root / ".mochi" / "doit.sqlite3").rmdir()
    (root / ".mochi" / "doit.sqlite3").write_bytes(os.urandom(8192))
    rc, out = _lock(root, cache)
    assert rc == 2
    assert "the task state database cannot be used: file is not a database" in out
    assert "`mochi-py clean`" in out
    assert not (root / "mochi.lock").exists()
