"""The content-addressed cache shared by every project of a user (DESIGN §3).

Layout: `wheels/<blake3-hex>/<filename>` and `wrappers/<key>/<files>`. Every write goes to a
temporary file in the destination directory and is renamed into place with `os.replace`, so a
reader never sees half an entry; a per-entry file lock keeps concurrent processes from doing the
same work twice. Paths are derived from digests, never taken from input.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from .errors import BridgeError, HashMismatch

__all__ = [
    "Digests",
    "atomic_write",
    "cache_root",
    "digest_file",
    "file_lock",
    "find_by_name",
    "store_stream",
    "wheel_path",
]

_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Digests:
    sha256: str
    blake3: str
    size: int


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """`$MOCHI_CACHE_DIR`, else `$XDG_CACHE_HOME/mochi/python-deps`, else `~/.cache/mochi/python-deps`."""
    env = os.environ if environ is None else environ
    if env.get("MOCHI_CACHE_DIR"):
        return Path(env["MOCHI_CACHE_DIR"]).resolve()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return (base / "mochi" / "python-deps").resolve()


def wheel_path(root: Path, b3: str, filename: str) -> Path:
    if not _HEX64.match(b3) or "/" in filename or filename.startswith("."):
        raise BridgeError(f"refusing cache path for digest {b3!r} and file {filename!r}")
    return root / "wheels" / b3 / filename


def find_by_name(root: Path, filename: str) -> Path | None:
    """A cached wheel called *filename* whose bytes still hash to the BLAKE3 its directory is named after."""
    if "/" in filename or filename.startswith("."):
        return None
    for path in sorted((root / "wheels").glob(f"*/{filename}")):
        if _HEX64.match(path.parent.name) and digest_file(path).blake3 == path.parent.name:
            return path
    return None


def digest_file(path: Path) -> Digests:
    """SHA-256 and BLAKE3 of a file in one pass."""
    sha, b3, size = hashlib.sha256(), blake3(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
            b3.update(chunk)
            size += len(chunk)
    return Digests(sha.hexdigest(), b3.hexdigest(), size)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on *path* (created if missing), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes) -> None:
    """Write *data* to *path* so that readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_stream(root: Path, filename: str, stream: BinaryIO, expected_sha256: str) -> tuple[Path, Digests]:
    """Copy *stream* into the cache under its BLAKE3, refusing it unless its SHA-256 is *expected_sha256*.

    :raises HashMismatch: the bytes are not the ones the index promised; nothing is cached.
    """
    staging = root / "wheels" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, prefix=f"{filename}.", suffix=".part")
    try:
        sha, b3, size = hashlib.sha256(), blake3(), 0
        with os.fdopen(fd, "wb") as fh:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
                b3.update(chunk)
                fh.write(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        digests = Digests(sha.hexdigest(), b3.hexdigest(), size)
        if digests.sha256 != expected_sha256:
            raise HashMismatch(
                f"{filename}: the index promised sha256 {expected_sha256} but the download has {digests.sha256}",
                "the index or a proxy served different bytes; nothing was cached. Retry, or check the index")
        dest = wheel_path(root, digests.blake3, filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).replace(dest)
        return dest, digests
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
