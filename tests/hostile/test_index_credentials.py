"""Issue 14, item 9 (credentials): an index URL with `user:password@` locks against an index that demands
basic auth: uv resolves with the credentials, every download carries them, and they are written to no
file the lock makes (mochi.lock, pylock.toml, `.mochi/`, the cache) and appear in no output."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_cli, write_project

from hostile.a_server import AServer, index_routes

_USER, _PASSWORD = "alice", "s3cret-Pa55"


@pytest.fixture
def a_private_index(wheel_dir: Path) -> Iterator[AServer]:
    server = AServer(routes=index_routes(sorted(wheel_dir.glob("*.whl"))), auth=(_USER, _PASSWORD)).start()
    yield server
    server.stop()


def _files_holding(root: Path, secret: bytes) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink() and secret in p.read_bytes())


def test_index_credentials_reach_uv_and_downloads_and_no_file(a_private_index: AServer, tmp_path: Path) -> None:
    url = a_private_index.base.replace("http://", f"http://{_USER}:{_PASSWORD}@") + "/simple/"
    root = write_project(tmp_path / "proj", 'typedfix = "^1.0"', url)
    (root / "app.mochi").write_text('import python "typedfix" as typedfix\n\nprint(typedfix.add(1, 2))\n')
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    lock = run_cli("lock", str(root), env=env)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    assert "resolved 2 packages with uv" in lock.stdout, lock.stdout + lock.stderr
    check = run_cli("check", str(root), env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    token = "Basic " + base64.b64encode(f"{_USER}:{_PASSWORD}".encode()).decode()
    downloads = [(path, auth) for path, auth in a_private_index.seen if path.startswith("/files/")]
    assert downloads and all(auth == token for _, auth in downloads), a_private_index.seen
    secret = _PASSWORD.encode()
    for proc in (lock, check):
        assert _PASSWORD not in proc.stdout + proc.stderr
    assert _files_holding(root, secret) == [str(root / "mochi.toml")]  # only where the user wrote it
    assert _files_holding(tmp_path / "cache", secret) == []  # uv's cache included
    assert f"{a_private_index.base}/simple/" in (root / "mochi.lock").read_text()  # the index, without them


def test_wrong_credentials_fail_without_showing_them(a_private_index: AServer, tmp_path: Path) -> None:
    url = a_private_index.base.replace("http://", f"http://{_USER}:not-the-pw@") + "/simple/"
    root = write_project(tmp_path / "proj", 'typedfix = "^1.0"', url)
    proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache"),
                                           "MOCHI_UV": str(tmp_path / "no-uv")})  # pip's resolver too
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "not-the-pw" not in out
    assert "Traceback" not in out
