"""Fixture: looks into HOME when imported; the sandbox must give it an empty one."""

from pathlib import Path

if (Path.home() / "secret.txt").exists():
    def leaked() -> int:
        return 1
else:
    def sealed() -> int:
        return 0
