"""`lock --frozen` (and `sync`): build exactly what `mochi.lock` says, resolving nothing.

The pins come from the lock; each locked file is taken from the cache by its hash or downloaded from its
locked URL and verified. The lock must agree with `mochi.toml` before anything runs (an entry asked for
differently is drift, exit 1), and what the run builds must reproduce the lock field for field: a frozen
run never rewrites `mochi.lock`.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from ..resolve.manifest import Manifest
from .lockfile import LockEntry
from .tree import dependency_edges

__all__ = ["lock_differences", "locked_file", "manifest_disagreements", "pins_from_lock"]


def manifest_disagreements(manifest: Manifest, entries: list[LockEntry]) -> list[str]:
    """One line per entry on which `mochi.toml` and `mochi.lock` disagree (empty: they agree)."""
    locked = {e.name: e for e in entries}
    out = []
    for dep in manifest.dependencies:
        entry = locked.get(dep.name)
        if entry is None or not entry.direct:
            out.append(f"{dep.where}: {dep.name}: in mochi.toml ({dep.fingerprint}) but not locked as a dependency")
        elif entry.requested != dep.fingerprint:
            out.append(f"{dep.where}: {dep.name}: mochi.toml asks for {dep.fingerprint}, mochi.lock was made for "
                       f"{entry.requested}")
    wanted = {d.name for d in manifest.dependencies}
    out += [f"mochi.lock: {e.name}: locked as a dependency ({e.requested}) but no longer in mochi.toml"
            for e in entries if e.direct and e.name not in wanted]
    return out


def pins_from_lock(entries: list[LockEntry], root: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """The pins a resolution would have produced, read from the lock (the shape `.mochi/resolve.json` holds)."""
    deps = {d.name: d for d in manifest.dependencies}
    edges = dependency_edges(entries)
    out = []
    for e in sorted(entries, key=lambda e: e.name):
        dep = deps.get(e.name)
        location = str((root / e.source_location).resolve()) if e.source_kind == "path" else e.source_location
        out.append({"name": e.name, "version": e.version, "direct": e.direct, "source": e.source_kind,
                    "location": location, "commit": e.commit, "dependencies": edges[e.name],
                    "extras": list(e.extras), "requested": e.requested, "markers": e.markers,
                    "allow_yanked": bool(dep and dep.specifier.startswith(("==", "===")) and "," not in dep.specifier),
                    "locked_sha256": e.wheel_sha256 if e.source_kind == "index" else "",
                    "locked_stub_dist": e.stub_distribution, "locked_file": locked_file(e)})
    return out


def locked_file(e: LockEntry) -> dict[str, Any]:
    """What a frozen fetch needs to take the locked wheel by hash."""
    return {"filename": e.wheel_filename, "url": e.wheel_url, "index": e.source_location if e.source_kind == "index"
            else "", "size": e.wheel_size, "sha256": e.wheel_sha256, "blake3": e.wheel_blake3,
            "simple_sha256": e.pypi_simple_sha256,
            # verified when the lock was made; the bytes are the same ones (by hash), and `check` re-verifies
            "attestations": [a.to_dict() for a in e.attestations]}


def lock_differences(old: list[LockEntry], new: list[LockEntry]) -> list[str]:
    """Field-level differences between the lock on disk and the one a frozen run built."""
    before, after = {e.name: e for e in old}, {e.name: e for e in new}
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            out.append(f"{name}: {'not in mochi.lock' if a is None else 'not built'}")
            continue
        for f in fields(LockEntry):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if x != y:
                out.append(f"{name}: {f.name.replace('_', '-')}: locked {x or '(none)'}, built {y or '(none)'}")
    return out
