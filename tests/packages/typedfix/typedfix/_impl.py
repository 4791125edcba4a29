"""Fixture: a function re-exported from a submodule."""


def shout(text: str) -> str:
    """Upper-case text."""
    return text.upper() + "!"
