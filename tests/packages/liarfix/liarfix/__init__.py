"""Fixture: functions whose return values break their annotations, on purpose (R3)."""

from typing import Any


def answer() -> int:
    """Claims int, returns str."""
    result: Any = "forty-two"
    return result


def numbers() -> list[int]:
    """Claims list[int], returns a str element."""
    result: Any = [1, 2, "three"]
    return result


def honest(x: int) -> int:
    return x + 1


def flag() -> bool:
    """Claims bool, returns int (bool is not int, nor the other way round)."""
    result: Any = 1
    return result
