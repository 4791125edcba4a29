"""Fetch stage: put a pinned package's wheel in the cache, verified.

Index pins: the wheel is chosen on the index (PEP 691, tags, yanked files refused unless pinned
with `==`) and its bytes must hash to what the index published, and to the PEP 658 metadata digest
when one is advertised. Path and git pins: the wheel is built from the source with `uv build`
(git checkouts through the `git` command, at the locked commit; build requirements as wheels
only). Either way the cache entry is
written atomically under its BLAKE3, and a cached blob is re-hashed before it is trusted.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packaging import tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from ..cache import (
    Digests,
    atomic_write,
    digest_file,
    file_lock,
    file_stat,
    record_digests,
    store_stream,
    wheel_path,
)
from ..errors import FetchError, HashMismatch, Offline
from ..resolve.resolver import find_uv
from ..resolve.urls import is_hex, public_url, safe_filename, with_credentials
from ..run import run
from .attest import AttestedFile, attest_release
from .index import IndexFile, fetch_project, open_url, select_wheel
from .wheel import open_wheel, read_member, read_metadata, safe_members

__all__ = ["FetchedWheel", "build_from_source", "fetch_from_index", "fetch_locked"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedWheel:
    name: str
    version: str
    filename: str
    url: str
    """Where the wheel came from: its index URL, or empty for a wheel built from source."""
    index: str
    size: int
    sha256: str
    blake3: str
    simple_sha256: str
    """The SHA-256 the index published for the file (empty for a wheel built from source)."""
    requires_dist: list[str]
    path: str
    attestations: tuple[AttestedFile, ...] = ()
    """PEP 740: the files of the release whose provenance verified (the wheel, the sdist)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def fetch_from_index(name: str, version: str, indexes: list[str], accepted: list[tags.Tag], python_version: str,
                     cache: Path, allow_yanked: bool = False, expected_sha256: str = "", *,
                     attestations_required: bool = False, trusted_publisher: str = "") -> FetchedWheel:
    """Download (or find in the cache) the best wheel of *name* == *version* from the first index that has it.

    *expected_sha256* is the digest a lock already recorded: the index must still serve exactly it.
    The release's PEP 740 provenance is verified before anything is downloaded (`attest_release`).

    :raises HashMismatch: the bytes differ from the index's (or the lock's) SHA-256; nothing is cached.
    :raises AttestationFailed: see `attest_release`; nothing is cached.
    """
    chosen: IndexFile | None = None
    index_url = ""
    listed: list[IndexFile] = []
    errors = []
    for url in indexes:
        try:
            files = fetch_project(url, name)
        except FetchError as exc:
            errors.append(exc.message)
            continue
        chosen = select_wheel(files, name, version, accepted, python_version, allow_yanked=allow_yanked)
        index_url, listed = url, files
        break
    if chosen is None:
        raise FetchError(f"no index offers {name}: {'; '.join(errors)}", "check [python].indexes in mochi.toml")
    if expected_sha256 and chosen.sha256 != expected_sha256:
        raise HashMismatch(f"{chosen.filename}: mochi.lock records sha256 {expected_sha256} but the index now "
                           f"publishes {chosen.sha256}", "the file changed on the index; run `mochi-py update "
                           f"{name}` only if you trust the new bytes")
    attested = attest_release(name, version, listed, chosen.filename, required=attestations_required,
                              trusted=trusted_publisher, cache=cache)
    _paths_from(chosen.sha256, chosen.filename, "the index")
    with file_lock(cache / "locks" / f"{chosen.sha256}.lock"):
        digests = _cached(cache, chosen.filename, chosen.sha256)
        if digests is None:
            stream, _, _ = open_url(chosen.url, size=chosen.size)
            with stream:
                stored, digests = store_stream(cache, chosen.filename, stream, chosen.sha256)
            atomic_write(cache / "by-sha256" / chosen.sha256, f"{digests.blake3}\n".encode())
            record_digests(cache, stored, digests)
        path = wheel_path(cache, digests.blake3, chosen.filename)
    if chosen.metadata_sha256:
        _check_metadata(path, chosen.metadata_sha256)
    meta = read_metadata(path)
    return FetchedWheel(name=name, version=version, filename=chosen.filename, url=public_url(chosen.url),
                        index=public_url(index_url),
                        size=digests.size, sha256=digests.sha256, blake3=digests.blake3,
                        simple_sha256=chosen.sha256, requires_dist=sorted(str(r) for r in meta.requires_dist or []),
                        path=str(path), attestations=attested)


def _paths_from(sha256: str, filename: str, origin: str) -> None:
    """Refuse a digest or file name that is not safe as a cache path component (it comes from *origin*)."""
    if not is_hex(sha256) or not safe_filename(filename):
        raise FetchError(f"{origin} gives sha256 {sha256!r} and file name {filename!r}: not 64 hex digits and one "
                         "path component", "do not use it; nothing was written")


