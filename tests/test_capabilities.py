"""Capability audit: the static scan with evidence, the db schema, declared capabilities, `update`
elevation, capability drift in `check`, and the free-threaded gate."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import build_wheel, fixture_index, run_cli, write_project

from tasks.audit.capabilities import apply_db, load_db, parse_db, scan_wheel
from tasks.errors import ManifestError

CASES = {
    "capnet": ({"capnet/__init__.py": b"import socket\n\ndef ping() -> int:\n    return 1\n"},
               "net", "capnet/__init__.py:1: import socket"),
    "capproc": ({"capproc/__init__.py": b"import subprocess as sp\n\ndef run() -> int:\n"
                                        b"    return sp.call(['true'])\n"},
                "subprocess", "capproc/__init__.py:4: call subprocess.call()"),
    "capctypes": ({"capctypes/__init__.py": b"from ctypes import CDLL\n"}, "ctypes",
                  "capctypes/__init__.py:1: import ctypes"),
    "capnative": ({"capnative/__init__.py": b"", "capnative/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
                  "cextension", "capnative/_speed.cpython-311-x86_64-linux-gnu.so:0: native file"),
    "cappatch": ({"cappatch/__init__.py": b"import json\n\njson.dumps = lambda *a, **k: '{}'\n"},
                 "monkey-patch", "cappatch/__init__.py:3: assignment to json.dumps at module level"),
    "capfs": ({"capfs/__init__.py": b"def save(p: str) -> None:\n    with open(p, 'w') as fh:\n"
                                    b"        fh.write('x')\n"}, "fs", "capfs/__init__.py:2: call open() for writing"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_capability_is_found_with_evidence(tmp_path: Path, name: str) -> None:
    files, cap, evidence = CASES[name]
    findings = scan_wheel(build_wheel(tmp_path, name, "1.0", files))
    assert {f.capability for f in findings} == {cap}
    assert evidence in [str(f) for f in findings]


def test_a_clean_package_has_no_capabilities(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "clean", "1.0", {
        "clean/__init__.py": b"import json\n\ndef f(p: str) -> str:\n    with open(p) as fh:\n"
                             b"        return json.dumps(fh.read())\n"})
    assert scan_wheel(wheel) == []


def test_the_database_adjusts_and_validates(tmp_path: Path) -> None:
    db = parse_db('[[package]]\nname = "Capnet"\nversions = ">=1,<2"\nremove = ["net"]\nadd = ["fs"]\n'
                  'reason = "reviewed"\nfree-threaded = "compatible"\n', tmp_path / "db.toml")
    wheel = build_wheel(tmp_path, "capnet", "1.0", CASES["capnet"][0])
    assert apply_db("capnet", "1.0", scan_wheel(wheel), db) == (["fs"], "compatible")
    assert apply_db("capnet", "2.0", scan_wheel(wheel), db) == (["net"], "unknown")
    for text, line, message in (
        ('[[package]]\nname = "a"\nversions = ">=1"\n\n[[package]]\nname = "b"\nversions = ">=1"\nadd = ["net"]\n',
         5, "add/remove needs a 'reason'"),
        ('[[package]]\nname = "a"\nversions = "=>1"\n', 1, "invalid versions '=>1'"),
        ('[[package]]\nname = "a"\nversions = ">=1"\nadd = ["network"]\nreason = "x"\n', 1,
         "unknown capabilities ['network']"),
        ('[[package]]\nname = "a"\nversions = ">=1"\nfree-threaded = "maybe"\n', 1, "free-threaded 'maybe'"),
        ('[[package]]\nname = "a"\nversions = ">=1"\ncolour = "red"\n', 1, "unknown key(s) ['colour']"),
    ):
        with pytest.raises(ManifestError, match=rf"db.toml:{line}:1: .*{re.escape(message)}"):
            parse_db(text, tmp_path / "db.toml")


def test_the_shipped_database_is_valid() -> None:
    names = {e.name for e in load_db()}
    assert {"inflection", "humanize", "requests", "numpy"} <= names


def _project(tmp_path: Path, url: str, deps: str, python: str = "") -> Path:
    return write_project(tmp_path / "proj", deps, url, python)


def test_lock_enforces_declared_capabilities_with_evidence(tmp_path: Path) -> None:
    idx = fixture_index([build_wheel(tmp_path / "w", "capnet", "1.0", CASES["capnet"][0])])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = _project(tmp_path, idx.url, 'capnet = "1.0"', "[python.capabilities]\nfs = true\n")
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 2
        assert "capnet: net (capnet/__init__.py:1: import socket)" in proc.stdout + proc.stderr
        assert not (root / "mochi.lock").exists()
        manifest = root / "mochi.toml"
        manifest.write_text(manifest.read_text() + "net = true\n")
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 0, proc.stdout
        entry = tomllib.loads((root / "mochi.lock").read_text())["python-package"][0]
        assert entry["capabilities"] == ["net"]
        assert entry["capabilities-declared"] == ["fs", "net"]
    finally:
        idx.stop()


def test_update_refuses_an_elevation_unless_allowed(tmp_path: Path) -> None:
    clean = build_wheel(tmp_path / "w", "capv", "1.0", {"capv/__init__.py": b"def f() -> int:\n    return 1\n"})
    noisy = build_wheel(tmp_path / "w", "capv", "2.0", {"capv/__init__.py": b"import socket\n"})
    idx = fixture_index([clean])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = _project(tmp_path, idx.url, 'capv = ">=1"')
        assert run_cli("lock", str(root), env=env).returncode == 0
        before = (root / "mochi.lock").read_bytes()
        idx.add(noisy)
        refused = run_cli("update", "capv", "--project", str(root), env=env)
        assert refused.returncode == 2
        assert "capv: version 1.0 -> 2.0" in refused.stdout
        assert "capv: gains net" in refused.stdout
        assert "the update elevates capabilities: capv gains net" in refused.stdout + refused.stderr
        assert (root / "mochi.lock").read_bytes() == before
        allowed = run_cli("update", "--project", str(root), "--allow-capability-elevation", env=env)
        assert allowed.returncode == 0, allowed.stdout
        entry = tomllib.loads((root / "mochi.lock").read_text())["python-package"][0]
        assert (entry["version"], entry["capabilities"]) == ("2.0", ["net"])
    finally:
        idx.stop()


def test_check_reports_capability_drift(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    lock = root / "mochi.lock"
    lock.write_text(lock.read_text().replace('name = "liarfix"\n', 'name = "liarfix"\n', 1).replace(
        "capabilities = []", 'capabilities = ["net"]', 1))
    proc = run_cli("check", str(root), env=locked["env"])
    assert proc.returncode == 1
    assert ": capabilities: locked net, actual (none)" in proc.stdout


def test_free_threaded_gate(tmp_path: Path) -> None:
    files = {"ftfix/__init__.py": b"", "ftfix/_core.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"}
    gil = build_wheel(tmp_path / "w", "ftfix", "1.0", files, tag="cp311-cp311-linux_x86_64")
    ft = build_wheel(tmp_path / "w", "ftfix", "1.0", files, tag="cp311-cp311t-linux_x86_64")
    idx = fixture_index([gil])
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        root = _project(tmp_path, idx.url, 'ftfix = "1.0"', "free-threaded = true\n")
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 2
        assert "ftfix 1.0: native code and no free-threaded wheel for the target" in proc.stdout + proc.stderr
        idx.add(ft)
        proc = run_cli("lock", str(root), env=env)
        assert proc.returncode == 0, proc.stdout
    finally:
        idx.stop()


def test_the_scan_lists_imports_however_deeply_nested(tmp_path: Path) -> None:
    from tasks.audit.capabilities import scan_wheel_imports
    wheel = build_wheel(tmp_path, "nested", "1.0", {
        "nested/__init__.py": b"import json\n\nasync def f() -> None:\n    import trio.lowlevel\n"})
    assert scan_wheel_imports(wheel) == ([], {"json", "trio"})


def test_trio_alone_is_incompatible_but_next_to_anyio_or_sniffio_it_is_not() -> None:
    from tasks.audit.capabilities import needs_trio
    assert needs_trio({"trio", "os"})
    assert not needs_trio({"trio", "anyio"})  # anyio-based code picks the running loop (R12)
    assert not needs_trio({"trio", "sniffio"})
    assert not needs_trio({"asyncio"})
