"""Fixture: names that reach the package through `from ._shapes import *`."""

__all__ = ["square_area"]


def square_area(side: float) -> float:
    return side * side
