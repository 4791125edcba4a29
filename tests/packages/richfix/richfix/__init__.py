"""Fixture: classes as handles, and the collection rows of the type table."""

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self, TypeVar

from ._shapes import *  # noqa: F403 - re-exported through a star import on purpose

Num = TypeVar("Num", bound=float)

VERSION: str = "1.0"
LIMIT: int = 3


class Counter:
    """Counts things."""

    step: int

    def __init__(self, start: int, step: int = 1) -> None:
        self.value = start
        self.step = step

    def bump(self, times: int = 1) -> int:
        """Add step, times times."""
        self.value += self.step * times
        return self.value

    def again(self) -> Self:
        return self

    @property
    def doubled(self) -> int:
        return self.value * 2

    @classmethod
    def zero(cls) -> "Counter":
        return cls(0)

    @staticmethod
    def describe(n: int) -> str:
        return f"counter {n}"


class LoudCounter(Counter):
    def shout(self) -> str:
        return f"{self.value}!"


@dataclass
class Point:
    x: float
    y: float = 0.0


def norm1(p: Point) -> float:
    return abs(p.x) + abs(p.y)


def checksum(data: bytes) -> bytes:
    return bytes(reversed(data))


def unique(words: set[str]) -> set[str]:
    return {w.upper() for w in words}


def pair(n: int) -> Sequence[int]:
    return (n, n + 1)


def squares(n: int) -> Iterator[int]:
    yield from (i * i for i in range(n))


def inverse(m: Mapping[str, int]) -> dict[int, str]:
    return {v: k for k, v in m.items()}


def mode(name: Literal["fast", "slow"]) -> Literal[1, 2]:
    return 1 if name == "fast" else 2


def many(xs: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(str(x) for x in xs)


def half(x: Num) -> float:
    return x / 2


if sys.version_info >= (3, 99):
    def future_only() -> int: ...
else:
    def present(x: int | float) -> float:
        return x * 1.0


def explode(message: str) -> int:
    """Raises ValueError(message)."""
    raise ValueError(message)


from typing import Final  # noqa: E402 - kept next to its use in this fixture

RETRIES: Final = 3


from typing import Generic  # noqa: E402 - kept next to its use in this fixture

Item = TypeVar("Item")


class Crate(Generic[Item]):
    """A generic class: its instances cross as handles whatever the type arguments (they are erased)."""

    def __init__(self, item: Item) -> None:
        self.item = item


def crate_of(n: int) -> "Crate[int]":
    return Crate(n)


def is_crate(c: Crate[str]) -> bool:
    return isinstance(c, Crate)
