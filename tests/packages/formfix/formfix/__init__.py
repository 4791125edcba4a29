"""Fixture: the calling conventions of DESIGN §6a and the type-table rows of the bindings issue."""

from __future__ import annotations

import datetime
import io
from typing import IO, Any, ClassVar, Protocol, SupportsIndex, TypedDict, Unpack, overload

import shapesfix


def naturalsize(value: float | str, binary: bool = False, gnu: bool = False, fmt: str = "%.1f") -> str:
    """A number with optional positional flags, like humanize.naturalsize."""
    v = float(value)
    return f"{type(value).__name__}:{v}:{binary}:{gnu}:{fmt % v}"


def intcomma(value: float | str) -> str:
    """int stays int: an int argument is not widened to float at the boundary."""
    return f"{type(value).__name__}:{value}"


def join(*parts: str, sep: str = "-") -> str:
    """`*args` crosses as a trailing list."""
    return sep.join(parts)


def spread(first: int, *rest: int) -> list[int]:
    return [first, *rest]


def pick(x: int | complex) -> str:
    """A union with an unmappable arm is narrowed to its mappable arms."""
    return type(x).__name__


def index(n: SupportsIndex, path: str | None = None) -> int:
    return int(n)


def keywords(a: int, *, scale: int = 2, label: str = "x") -> str:
    return f"{label}{a * scale}"


def dropped(a: int, cb: complex = 1j, tail: str = "t") -> str:
    """An optional parameter whose type does not map is left out: PartiallyBound."""
    return f"{a}{tail}"


def loose(*items: complex) -> int:
    """An `*args` with no mappable type: PartiallyBound."""
    return len(items)


class Style(TypedDict, total=False):
    bold: bool
    color: str


def styled(text: str, **kw: Unpack[Style]) -> str:
    """Documented `**kwargs` keywords (PEP 692) are keyword parameters."""
    return f"{text}|{kw.get('bold', False)}|{kw.get('color', '')}"


def when(year: int) -> datetime.date:
    """A class of the standard library: a handle whose own members are bound."""
    return datetime.date(year, 3, 5)


def write_to(stream: IO[str], text: str) -> int:
    """IO[str] is checked by its methods, not by isinstance."""
    return stream.write(text)


class Reader(Protocol):
    def read(self, n: int = -1) -> str: ...


def read_all(r: Reader) -> str:
    """A protocol handle: any object with read()."""
    return r.read()


def buffer(text: str) -> io.StringIO:
    return io.StringIO(text)


@overload
def scale(x: int) -> int: ...
@overload
def scale(x: str) -> str: ...
def scale(x: int | str) -> int | str:
    """Overloads: the first that maps takes the plain name."""
    return x * 2


class Counter:
    """A class with a property and its setter, a ClassVar and a digit in a name."""

    LIMIT: ClassVar[int] = 10
    ISO8601_FORMAT: ClassVar[str] = "%Y-%m-%d"

    def __init__(self, start: int = 0) -> None:
        self._n = start

    @property
    def value(self) -> int:
        return self._n

    @value.setter
    def value(self, n: int) -> None:
        self._n = n

    def add(self, by: int = 1, *, twice: bool = False) -> int:
        self._n += by * (2 if twice else 1)
        return self._n


def utf8_len(text: str) -> int:
    """A digit inside a name: mangled so the Mochi lexer accepts it."""
    return len(text.encode("utf-8"))


def anything(x: Any) -> Any:
    """Any crosses as a value (`[python].any = "handle"` is the default)."""
    return x


def make_box(n: int) -> shapesfix.Box:
    """A class of another distribution: a handle whose members come from that distribution's own stubs."""
    return shapesfix.Box(n)


def biggest(n: int) -> shapesfix.Box | shapesfix.Cube:
    """A return union whose second arm derives from the first (scipy's `float32 | float64`)."""
    return shapesfix.Cube(n) if n > 2 else shapesfix.Box(n)


def query(url: str, *, params: str | dict[str, str] | None = None) -> str:
    """A keyword form, and its typed variant for the union's map arm, both pass `params` by keyword."""
    return f"{url}|{params!r}"
