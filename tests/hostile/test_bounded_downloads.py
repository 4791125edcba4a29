"""Issue 14, item 5: downloads stop at the advertised size (PEP 700) or a cap, and within a time limit; a
wheel that unpacks past a total cap is refused; an oversized stub document or generated C wrapper is a
clear skip. The caps are the environment variables of `tasks.limits`, set small so the tests are fast."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import build_wheel, fixture_index, package_files, run_cli, write_project
from packaging import tags

from hostile.a_server import AServer, endless, json_page, trickle
from tasks.context import limit
from tasks.errors import BridgeError, FetchError, UnsafeArchive
from tasks.fetch.download import fetch_from_index
from tasks.fetch.wheel import read_metadata

_NAME = "boundfix-1.0-py3-none-any.whl"


@pytest.fixture
def a_wheel(tmp_path: Path) -> bytes:
    return build_wheel(tmp_path / "w", "boundfix", "1.0", {"boundfix/__init__.py": b"X = 1\n"}).read_bytes()


@pytest.fixture
def a_hostile() -> Iterator[AServer]:
    server = AServer().start()
    yield server
    server.stop()


def _listing(data: bytes, size: bool = True) -> list[dict[str, object]]:
    entry: dict[str, object] = {"filename": _NAME, "url": f"../../files/{_NAME}",
                                "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
    if size:
        entry["size"] = len(data)
    return [entry]


def _fetch(server: AServer, cache: Path) -> None:
    fetch_from_index("boundfix", "1.0", [f"{server.base}/simple/"], list(tags.sys_tags()), "3.11.0", cache)


def _nothing_staged(cache: Path) -> None:
    assert [p for p in (cache / "wheels").rglob("*") if p.is_file()] == []


def test_a_download_stops_at_the_advertised_size(a_hostile: AServer, a_wheel: bytes, tmp_path: Path) -> None:
    a_hostile.routes["/simple/boundfix/"] = json_page(_listing(a_wheel))
    a_hostile.routes[f"/files/{_NAME}"] = endless(a_wheel)  # the real bytes, then zeros without end
    with pytest.raises(FetchError, match=rf"more than the {len(a_wheel)} bytes the index advertised .*PEP 700"):
        _fetch(a_hostile, tmp_path / "cache")
    _nothing_staged(tmp_path / "cache")


def test_without_an_advertised_size_the_cap_applies(a_hostile: AServer, a_wheel: bytes, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCHI_MAX_DOWNLOAD_BYTES", "100000")
    a_hostile.routes["/simple/boundfix/"] = json_page(_listing(a_wheel, size=False))
    a_hostile.routes[f"/files/{_NAME}"] = endless(a_wheel)
    with pytest.raises(FetchError, match=r"more than the 100000 bytes allowed .*\(MOCHI_MAX_DOWNLOAD_BYTES\)"):
        _fetch(a_hostile, tmp_path / "cache")
    _nothing_staged(tmp_path / "cache")


def test_a_trickling_server_is_cut_off_at_the_time_limit(a_hostile: AServer, a_wheel: bytes, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCHI_DOWNLOAD_TIMEOUT", "2")
    a_hostile.routes["/simple/boundfix/"] = json_page(_listing(a_wheel))
    a_hostile.routes[f"/files/{_NAME}"] = trickle(a_wheel, every=0.25)  # ~1,000 bytes: minutes, each read in time
    with pytest.raises(FetchError, match=r"did not finish within 2 s"):
        _fetch(a_hostile, tmp_path / "cache")
    _nothing_staged(tmp_path / "cache")


def test_a_bad_limit_value_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCHI_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(BridgeError, match=r"MOCHI_DOWNLOAD_TIMEOUT='soon' is not a positive number"):
        limit("download-seconds")


def test_a_wheel_unpacking_past_the_total_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = {f"bombfix/part{i}.py": b"0" * 400_000 for i in range(5)}  # five members, 2 MB in all
    wheel = build_wheel(tmp_path / "w", "bombfix", "1.0", {"bombfix/__init__.py": b"", **members})
    idx = fixture_index([wheel])
    try:
        root = write_project(tmp_path / "proj", 'bombfix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache"),
                                               "MOCHI_MAX_WHEEL_UNPACKED_BYTES": "1000000"})
    finally:
        idx.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"{wheel.name}: its members unpack to more than 1000000 bytes" in out
    assert "MOCHI_MAX_WHEEL_UNPACKED_BYTES" in out
    assert not (root / "mochi.lock").exists()
    read_metadata(wheel)  # the default cap lets it through
    monkeypatch.setenv("MOCHI_MAX_WHEEL_UNPACKED_BYTES", "1000000")
    with pytest.raises(UnsafeArchive, match="unpack to more than"):
        read_metadata(wheel)


def test_an_oversized_stub_document_skips_its_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.stubs.ladder import extract_stubs
    from tasks.surface.items import build_surface
    huge = "".join(f"def f{i}(x: int) -> int: ...\n" for i in range(5000)).encode()  # ~150 kB
    wheel = build_wheel(tmp_path / "w", "stubcapfix", "1.0", {
        "okmod/__init__.py": b"def ok(x: int) -> int:\n    return x\n", "okmod/py.typed": b"",
        "hugemod/__init__.pyi": huge, "hugemod/py.typed": b""})
    monkeypatch.setenv("MOCHI_MAX_STUB_BYTES", "100000")
    stubs = extract_stubs(wheel, tmp_path / "stubs")
    assert stubs.files == ["okmod/__init__.py"]
    assert stubs.problems["hugemod"][0] == "StubTooLarge"
    assert "hugemod/__init__.pyi is" in stubs.problems["hugemod"][1] and "MOCHI_MAX_STUB_BYTES" in \
        stubs.problems["hugemod"][1]
    surface = build_surface(tmp_path / "stubs", stubs.modules, "stubcapfix", "1.0", stubs.provenance,
                            problems=stubs.problems)
    assert {f.item for f in surface.functions if f.item} == {"okmod.ok"}
    assert [(s.item, s.reason) for s in surface.skipped] == [("hugemod", "StubTooLarge")]


def test_an_oversized_c_wrapper_is_a_skip_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.codegen.render import render_all
    from tasks.stubs.ladder import extract_stubs
    from tasks.surface.items import build_surface
    wheel = build_wheel(tmp_path / "w", "typedfix", "1.0", package_files("typedfix"))
    stubs = extract_stubs(wheel, tmp_path / "stubs")
    surface = build_surface(tmp_path / "stubs", stubs.modules, "typedfix", "1.0", stubs.provenance)
    assert surface.functions
    full = render_all(surface, (3, 11), False)
    monkeypatch.setenv("MOCHI_MAX_WRAPPER_C_BYTES", str(len(full.c_source.encode()) - 1))
    capped = render_all(surface, (3, 11), False)
    assert "extern python fun" not in capped.shim
    lines = [line.split("\t") for line in capped.skipped.splitlines() if "\tWrapperTooLarge\t" in line]
    assert sorted(line[0] for line in lines) == sorted({f.item for f in surface.functions if f.item and not f.foreign})
    assert "over the" in lines[0][2] and "MOCHI_MAX_WRAPPER_C_BYTES" in lines[0][2]
    assert len(capped.c_source.encode()) < len(full.c_source.encode())
