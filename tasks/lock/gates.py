"""The lock-time capability gates (DESIGN §8): declared capabilities, `update` elevation, free-threading.

Each gate raises one :class:`BridgeError` listing every offending package, so nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..cache import atomic_write
from ..context import Context
from ..errors import BridgeError
from ..fetch.index import fetch_project
from .lockfile import LockEntry, read_lock

__all__ = ["ElevationRefused", "audit", "capability_diff"]


class ElevationRefused(BridgeError):
    """`update` would add capabilities the lock did not have."""


def _evidence(root: Path, name: str, cap: str) -> str:
    data = json.loads((root / ".mochi" / "deps" / name / "capabilities.json").read_text(encoding="utf-8"))
    hits = [f"{f['file']}:{f['line']}: {f['evidence']}" for f in data["findings"] if f["capability"] == cap]
    return "; ".join(hits[:3]) + (f" (+{len(hits) - 3} more)" if len(hits) > 3 else "") if hits else \
        "capabilities/db.toml"


def capability_diff(old: list[LockEntry], new: list[LockEntry]) -> list[tuple[str, str, str]]:
    """(package, change, detail) rows: version changes and capabilities gained or lost."""
    before = {e.name: e for e in old}
    rows = []
    for e in new:
        prev = before.get(e.name)
        if prev is None:
            rows.append((e.name, "added", f"{e.version} [{', '.join(e.capabilities) or 'no capabilities'}]"))
            continue
        if prev.version != e.version:
            rows.append((e.name, "version", f"{prev.version} -> {e.version}"))
        for cap in sorted(set(e.capabilities) - set(prev.capabilities)):
            rows.append((e.name, "gains", cap))
        for cap in sorted(set(prev.capabilities) - set(e.capabilities)):
            rows.append((e.name, "loses", cap))
    rows += [(name, "removed", before[name].version) for name in sorted(set(before) - {e.name for e in new})]
    return rows


def free_threaded_wheel(entry: LockEntry, python_version: tuple[int, int, int]) -> bool:
    """Does the index offer a free-threaded (`cp3XYt`) wheel of the locked version for the target's minor?"""
    if entry.source_kind != "index":
        return False
    want = f"cp{python_version[0]}{python_version[1]}t"
    for f in fetch_project(entry.source_location, entry.name):
        try:
            _, version, _, wheel_tags = parse_wheel_filename(f.filename)
        except InvalidWheelFilename:
            continue
        if str(version) == entry.version and any(t.abi == want for t in wheel_tags):
            return True
    return False


def audit(ctx: Context, entries: list[LockEntry]) -> None:
    root = Path(ctx.root)
    declared = ctx.capabilities_declared
    if declared is not None:
        missing = [(e.name, cap) for e in entries for cap in e.capabilities if cap not in declared]
        if missing:
            lines = [f"  {name}: {cap} ({_evidence(root, name, cap)})" for name, cap in missing]
            raise BridgeError("dependencies need capabilities [python.capabilities] does not allow:\n"
                              + "\n".join(lines), "review the evidence; if it is acceptable, set those capabilities "
                              "to true under [python.capabilities] in mochi.toml")
    if ctx.elevation != "ignore":
        rows = capability_diff(read_lock(root / "mochi.lock"), entries)
        for name, change, detail in rows:
            print(f"  {name}: {change} {detail}")
        gained = [(n, d) for n, c, d in rows if c == "gains"] + [
            (n, cap) for n, c, _ in rows if c == "added"
            for e in entries if e.name == n for cap in e.capabilities]
        marker = root / ".mochi" / "elevation.json"
        if gained and ctx.elevation == "refuse":
            atomic_write(marker, json.dumps(gained).encode())
            summary = ", ".join(f"{n} gains {c}" for n, c in gained)
            raise ElevationRefused(f"the update elevates capabilities: {summary}",
                                   "review the evidence, then run `mochi-py update --allow-capability-elevation`")
        marker.unlink(missing_ok=True)
    if ctx.free_threaded:
        blocked = []
        for e in entries:
            data = json.loads((root / ".mochi" / "deps" / e.name / "capabilities.json").read_text(encoding="utf-8"))
            if "cextension" in e.capabilities and data["free_threaded"] == "incompatible":
                blocked.append(f"  {e.name} {e.version}: capabilities/db.toml marks it incompatible")
            elif "cextension" in e.capabilities and not free_threaded_wheel(e, ctx.python_version):
                blocked.append(f"  {e.name} {e.version}: native code and no free-threaded wheel for the target")
        if blocked:
            raise BridgeError("[python].free-threaded = true, but:\n" + "\n".join(blocked),
                              "pick versions that ship cp3XYt wheels, or set free-threaded = false")
