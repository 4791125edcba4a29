"""The one line a lock ends with: what the lock holds and what this run did."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .lockfile import read_lock

__all__ = ["summary"]


def summary(root: Path, started: float, ran_after: float) -> str:
    """One line on what the lock holds and what this run did."""
    entries = read_lock(root / "mochi.lock")
    direct = [e for e in entries if e.direct]
    compiled = hits = 0
    compile_json = root / ".mochi" / "compile.json"
    if compile_json.is_file() and compile_json.stat().st_mtime >= ran_after:
        results = json.loads(compile_json.read_text(encoding="utf-8"))
        compiled = sum(r["cached"] == "no" for r in results.values())
        hits = sum(r["cached"] == "yes" for r in results.values())
    return (f"locked {len(entries)} package(s), {len(direct)} direct: {sum(e.translated for e in direct)} translated, "
            f"{sum(e.skipped for e in direct)} skipped; wrappers: {compiled} compiled, {hits} from the cache; "
            f"{time.monotonic() - started:.1f} s")
