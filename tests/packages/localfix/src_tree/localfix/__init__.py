"""Fixture: a typed package consumed from a path or a git repository."""


def triple(x: int) -> int:
    return 3 * x
