"""Fixture: one item per skip reason of the type table (DESIGN §6) the surface itself decides."""

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, TypeVarTuple, overload

P = ParamSpec("P")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class Base:
    pass


class Child(Base):
    pass


def open_union() -> list[int] | list[str]:  # OpenUnion: a result whose arms overlap (a parameter is narrowed)
    return []


def overlapping() -> list[int] | tuple[int, int]:  # OpenUnion: both arms are sequences at run time
    return []


def decorate(f: Callable[P, R]) -> Callable[P, R]:  # ParamSpec
    return f


def splat(*args: *Ts) -> tuple[*Ts]:  # TypeVarTuple
    return args


def unknown(x: "NoSuchThing") -> int:  # noqa: F821 - ForwardRef: the name resolves nowhere
    return 0


def cplx(x: complex) -> float:  # NoComplexType
    return abs(x)


@overload
def pick(x: complex) -> complex: ...
@overload
def pick(x: type[Base]) -> None: ...
def pick(x: Any) -> Any:  # OverloadAmbiguity: no overload maps
    return x


def classes(x: type[Base]) -> int:  # UnsupportedTypingConstruct: classes as values
    return 0


def partly(a: int, b: complex = 1j) -> int:  # PartiallyBound: b is left out of every form
    return a


def nothing() -> tuple[()]:  # UnsupportedTypingConstruct: an empty record cannot be declared
    return ()


def maybe_fn() -> Callable[[int], int] | None:  # UnsupportedTypingConstruct: `fun(int): int?` means another thing
    return None


def _hidden() -> int:  # PrivateName
    return 0


def fine(n: int) -> int:
    return n

