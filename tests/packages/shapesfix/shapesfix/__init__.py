"""Fixture: a typed dependency whose class another package hands out (bound from these stubs)."""


class Box:
    def __init__(self, size: int) -> None:
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def grow(self, by: int = 1) -> "Box":
        return Box(self._size + by)


class Cube(Box):
    """A subclass: a `Box | Cube` return is a Box (every value of it is one)."""

    def volume(self) -> int:
        return self.size ** 3
