"""The content-addressed cache shared by every project of a user (DESIGN §3).

Layout: `wheels/<blake3-hex>/<filename>`, `wrappers/<key>/<files>`, and `stages/<stage>/<key>`: one
file per deterministic stage output (stubs, scan, surface, generated sources, the compiled runtime),
keyed by what determines it (:func:`stage_key`). Every write goes to a temporary file in the
destination directory and is renamed into place with `os.replace`, so a reader never sees half an
entry; a per-entry file lock keeps concurrent processes from doing the same work twice. Paths are
derived from digests, never taken from input.

A stage entry carries the BLAKE3 of everything it holds; :func:`stage_lookup` re-hashes it on every
use and treats a mismatch (a flipped bit, a truncated file, an edit) as a miss: the caller rebuilds
and :func:`stage_store` replaces the entry. Nothing read from a corrupt entry is ever returned.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from blake3 import blake3

from . import __version__
from .errors import BridgeError, HashMismatch

__all__ = [
    "Digests",
    "StageEntry",
    "atomic_write",
    "cache_root",
    "digest_file",
    "file_lock",
    "file_stat",
    "find_by_name",
    "record_digests",
    "recorded_digests",
    "stage_key",
    "stage_lookup",
    "stage_store",
    "store_stream",
    "user_mode",
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


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    # ctime moves on every write, rename-over or chmod, and no user call can set it back
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _digest_memo(root: Path, path: Path) -> Path:
    return root / "digests" / f"{hashlib.sha256(str(path.resolve()).encode()).hexdigest()}.json"


def recorded_digests(root: Path, path: Path) -> Digests:
    """:func:`digest_file` of *path*, reusing the digests :func:`record_digests` recorded for it under
    the cache *root* while the file has not changed since (same inode, size, mtime and ctime); a
    changed or unrecorded file is hashed again. Nothing is written.

    The record guards against files that change, not against someone who can write to the cache.
    """
    try:
        data = json.loads(_digest_memo(root, path).read_text(encoding="utf-8"))
        if data["path"] == str(path.resolve()) and data["stat"] == _stat_key(path):
            return Digests(str(data["sha256"]), str(data["blake3"]), int(data["size"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return digest_file(path)


def record_digests(root: Path, path: Path, digests: Digests, stat: list[int] | None = None) -> None:
    """Record the digests just computed for *path* (from its bytes as they were at *stat*, taken
    before they were read; now when None), unless the file has changed since."""
    now = _stat_key(path)
    if stat is None or stat == now:
        memo = _digest_memo(root, path)
        record = json.dumps({"path": str(path.resolve()), "stat": now, "sha256": digests.sha256,
                             "blake3": digests.blake3, "size": digests.size}).encode()
        try:
            if memo.read_bytes() == record:
                return  # recorded already: no new file for nothing (file creation is the slow part of a lock)
        except OSError:
            pass
        atomic_write(memo, record, durable=False)


def file_stat(path: Path) -> list[int]:
    """The identity of *path*'s current contents, for :func:`record_digests`."""
    return _stat_key(path)


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


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: restored at once
    os.umask(mask)
    return mask


