"""The environment facts a lock is parameterised by, as frozen records (no doit, no stage imports).

They are detected once, at the edge (:func:`tasks.detect.detect_context`), and handed to every task
as a :class:`Context`, which pickles, so doit's worker processes receive it as plain data.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import BridgeError

__all__ = ["LIMITS", "Context", "Limit", "TargetPython", "limit", "offline_requested"]


def offline_requested(environ: Mapping[str, str]) -> bool:
    """`MOCHI_OFFLINE` set to anything but empty, 0, false, off or no: the same as `--offline`."""
    return environ.get("MOCHI_OFFLINE", "").strip().lower() not in ("", "0", "false", "off", "no")


def _keyed(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    plain = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return plain if plain == url else f"{plain}#credentials-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPython:
    executable: str
    version: tuple[int, int, int]
    implementation: str
    gil_disabled: bool
    env: dict[str, str]
    """PEP 508 marker environment of the interpreter."""

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    root: str
    interpreter: str
    python_version: tuple[int, int, int]
    gil_disabled: bool
    abi_floor: tuple[int, int]
    requires_python: str
    marker_env: dict[str, str]
    default_index: str
    """The index used when the manifest names none (the environment's, else pip's default)."""
    indexes: tuple[str, ...]
    """Searchable (primary, then supplemental) index URLs, in priority order."""
    cache: str
    build_dir: str
    strict_returns: bool
    stubgen_fallback: str
    stubgen_inspect: bool
    stubgen_aggressive: bool = False
    capabilities_declared: tuple[str, ...] | None
    free_threaded: bool
    any_mode: str = "handle"
    monomorphise: tuple[tuple[str, str], ...] = ()
    async_mode: str = "per-call"
    release: tuple[str, ...] = ()
    """Packages whose sticky pins `update` releases (`*` for all)."""
    elevation: str = "ignore"
    """`refuse` or `allow` a capability elevation against the existing lock (`update`); `ignore` otherwise."""
    require_attestations: tuple[str, ...] = ()
    """`[python].require-attestations`: distributions whose wheel must carry verified PEP 740 provenance (`*`: all)."""
    trusted_publishers: tuple[tuple[str, str], ...] = ()
    """`[python].trusted-publishers` as (distribution, publisher) pairs."""

    def attestation_policy(self, name: str) -> tuple[bool, str]:
        """(required, trusted publisher or "") for distribution *name*."""
        required = "*" in self.require_attestations or name in self.require_attestations
        return required, dict(self.trusted_publishers).get(name, "")
    frozen: bool = False
    """`lock --frozen`: pins come from mochi.lock (no resolution), files are fetched by their locked hashes."""
    offline: bool = False
    """`--offline` / `MOCHI_OFFLINE=1`: no network at all; everything comes from the caches."""
    compiler_cache: str = "none"
    """The compiler launcher `[python].compiler-cache` settled on (`sccache`, `ccache` or `none`)."""
    verbosity: int = 0
    """-1 with `-q`, 1 with `-v`: how much the actions print (not an input of any task)."""

    def as_args(self) -> dict[str, Any]:
        """The facts as plain JSON-able data (for doit's `config_changed` and the no-op stamp)."""
        out = asdict(self)
        del out["verbosity"]  # presentation only: `lock -q` after `lock` is still a no-op
        # written to `.mochi/noop.json`: an index URL's credentials only as a digest (a changed password still counts)
        out["indexes"] = [_keyed(u) for u in self.indexes]
        out["default_index"] = _keyed(self.default_index)
        return out

    @property
    def target(self) -> TargetPython:
        return TargetPython(executable=self.interpreter, version=self.python_version, implementation="cpython",
                            gil_disabled=self.gil_disabled, env=self.marker_env)


# --- limits --------------------------------------------------------------------------------------
# Caps on what untrusted input may cost (issue 14: an index, a wheel or a stub can be hostile): download
# size and time, unpacked wheel size, stub and generated C size. Each has a default sized for real
# packages and an environment variable that overrides it (README); a value that is not a positive
# number is bad input (exit 2). The caps that shape a stage's output are part of its cache key.

@dataclass(frozen=True, slots=True)
class Limit:
    env: str
    default: float
    what: str


LIMITS = {
    "download-bytes": Limit("MOCHI_MAX_DOWNLOAD_BYTES", 4 << 30,
                            "bytes one download may bring when the index advertises no size"),
    "download-seconds": Limit("MOCHI_DOWNLOAD_TIMEOUT", 900.0, "seconds one download (page or file) may take"),
    "wheel-unpacked-bytes": Limit("MOCHI_MAX_WHEEL_UNPACKED_BYTES", 1 << 30,
                                  "uncompressed bytes of all members of one wheel"),
    "stub-bytes": Limit("MOCHI_MAX_STUB_BYTES", 4 << 20, "bytes of one stub document"),
    "wrapper-c-bytes": Limit("MOCHI_MAX_WRAPPER_C_BYTES", 32 << 20, "bytes of one generated C wrapper"),
}


def limit(key: str, environ: dict[str, str] | None = None) -> float:
    """The cap *key* of :data:`LIMITS`: its environment variable when set, else its default."""
    spec = LIMITS[key]
    raw = (os.environ if environ is None else environ).get(spec.env, "").strip()
    if not raw:
        return spec.default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise BridgeError(f"{spec.env}={raw!r} is not a positive number ({spec.what})",
                          f"unset {spec.env} for the default ({spec.default:g}), or set a positive number")
    return value
