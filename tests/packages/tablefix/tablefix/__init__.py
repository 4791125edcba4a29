"""Fixture: the structured rows of the type table - records, sum types, enums, callables, async, Any."""

import asyncio
import dataclasses
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, NotRequired, TypedDict, TypeVar

T = TypeVar("T")


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


@dataclass(frozen=True)
class Item:
    """A line of stock."""

    name: str
    qty: int
    tags: list[str]
    color: Color
    checked: bool = dataclasses.field(init=False, default=False)  # not a constructor argument: no record field


class Span(NamedTuple):
    start: int
    end: int


class Options(TypedDict):
    verbose: bool
    level: NotRequired[int]


class Shape:
    def __init__(self, side: float) -> None:
        self.side = side

    def area(self) -> float:
        return self.side * self.side


def total(items: list[Item]) -> int:
    return sum(i.qty for i in items)


def restock(item: Item, more: int) -> Item:
    return dataclasses.replace(item, qty=item.qty + more, tags=[*item.tags, "restocked"])


def widen(s: Span, by: int) -> Span:
    return Span(s.start - by, s.end + by)


def describe(o: Options) -> str:
    return f"verbose={o['verbose']} level={o.get('level', 'unset')}"


def defaults(verbose: bool) -> Options:
    return {"verbose": verbose} if verbose else {"verbose": False, "level": 3}


def bounds(xs: list[int]) -> tuple[int, int]:
    return (min(xs), max(xs))


def swap(p: tuple[int, str]) -> tuple[str, int]:
    return (p[1], p[0])


def parse(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def render(v: int | str | list[int]) -> str:
    return f"{type(v).__name__}:{v}"


def maybe(v: int | str | None) -> int | str | None:
    return v


def grow(v: Shape | int) -> Shape | int:
    return Shape(v * 2.0) if isinstance(v, int) else v.side


def next_color(c: Color) -> Color:
    return Color(c.value % 3 + 1)


def fake_color() -> Color:
    return 2  # type: ignore[return-value]


def apply(f: Callable[[int], int], x: int) -> int:
    return f(x) + 1


def each(f: Callable[[str, int], None], words: list[str]) -> int:
    for i, w in enumerate(words):
        f(w, i)
    return len(words)


def label_item(f: Callable[[Item], str], item: Item) -> str:
    return "<" + f(item) + ">"


def adder(n: int) -> Callable[[int], int]:
    return lambda x: x + n


def liar_adder() -> Callable[[int], int]:
    return lambda x: str(x)  # type: ignore[return-value]


async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


async def loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


_LOOPS: list[asyncio.AbstractEventLoop] = []


async def loops_seen() -> int:
    """How many distinct event loops have run this so far (kept alive, so ids stay distinct)."""
    _LOOPS.append(asyncio.get_running_loop())
    return len({id(loop) for loop in _LOOPS})


async def ticks(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def fail_later(msg: str) -> int:
    raise KeyError(msg)


def anything(x: Any) -> Any:
    return x


def first(xs: list[T]) -> T:
    return xs[0]


def add(a: int, b: int) -> int:
    return a + b


def greet(name: str) -> str:
    return f"hello {name}"


def flip(b: bool) -> bool:
    return not b


def scale(xs: list[float], k: float) -> list[float]:
    return [x * k for x in xs]


def index_words(words: list[str]) -> dict[str, int]:
    return {w: i for i, w in enumerate(words)}


def item_tags(item: Item) -> set[str]:
    return set(item.tags)


def checksum(data: bytes) -> bytes:
    return bytes(reversed(data))


def maybe_len(s: str | None) -> int | None:
    return None if s is None else len(s)


def forget(x: int) -> None:
    del x


async def apply_async(f: Callable[[int], int], x: int) -> int:
    """Runs a callback inside the event loop (re-entrancy)."""
    return f(x)


def big_numbers() -> dict[str, list[int]]:
    """An int beyond 64 bits inside containers: fine for Python, refused by the C ABI."""
    return {"small": [1, 2], "big": [3, 2**70]}