def user_mode(directory: bool = False) -> int:
    """The mode `open()` or `mkdir()` would give a new file or directory under the user's umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write *data* to *path* so that readers see the old or the new content, never a mix.

    *durable* false skips the fsync: for outputs that are verified before use or rebuilt when they
    do not verify (stage intermediates, cache entries with their digest), where a crash of the
    machine costs a rebuild, not a wrong answer. The user's files (`mochi.lock`) stay durable.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the directory first (not before every write: a syscall each, on slow disks)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), user_mode())  # mkstemp makes 0600; a written file gets the umask's mode
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None  # a failed write or close names no file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def store_stream(root: Path, filename: str, stream: Readable, expected_sha256: str) -> tuple[Path, Digests]:
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


# --- stage outputs -------------------------------------------------------------------------------

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_MAGIC = b"mochi-stage 1\n"


@dataclass(frozen=True, slots=True)
class StageEntry:
    """A verified stage output: its files (relative POSIX path -> bytes) and its JSON metadata."""

    files: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@functools.cache
def tool_fingerprint() -> str:
    """The tool's version and a digest of its own code (every `tasks/**/*.py`): a changed stage, even
    under an unchanged version number, never reads an entry an older one wrote."""
    h = blake3(__version__.encode() + b"\0")
    here = Path(__file__).resolve().parent
    for path in sorted(here.rglob("*.py")):
        h.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:32]}"


def stage_key(stage: str, parts: Mapping[str, object]) -> str:
    """The cache key of a stage output: SHA-256 over the tool, the stage and what determines the output.

    *parts* must be JSON data holding every input the output depends on (digests of input files,
    the settings that matter, versions of the tools involved) and nothing else, so that two projects
    with the same inputs share the entry.
    """
    canon = json.dumps({"tool": tool_fingerprint(), "stage": stage, "parts": parts}, sort_keys=True,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _stage_path(root: Path, stage: str, key: str) -> Path:
    if not _STAGE.match(stage) or not _HEX64.match(key):
        raise BridgeError(f"refusing cache path for stage {stage!r} and key {key!r}")
    return root / "stages" / stage / key[:2] / key


def _safe_rel(rel: str) -> bool:
    """A relative POSIX path that stays inside the directory it is joined to."""
    return bool(rel) and not rel.startswith("/") and "\\" not in rel and all(
        p not in ("", ".", "..") for p in rel.split("/"))


def _stage_digest(header: bytes, payload: bytes) -> str:
    return str(blake3(header + b"\0" + payload).hexdigest())


def stage_lookup(root: Path, stage: str, key: str, remove_corrupt: bool = True) -> StageEntry | None:
    """The entry *key* of *stage*, verified against the digest stored with it; None when absent or corrupt.

    A corrupt entry is removed (under its lock, after checking again that it is still the corrupt
    one) unless *remove_corrupt* is false (`check` writes nothing), so the caller's rebuild replaces it.
    """
    path = _stage_path(root, stage, key)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    entry = _parse_entry(data)
    if entry is None and remove_corrupt:
        with file_lock(root / "locks" / "stages" / f"{key}.lock"), contextlib.suppress(OSError):
            if path.read_bytes() == data:
                path.unlink()
    return entry


def _parse_entry(data: bytes) -> StageEntry | None:
    if not data.startswith(_MAGIC):
        return None
    try:
        digest, header, payload = data[len(_MAGIC):].split(b"\n", 2)
        if _stage_digest(header, payload) != digest.decode("ascii"):
            return None
        head = json.loads(header)
        files: dict[str, bytes] = {}
        offset = 0
        for rel, size in head["files"]:
            if not isinstance(rel, str) or not _safe_rel(rel) or not isinstance(size, int) or size < 0:
                return None
            files[rel] = payload[offset:offset + size]
            offset += size
        if offset != len(payload) or not isinstance(head["meta"], dict):
            return None
        return StageEntry(files=files, meta=head["meta"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def stage_store(root: Path, stage: str, key: str, entry: StageEntry) -> None:
    """Publish *entry* as output *key* of *stage* (atomically; the digest of all of it stored with it)."""
    for rel in entry.files:
        if not _safe_rel(rel):
            raise BridgeError(f"refusing stage output path {rel!r}")
    header = json.dumps({"files": [[rel, len(blob)] for rel, blob in entry.files.items()], "meta": entry.meta},
                        sort_keys=True, separators=(",", ":")).encode()
    payload = b"".join(entry.files.values())
    digest = _stage_digest(header, payload)
    path = _stage_path(root, stage, key)
    with file_lock(root / "locks" / "stages" / f"{key}.lock"):
        atomic_write(path, _MAGIC + digest.encode() + b"\n" + header + b"\n" + payload, durable=False)
