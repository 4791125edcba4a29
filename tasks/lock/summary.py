"""The one line a lock ends with: what the lock holds and what this run did (a no-op included)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .lockfile import read_lock

__all__ = ["summary"]


def _fresh_json(path: Path, ran_after: float) -> dict[str, object]:
    """The JSON at *path* when this run wrote it (else {})."""
    try:
        if path.stat().st_mtime < ran_after:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def summary(root: Path, started: float, ran_after: float, noop: bool = False) -> str:
    """One line on what the lock holds and what this run did; *noop*: nothing had to run."""
    entries = read_lock(root / "mochi.lock")
    direct = [e for e in entries if e.direct]
    head = (f"locked {len(entries)} package(s), {len(direct)} direct: {sum(e.translated for e in direct)} translated, "
            f"{sum(e.skipped for e in direct)} skipped")
    elapsed = f"{time.monotonic() - started:.1f} s"
    if noop:
        return f"{head}; up to date, nothing ran; {elapsed}"
    results = _fresh_json(root / ".mochi" / "compile.json", ran_after)
    compiled = sum(isinstance(r, dict) and r.get("cached") == "no" for r in results.values())
    hits = sum(isinstance(r, dict) and r.get("cached") == "yes" for r in results.values())
    line = f"{head}; wrappers: {compiled} compiled, {hits} from the cache"
    launcher = _fresh_json(root / ".mochi" / "compiler-cache.json", ran_after)
    if launcher.get("tool"):
        line += f"; {launcher['tool']}: {launcher.get('hits', 0)} hit(s), {launcher.get('misses', 0)} miss(es)"
    return f"{line}; {elapsed}"
