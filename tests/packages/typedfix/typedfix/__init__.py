"""Fixture: typed functions over every type the walking skeleton maps, and some it must refuse."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union, overload

from ._impl import shout as shout

__all__ = [
    "add", "scale", "is_even", "greet", "nothing", "words", "counts", "maybe_len", "total", "lengths",
    "first_or_none", "nested", "join", "shout", "either", "anything", "cplx", "Box", "later", "over",
    "untyped", "with_kwonly", "LIMIT",
]

LIMIT: int = 10


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def scale(x: float, factor: float = 2.0) -> float:
    """Multiply x by factor."""
    return x * factor


def is_even(n: int) -> bool:
    return n % 2 == 0


def greet(name: str, punctuation: str = "!") -> str:
    """Say hello."""
    return f"hello {name}{punctuation}"


def nothing(x: int) -> None:
    """Return nothing."""


def words(text: str) -> list[str]:
    return text.split()


def counts(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in text.split():
        out[w] = out.get(w, 0) + 1
    return out


def maybe_len(text: Optional[str]) -> Optional[int]:
    return None if text is None else len(text)


def total(values: List[float]) -> float:
    return float(sum(values))


def lengths(items: Dict[str, List[str]]) -> Dict[str, int]:
    return {k: len(v) for k, v in items.items()}


def first_or_none(items: list[int]) -> int | None:
    return items[0] if items else None


def nested(n: int) -> list[dict[str, list[int]]]:
    return [{"xs": list(range(i))} for i in range(n)]


def join(parts: list[str], sep: Union[str, None] = None, *, upper: bool = False, extra: Any = None) -> str:
    """Join parts; extra is left out of the Mochi signature because Any does not map."""
    out = (sep or ",").join(parts)
    return out.upper() if upper else out


def with_kwonly(a: int, *, times: int = 2) -> int:
    return a * times


def either(x: Union[int, str]) -> str:
    return str(x)


def anything(x: Any) -> int:
    return 0


def cplx(x: complex) -> float:
    return abs(x)


class Box:
    def __init__(self, v: int) -> None:
        self.v = v


async def later(x: int) -> int:
    return x


@overload
def over(x: int) -> int: ...
@overload
def over(x: str) -> str: ...
def over(x):  # type: ignore[no-untyped-def]
    return x


def untyped(x):  # type: ignore[no-untyped-def]
    return x


def _private(x: int) -> int:
    return x
