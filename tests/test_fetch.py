"""Index client, wheel selection, the verified cache, and defensive wheel reading."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from helpers import FixtureIndex, build_wheel, run_cli
from packaging import tags

from tasks.cache import digest_file, store_stream, wheel_path
from tasks.errors import FetchError, HashMismatch, UnsafeArchive
from tasks.fetch import wheel as wheel_mod
from tasks.fetch.index import IndexFile, _parse_html, fetch_project, select_wheel
from tasks.fetch.wheel import read_metadata
from tasks.stubs.ladder import extract_stubs


def _file(name: str) -> IndexFile:
    return IndexFile(filename=name, url=f"http://x/{name}", sha256="a" * 64, requires_python="", yanked=False,
                     size=1)


def test_pep691_json_lists_files_with_hashes(index: FixtureIndex) -> None:
    files = fetch_project(index.url, "LiarFix")
    assert sorted(f.filename for f in files) == ["liarfix-1.0-py3-none-any.whl", "liarfix-1.1-py3-none-any.whl"]
    for f in files:
        assert f.sha256 == hashlib.sha256(index.files[f.filename]).hexdigest()
        assert f.url.startswith(index.url.removesuffix("simple/") + "files/")


def test_pep503_html_fallback_reads_the_hash_fragment() -> None:
    body = ('<a href="../../files/a-1.0-py3-none-any.whl#sha256=' + "b" * 64 + '" data-requires-python="&gt;=3.9">'
            "a-1.0-py3-none-any.whl</a>")
    (f,) = _parse_html(body, "http://127.0.0.1:1/simple/a/")
    assert (f.filename, f.url, f.sha256, f.requires_python) == (
        "a-1.0-py3-none-any.whl", "http://127.0.0.1:1/files/a-1.0-py3-none-any.whl", "b" * 64, ">=3.9")


def test_missing_project_is_a_clear_error(index: FixtureIndex) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_project(index.url, "no-such-project")


def test_selection_prefers_the_most_specific_tag_and_reads_abi3() -> None:
    accepted = list(tags.cpython_tags((3, 12), abis=["cp312"], platforms=["linux_x86_64"])) + list(
        tags.compatible_tags((3, 12), "cp312", platforms=["linux_x86_64"]))
    files = [_file("p-1.0-py3-none-any.whl"), _file("p-1.0-cp311-abi3-linux_x86_64.whl"),
             _file("p-1.0-cp313-abi3-linux_x86_64.whl"), _file("p-1.0-cp312-cp312-win_amd64.whl")]
    assert select_wheel(files, "p", "1.0", accepted, "3.12.1").filename == "p-1.0-cp311-abi3-linux_x86_64.whl"
    files.append(_file("p-1.0-cp312-cp312-linux_x86_64.whl"))
    assert select_wheel(files, "p", "1.0", accepted, "3.12.1").filename == "p-1.0-cp312-cp312-linux_x86_64.whl"
    with pytest.raises(FetchError, match=r"no wheel of p 2\.0"):
        select_wheel(files, "p", "2.0", accepted, "3.12.1")


def test_cache_refuses_bytes_that_do_not_match_the_index(tmp_path: Path) -> None:
    data = b"wheel bytes"
    with pytest.raises(HashMismatch, match="nothing was cached"):
        store_stream(tmp_path, "a-1.0-py3-none-any.whl", io.BytesIO(data), "0" * 64)
    assert [p for p in (tmp_path / "wheels").rglob("*") if p.is_file()] == []
    path, digests = store_stream(tmp_path, "a-1.0-py3-none-any.whl", io.BytesIO(data),
                                 hashlib.sha256(data).hexdigest())
    assert path == wheel_path(tmp_path, blake3(data).hexdigest(), "a-1.0-py3-none-any.whl")
    assert path.read_bytes() == data
    assert digest_file(path) == digests


def test_tampered_index_fails_the_lock_and_caches_nothing(make_project: Any, index: FixtureIndex,
                                                          cache_env: dict[str, str]) -> None:
    name = "liarfix-1.0-py3-none-any.whl"
    index.overrides[name] = index.files[name][:-8] + b"tampered"  # same size: the hash, not the size cap, refuses it
    try:
        root = make_project()
        proc = run_cli("lock", str(root), env=cache_env)
    finally:
        index.overrides.clear()
    assert proc.returncode == 2
    assert f"{name}: the index promised sha256 {hashlib.sha256(index.files[name]).hexdigest()}" in proc.stderr
    cached = [p.name for p in Path(cache_env["MOCHI_CACHE_DIR"], "wheels").rglob("*.whl")]
    assert name not in cached
    assert not (root / "mochi.lock").exists()


def _evil(tmp_path: Path, info: zipfile.ZipInfo) -> Path:
    return build_wheel(tmp_path, "evil", "1.0", {"evil/__init__.py": b"", "evil/py.typed": b""},
                       extra_members=[info])


@pytest.mark.parametrize(("member", "mode", "message"), [
    ("../outside.py", 0o644, "escapes the wheel root"),
    ("evil/../../outside.py", 0o644, "escapes the wheel root"),
    ("/etc/evil.py", 0o644, "has an absolute path"),
    ("evil/link.py", stat.S_IFLNK | 0o777, "is a symlink"),
])
def test_unsafe_members_are_refused(tmp_path: Path, member: str, mode: int, message: str) -> None:
    info = zipfile.ZipInfo(member)
    info.external_attr = mode << 16
    wheel = _evil(tmp_path, info)
    with pytest.raises(UnsafeArchive, match=message):
        extract_stubs(wheel, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "outside.py").exists()


def test_oversized_member_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = build_wheel(tmp_path, "big", "1.0", {"big/__init__.py": b"x" * 2048})
    monkeypatch.setattr(wheel_mod, "MAX_MEMBER_BYTES", 1024)
    with pytest.raises(UnsafeArchive, match="over the 1024 byte cap"):
        read_metadata(wheel)


def test_stub_extraction_keeps_pyi_over_py_and_hashes_the_set(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "mixed", "1.0", {
        "mixed/__init__.py": b"def f(x): return x\n", "mixed/__init__.pyi": b"def f(x: int) -> int: ...\n",
        "mixed/py.typed": b"", "untyped_extra/__init__.py": b""})
    stubs = extract_stubs(wheel, tmp_path / "stubs")
    assert stubs.provenance == "py.typed"
    assert stubs.modules == ["mixed", "untyped_extra"]
    assert stubs.files == ["mixed/__init__.pyi"]
    again = extract_stubs(wheel, tmp_path / "stubs2")
    assert again.sha256 == stubs.sha256


def test_a_corrupt_cached_blob_is_fetched_again(make_project: Any, index: FixtureIndex, tmp_path: Path) -> None:
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    first = make_project(name="first")
    assert run_cli("lock", str(first), env=env).returncode == 0
    (blob,) = (tmp_path / "cache" / "wheels").glob("*/liarfix-1.0-py3-none-any.whl")
    blob.write_bytes(b"garbage")
    second = make_project(name="second")
    proc = run_cli("lock", str(second), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert blob.read_bytes() == index.files["liarfix-1.0-py3-none-any.whl"]
    assert run_cli("check", str(second), env=env).returncode == 0


def test_advertised_metadata_must_match_the_wheel(tmp_path: Path, wheel_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import fixture_index

    from tasks.fetch.download import fetch_from_index
    idx = fixture_index(sorted(wheel_dir.glob("liarfix-1.0-*.whl")))
    monkeypatch.setattr(FixtureIndex, "metadata", lambda self, f: b"Metadata-Version: 2.1\nName: other\n")
    accepted = list(tags.sys_tags())
    try:
        with pytest.raises(HashMismatch, match=r"PEP 658"):
            fetch_from_index("liarfix", "1.0", [idx.url], accepted, "3.11.0", tmp_path / "cache")
    finally:
        idx.stop()


def test_requires_python_and_yanked_filter_the_choice() -> None:
    accepted = list(tags.compatible_tags((3, 11), "cp311", platforms=["linux_x86_64"]))
    old = IndexFile(filename="p-1.0-py3-none-any.whl", url="u", sha256="a" * 64, requires_python="<3.9",
                    yanked=False, size=1)
    with pytest.raises(FetchError, match=r"no wheel of p 1\.0 fits Python 3\.11\.4"):
        select_wheel([old], "p", "1.0", accepted, "3.11.4")
    yanked = IndexFile(filename="p-1.0-py3-none-any.whl", url="u", sha256="a" * 64, requires_python="",
                       yanked=True, size=1)
    with pytest.raises(FetchError, match=r"\(yanked\)"):
        select_wheel([yanked], "p", "1.0", accepted, "3.11.4")
    assert select_wheel([yanked], "p", "1.0", accepted, "3.11.4", allow_yanked=True) is yanked
