"""Caps on what untrusted input may cost: download size and time, unpacked wheel size, stub and
generated C size (issue 14: an index, a wheel or a stub can be hostile).

Each cap has a default sized for real packages and an environment variable that overrides it
(documented in the README); a value that is not a positive number is bad input (exit 2). The caps
that shape a stage's output (stub and generated C size) are part of that stage's cache key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import BridgeError

__all__ = ["LIMITS", "Limit", "limit"]


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
