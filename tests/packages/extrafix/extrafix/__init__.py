"""Fixture: a package with an optional extra."""


def fast() -> bool:
    return True
