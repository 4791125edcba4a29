"""Issue 14, item 4 (the index side): what an index says is validated before it is used. A `sha256` is
never a path component, a remote page cannot point at `file://`, malformed entries are ignored or a
clear error, never a traceback; hex digests are normalised."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import build_wheel
from packaging import tags

from hostile.a_server import AServer, json_page, send
from tasks.errors import FetchError
from tasks.fetch.download import FetchedWheel, fetch_from_index

_NAME = "evilfix-1.0-py3-none-any.whl"


@pytest.fixture
def a_evil(tmp_path: Path) -> Iterator[tuple[AServer, bytes]]:
    data = build_wheel(tmp_path / "w", "evilfix", "1.0", {"evilfix/__init__.py": b""}).read_bytes()
    server = AServer().start()
    server.routes[f"/files/{_NAME}"] = lambda h: send(h, data)
    yield server, data
    server.stop()


def _fetch(server: AServer, cache: Path) -> FetchedWheel:
    return fetch_from_index("evilfix", "1.0", [f"{server.base}/simple/"], list(tags.sys_tags()), "3.11.0", cache)


def test_an_index_sha256_is_never_a_path(a_evil: tuple[AServer, bytes], tmp_path: Path) -> None:
    server, _ = a_evil
    planted = tmp_path / "planted" / "x"
    server.routes["/simple/evilfix/"] = json_page([{"filename": _NAME, "url": f"../../files/{_NAME}",
                                                    "hashes": {"sha256": str(planted)}}])
    with pytest.raises(FetchError, match=rf"lists no valid sha256 \(64 hex digits\) for {_NAME}"):
        _fetch(server, tmp_path / "cache")
    assert not planted.parent.exists()
    assert not (tmp_path / "cache" / "by-sha256").exists()


def test_a_remote_index_cannot_point_at_local_files(a_evil: tuple[AServer, bytes], tmp_path: Path) -> None:
    server, data = a_evil
    secret = tmp_path / "secret" / _NAME
    secret.parent.mkdir()
    secret.write_bytes(data)  # a file of this machine the index knows the hash of
    server.routes["/simple/evilfix/"] = json_page([{"filename": _NAME, "url": secret.as_uri(),
                                                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}])
    with pytest.raises(FetchError, match=r"no wheel of evilfix 1\.0 fits .*\(index has: no wheels\)"):
        _fetch(server, tmp_path / "cache")
    assert not (tmp_path / "cache" / "wheels").exists()


def test_malformed_entries_are_ignored_not_a_traceback(a_evil: tuple[AServer, bytes], tmp_path: Path) -> None:
    server, data = a_evil
    server.routes["/simple/evilfix/"] = json_page([
        {"filename": 5, "url": []},
        "not an object",
        {"filename": f"../{_NAME}", "url": f"../../files/{_NAME}"},
        {"filename": _NAME, "url": "javascript:alert(1)", "hashes": {"sha256": hashlib.sha256(data).hexdigest()}},
        {"filename": _NAME, "url": f"../../files/{_NAME}", "hashes": "nope", "size": "huge", "requires-python": 3,
         "core-metadata": {"sha256": ["x"]}},
    ])
    with pytest.raises(FetchError, match=rf"lists no valid sha256 \(64 hex digits\) for {_NAME}"):
        _fetch(server, tmp_path / "cache")


def test_a_page_that_is_not_json_data_is_a_clear_error(a_evil: tuple[AServer, bytes], tmp_path: Path) -> None:
    server, _ = a_evil
    server.routes["/simple/evilfix/"] = lambda h: send(h, b'{"files": {"a": 1}}', "application/vnd.pypi.simple.v1+json")
    with pytest.raises(FetchError, match=r"not a PEP 691 project page"):
        _fetch(server, tmp_path / "cache")


def test_an_uppercase_digest_is_normalised(a_evil: tuple[AServer, bytes], tmp_path: Path) -> None:
    server, data = a_evil
    server.routes["/simple/evilfix/"] = json_page([{"filename": _NAME, "url": f"../../files/{_NAME}", "size": len(data),
                                                    "hashes": {"sha256": hashlib.sha256(data).hexdigest().upper()}}])
    fetched = _fetch(server, tmp_path / "cache")
    assert fetched.sha256 == hashlib.sha256(data).hexdigest()
