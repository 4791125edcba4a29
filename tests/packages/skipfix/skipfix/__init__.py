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


def open_union(x: int | Any) -> int:  # OpenUnion: an Any arm
    return 0


def overlapping(x: list[int] | tuple[int, int]) -> int:  # OpenUnion: both arms are sequences at run time
    return 0


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


def anything(x: Any) -> int:  # UnsupportedTypingConstruct (refused Any, default any = "refuse")
    return 0


def nothing() -> tuple[()]:  # UnsupportedTypingConstruct: an empty record cannot be declared
    return ()


def maybe_fn() -> Callable[[int], int] | None:  # UnsupportedTypingConstruct: `fun(int): int?` means another thing
    return None


def _hidden() -> int:  # PrivateName
    return 0


def fine(n: int) -> int:
    return n


from typing import Protocol  # noqa: E402 - kept next to its use in this fixture


class Greeter(Protocol):  # UnsupportedTypingConstruct: a Protocol has no run-time isinstance check
    def greet(self) -> str: ...


def use(g: Greeter) -> str:  # UnsupportedTypingConstruct (its parameter is a Protocol)
    return g.greet()
