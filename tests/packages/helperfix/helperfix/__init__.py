"""Fixture: an untyped transitive dependency of typedfix (no py.typed)."""


def helper(x):
    return x
