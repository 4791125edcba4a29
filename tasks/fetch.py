"""Fetch stage: choose a pinned package's wheel on the index and put it in the cache, verified."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from packaging import tags

from .cache import Digests, atomic_write, digest_file, file_lock, store_stream, wheel_path
from .index import fetch_project, open_url, select_wheel
from .wheel import read_metadata

__all__ = ["FetchedWheel", "fetch_wheel"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedWheel:
    name: str
    version: str
    filename: str
    url: str
    index: str
    size: int
    sha256: str
    blake3: str
    simple_sha256: str
    requires_dist: list[str]
    path: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def fetch_wheel(name: str, version: str, index_url: str, accepted: list[tags.Tag], python_version: str,
                cache: Path) -> FetchedWheel:
    """Download (or find in the cache) the best wheel of *name* == *version*.

    :raises HashMismatch: the index's SHA-256 differs from the bytes; nothing is cached.
    """
    chosen = select_wheel(fetch_project(index_url, name), name, version, accepted, python_version)
    lock = cache / "locks" / f"{chosen.sha256}.lock"
    with file_lock(lock):
        digests = _cached(cache, chosen.filename, chosen.sha256)
        if digests is None:
            stream, _, _ = open_url(chosen.url)
            with stream:
                path, digests = store_stream(cache, chosen.filename, stream, chosen.sha256)
            _remember(cache, chosen.sha256, digests.blake3)
        path = wheel_path(cache, digests.blake3, chosen.filename)
    meta = read_metadata(path)
    return FetchedWheel(name=name, version=version, filename=chosen.filename, url=chosen.url, index=index_url,
                        size=digests.size, sha256=digests.sha256, blake3=digests.blake3,
                        simple_sha256=chosen.sha256, requires_dist=sorted(str(r) for r in meta.requires_dist or []),
                        path=str(path))


def _cached(cache: Path, filename: str, sha256: str) -> Digests | None:
    """The digests of a cached copy whose bytes still hash to *sha256*; a corrupt copy is dropped."""
    ref = cache / "by-sha256" / sha256
    if not ref.is_file():
        return None
    b3 = ref.read_text().strip()
    try:
        path = wheel_path(cache, b3, filename)
    except Exception:
        return None
    if not path.is_file():
        return None
    digests = digest_file(path)
    if digests.sha256 != sha256 or digests.blake3 != b3:
        path.unlink()  # verified on use: a blob that changed on disk is never used
        return None
    return digests


def _remember(cache: Path, sha256: str, b3: str) -> None:
    atomic_write(cache / "by-sha256" / sha256, f"{b3}\n".encode())

