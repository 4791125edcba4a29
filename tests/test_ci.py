"""CI at fleet scale (issue 18): compiles shared through sccache with a Redis backend, `lock --frozen`,
`--offline` in a network namespace with no interfaces, and `[python].compiler-cache`.

The Redis server is Debian's `redis-server`, started here on a free 127.0.0.1 port (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MANIFEST, PROGRAM
from helpers import FixtureIndex, tree_files

MOCHI_PY = Path(sys.executable).parent / "mochi-py"


def mochi_py(*args: str, cwd: Path, env: dict[str, str], offline_namespace: bool = False
             ) -> subprocess.CompletedProcess[str]:
    cmd = [str(MOCHI_PY), *args]
    if offline_namespace:
        cmd = ["unshare", "-rn", *cmd]  # a new network namespace with no interface up: not even 127.0.0.1
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is missing: .ci/run installs it (apt-get install redis-server)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    work = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def _clone(base: Path, name: str, files: dict[str, bytes]) -> Path:
    root = base / name / "proj"
    root.mkdir(parents=True)
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return root


def _machine(base: Path, name: str, redis: str) -> dict[str, str]:
    """A CI machine of its own: its own caches, sharing only the Redis-backed compiler cache."""
    return {"MOCHI_CACHE_DIR": str(base / name / "cache"), "SCCACHE_DIR": str(base / name / "sccache"),
            "SCCACHE_REDIS_ENDPOINT": redis}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, index: FixtureIndex, redis_url: str) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("fleet")
    first = _clone(base, "one", {"mochi.toml": MANIFEST.format(url=index.url).encode(), "app.mochi": PROGRAM.encode()})
    env1 = _machine(base, "one", redis_url)
    lock1 = mochi_py("lock", cwd=first, env=env1)
    committed = {n: (first / n).read_bytes() for n in ("mochi.toml", "mochi.lock", "app.mochi")}
    second = _clone(base, "two", committed)
    env2 = _machine(base, "two", redis_url)
    lock2 = mochi_py("lock", "--frozen", cwd=second, env=env2)
    return {"base": base, "first": first, "second": second, "env1": env1, "env2": env2, "lock1": lock1,
            "lock2": lock2, "committed": committed}


def test_second_machine_compiles_from_the_remote_cache_with_identical_wrappers(fleet: dict[str, Any]) -> None:
    lock1, lock2 = fleet["lock1"], fleet["lock2"]
    assert lock1.returncode == 0, lock1.stdout + lock1.stderr
    assert lock2.returncode == 0, lock2.stdout + lock2.stderr
    stats1 = json.loads((fleet["first"] / ".mochi" / "compiler-cache.json").read_text())
    stats2 = json.loads((fleet["second"] / ".mochi" / "compiler-cache.json").read_text())
    assert stats1.pop("seconds") > 0 and stats2.pop("seconds") > 0
    # auto picked sccache because SCCACHE_REDIS_ENDPOINT names a remote backend
    assert stats1 == {"tool": "sccache", "hits": 0, "misses": 6}  # the runtime library (4 files) once, 2 tables
    assert stats2 == {"tool": "sccache", "hits": 6, "misses": 0}
    assert "wrappers: 2 compiled, 0 from the cache; sccache: 6 hit(s), 0 miss(es); " in lock2.stdout
    for dist in ("typedfix", "liarfix"):
        so = f"python_wrap/{dist}/_mochi_{dist}.abi3.so"
        assert (fleet["first"] / so).read_bytes() == (fleet["second"] / so).read_bytes(), dist
    keys = [json.loads((root / ".mochi" / "compile.json").read_text()) for root in (fleet["first"], fleet["second"])]
    assert {d: r["key"] for d, r in keys[0].items()} == {d: r["key"] for d, r in keys[1].items()}  # key unchanged
    assert (fleet["second"] / "mochi.lock").read_bytes() == fleet["committed"]["mochi.lock"]


def test_frozen_refuses_a_manifest_that_disagrees_naming_the_entry(fleet: dict[str, Any]) -> None:
    root = _clone(fleet["base"], "edited", fleet["committed"])
    manifest = root / "mochi.toml"
    manifest.write_text(manifest.read_text().replace('liarfix = "==1.0"', 'liarfix = ">=1.0"'))
    before = tree_files(root)
    proc = mochi_py("lock", "--frozen", cwd=root, env=fleet["env2"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{manifest}:3:1: liarfix: mochi.toml asks for liarfix>=1.0, mochi.lock was made for liarfix==1.0" \
        in proc.stderr
    assert tree_files(root) == before  # nothing ran, nothing written
    sync = mochi_py("sync", cwd=root, env=fleet["env2"])
    assert sync.returncode == 1 and "liarfix: mochi.toml asks for liarfix>=1.0" in sync.stderr


def test_frozen_never_rewrites_the_lock(fleet: dict[str, Any]) -> None:
    root = _clone(fleet["base"], "tampered", fleet["committed"])
    lock = root / "mochi.lock"
    text = fleet["committed"]["mochi.lock"].decode()
    start = text.index('wrapper-sha256 = "', text.index('name = "typedfix"')) + len('wrapper-sha256 = "')
    lock.write_text(text[:start] + "0" * 64 + text[start + 64:])
    tampered = lock.read_bytes()
    proc = mochi_py("lock", "--frozen", cwd=root, env=fleet["env2"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"typedfix: wrapper-sha256: locked {'0' * 64}, built " in proc.stderr
    assert lock.read_bytes() == tampered


def test_offline_succeeds_from_warm_caches_and_fails_clearly_from_cold_ones(fleet: dict[str, Any]) -> None:
    warm = _clone(fleet["base"], "warm", fleet["committed"])
    proc = mochi_py("lock", "--offline", cwd=warm, env=fleet["env1"], offline_namespace=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (warm / "mochi.lock").read_bytes() == fleet["committed"]["mochi.lock"]
    so = "python_wrap/typedfix/_mochi_typedfix.abi3.so"
    assert (warm / so).read_bytes() == (fleet["first"] / so).read_bytes()
    cold = _clone(fleet["base"], "cold", fleet["committed"])
    env = {**fleet["env1"], "MOCHI_CACHE_DIR": str(fleet["base"] / "cold" / "cache")}
    failed = mochi_py("lock", "--offline", cwd=cold, env=env, offline_namespace=True)
    assert failed.returncode == 2
    expected = (r"^error: fetching (\w+): offline: \1 1\.0 \(\1-1\.0-py3-none-any\.whl\) is not in the cache "
                + re.escape(str(fleet["base"] / "cold" / "cache")) + "$")
    assert re.search(expected, failed.stderr, re.MULTILINE), failed.stderr
    assert "restore MOCHI_CACHE_DIR" in failed.stderr and "Traceback" not in failed.stderr
    assert not (cold / "python_wrap" / "typedfix").exists()


def test_compiler_cache_setting() -> None:
    from tasks.build.launcher import choose_launcher
    from tasks.errors import ManifestError
    from tasks.resolve.manifest import parse_manifest
    assert choose_launcher("auto", {}) == "none"
    assert choose_launcher("auto", {"SCCACHE_DIR": "/tmp/x"}) == "none"  # a local disk cache: not worth a launcher
    assert choose_launcher("auto", {"SCCACHE_BUCKET": "ci-cache"}) == "sccache"
    assert choose_launcher("auto", {"SCCACHE_GHA_ENABLED": "false"}) == "none"
    assert choose_launcher("ccache", {"SCCACHE_BUCKET": "b"}) == "ccache"
    assert parse_manifest('[python]\ncompiler-cache = "none"\n', Path("mochi.toml")).python.compiler_cache == "none"
    with pytest.raises(ManifestError, match=r"mochi.toml:2:18: 'compiler-cache' must be one of 'auto', 'sccache'"):
        parse_manifest('[python]\ncompiler-cache = "distcc"\n', Path("mochi.toml"))