def fetch_locked(name: str, version: str, locked: dict[str, Any], cache: Path, source_kind: str, offline: bool,
                 indexes: tuple[str, ...] = ()) -> FetchedWheel | None:
    """The wheel mochi.lock records, by its hashes: from the cache, else (index pins, online) from its locked URL.

    No index page is read. None for a path or git pin that is not cached (the caller builds it). The
    locked URL gets the credentials of the matching one of *indexes* (the lock records none).

    :raises Offline: offline, and the cache does not hold the file.
    :raises HashMismatch: the downloaded bytes are not the locked ones; nothing is cached.
    """
    filename, sha256, b3 = locked["filename"], locked["sha256"], locked["blake3"]
    _paths_from(sha256, filename, "mochi.lock")
    path = wheel_path(cache, b3, filename)
    with file_lock(cache / "locks" / f"{sha256}.lock"):
        digests = digest_file(path) if path.is_file() else None
        if digests is not None and (digests.sha256, digests.blake3) != (sha256, b3):
            path.unlink()  # verified on use: changed bytes are never used
            digests = None
        if digests is None:
            if source_kind != "index":
                if offline:
                    raise Offline(f"offline: the wheel built from {name}'s {source_kind} source ({filename}) is not "
                                  f"in the cache {cache}", "run once with the network, or restore MOCHI_CACHE_DIR")
                return None
            if offline:
                raise Offline(f"offline: {name} {version} ({filename}) is not in the cache {cache}",
                              "run once with the network to fill it, or restore MOCHI_CACHE_DIR from a machine "
                              "that locked this project")
            size = locked.get("size")
            stream, _, _ = open_url(with_credentials(locked["url"], indexes),
                                    size=size if isinstance(size, int) and size > 0 else None)
            with stream:
                _, digests = store_stream(cache, filename, stream, sha256)
            if digests.blake3 != b3:
                raise HashMismatch(f"{filename}: mochi.lock records blake3 {b3} but the download has {digests.blake3}",
                                   "the file is not the locked one; nothing was used")
            atomic_write(cache / "by-sha256" / sha256, f"{digests.blake3}\n".encode())
    meta = read_metadata(path)
    return FetchedWheel(name=name, version=version, filename=filename, url=locked["url"], index=locked["index"],
                        size=digests.size, sha256=digests.sha256, blake3=digests.blake3,
                        simple_sha256=locked["simple_sha256"],
                        requires_dist=sorted(str(r) for r in meta.requires_dist or []), path=str(path),
                        attestations=tuple(AttestedFile(**a) for a in locked.get("attestations", [])))


def _check_metadata(wheel: Path, expected: str) -> None:
    """PEP 658: the metadata the index advertised must be the metadata inside the wheel."""
    with open_wheel(wheel) as zf:
        members = [m for m in safe_members(zf, wheel) if m.filename.endswith(".dist-info/METADATA")
                   and m.filename.count("/") == 1]
        actual = hashlib.sha256(read_member(zf, members[0], wheel)).hexdigest() if members else ""
    if actual != expected:
        raise HashMismatch(f"{wheel.name}: its METADATA hashes to {actual or 'nothing'}, but the index advertised "
                           f"{expected} (PEP 658)", "the index serves inconsistent files; do not use it")


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
    stat = file_stat(path)
    digests = digest_file(path)
    if digests.sha256 != sha256 or digests.blake3 != b3:
        path.unlink()  # verified on use: a blob that changed on disk is never used, it is fetched again
        return None
    record_digests(cache, path, digests, stat)  # what `check` reuses while the file stays unchanged
    return digests


def build_from_source(name: str, version: str, kind: str, location: str, commit: str, interpreter: str,
                      index_url: str, cache: Path, offline: bool = False) -> FetchedWheel:
    """Build the wheel of a path or git pin and cache it under its BLAKE3.

    *offline*: build backends come from uv's cache, and a git source cannot be cloned.
    """
    with tempfile.TemporaryDirectory(prefix="mochi-build-") as tmp:
        src = Path(location)
        if kind == "git" and offline:
            raise Offline(f"offline: {name} comes from git ({location}) and its wheel is not in the cache",
                          "run once with the network, or restore MOCHI_CACHE_DIR")
        if kind == "git":
            src = Path(tmp) / "checkout"
            hint = "check the git URL and that the commit exists"
            run(["git", "clone", "--quiet", "--no-checkout", location, str(src)], hint=hint, timeout=600)
            run(["git", "-C", str(src), "checkout", "--quiet", commit], hint=hint)
        if src.is_file() and src.suffix == ".whl":
            built = src
        else:
            out = Path(tmp) / "dist"
            run([find_uv(), "build", "--wheel", "--no-build", "--out-dir", str(out), "--python", interpreter,
                 "--no-config", "--no-python-downloads", "--default-index", index_url, "--cache-dir",
                 str(cache / "uv"), "--quiet",
                 *(["--offline"] if offline else []), str(src)],
                hint=f"the {kind} source of {name} did not build a wheel", timeout=900)
            wheels = sorted(out.glob("*.whl"))
            if len(wheels) != 1:
                raise FetchError(f"building {name} from {location} produced {len(wheels)} wheels")
            built = wheels[0]
        wname, wver, _, _ = parse_wheel_filename(built.name)
        if wname != canonicalize_name(name) or wver != Version(version):
            raise FetchError(f"the {kind} source {location} built {built.name}, not {name} {version}",
                             "run `mochi-py lock` again so the lock follows the source")
        sha = hashlib.sha256(built.read_bytes()).hexdigest()
        with built.open("rb") as stream:
            path, digests = store_stream(cache, built.name, stream, sha)
        record_digests(cache, path, digests)
    meta = read_metadata(path)
    return FetchedWheel(name=name, version=version, filename=path.name, url="", index="", size=digests.size,
                        sha256=digests.sha256, blake3=digests.blake3, simple_sha256="",
                        requires_dist=sorted(str(r) for r in meta.requires_dist or []), path=str(path))

