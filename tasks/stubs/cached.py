"""The stub stage through the cross-project cache: a package whose wheel and settings another project
already stubbed gets that document set back, verified, instead of walking the ladder again.

The key holds what the ladder's outcome depends on: the wheel's BLAKE3, the package version, the
indexes and target tags that tiers 2 and 3 consult, the stub distribution a lock pinned, the
stubgen settings and mypy's version (stubgen and `mypy.stubinfo`), and the tool (in
:func:`~tasks.cache.stage_key`).
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from importlib import metadata
from pathlib import Path

from packaging.tags import Tag

from ..cache import StageEntry, stage_key, stage_lookup, stage_store
from ..context import limit
from .ladder import StubSet, StubSource, documents_match, restore_stubs, stub_ladder
from .sandbox import sandbox_disabled

__all__ = ["cached_stub_ladder", "stubs_key"]


def _mypy_version() -> str:
    try:
        return metadata.version("mypy")
    except metadata.PackageNotFoundError:
        return ""


@functools.cache
def _tags_digest(accepted: tuple[Tag, ...]) -> str:
    return hashlib.sha256("\n".join(str(t) for t in accepted).encode()).hexdigest()


def stubs_key(wheel_blake3: str, package_version: str, source: StubSource, fallback: str, inspect: bool,
              pinned: str, aggressive: bool, dependency_digests: tuple[str, ...] = ()) -> str:
    tags = _tags_digest(tuple(source.accepted))
    return stage_key("stubs", {"wheel": wheel_blake3, "version": package_version, "indexes": list(source.indexes),
                               "python": source.python_version, "tags": tags, "fallback": fallback,
                               "inspect": inspect, "pinned": pinned, "aggressive": aggressive,
                               "mypy": _mypy_version(), "requirements": list(dependency_digests),
                               # stubs read from the sources for want of a sandbox are not the imported ones
                               "sandbox": sandbox_disabled(), "stub-cap": limit("stub-bytes")})


def cached_stub_ladder(cache: Path, wheel: Path, wheel_blake3: str, dest: Path, package_version: str,
                       source: StubSource, fallback: str, inspect: bool, pinned: str = "", aggressive: bool = False,
                       store: bool = True, materialize: bool = True, dependencies: tuple[Path, ...] = (),
                       dependency_digests: tuple[str, ...] = ()) -> StubSet:
    """:func:`~tasks.stubs.ladder.stub_ladder`, answered from the cache at *cache* when it holds an intact
    entry for these inputs. The documents are published at *dest*, except for a cache hit with
    *materialize* false, which leaves *dest* absent (a later stage that needs them calls this again).
    *store* false leaves the cache as it was (`check`). *dependencies* (with their BLAKE3s in
    *dependency_digests*) are the requirement wheels whose typed documents go beside the stubs."""
    key = stubs_key(wheel_blake3, package_version, source, fallback, inspect, pinned, aggressive, dependency_digests)
    entry = stage_lookup(cache, "stubs", key, remove_corrupt=store)
    if entry is not None:
        try:
            recorded = StubSet(**entry.meta)
        except TypeError:  # written by another layout of StubSet: rebuild
            recorded = None
        if recorded is not None and not materialize and documents_match(entry.files, recorded):
            if dest.exists():
                shutil.rmtree(dest)  # documents of another run must not stand in for these
            return recorded
        restored = restore_stubs(dest, entry.files, recorded) if recorded is not None else None
        if restored is not None:
            return restored
    stubs = stub_ladder(wheel, dest, package_version, source, fallback, inspect, pinned, aggressive, dependencies)
    if store:
        files = {rel: (dest / rel).read_bytes() for rel in stubs.files}
        stage_store(cache, "stubs", key, StageEntry(files=files, meta=stubs.to_dict()))
    return stubs
