"""The one type-descriptor encoding shared by the C runtime, the shim emitter and the re-export module.

A descriptor is a prefix string: `i` int, `f` float, `b` bool, `s` str, `n` None (returns only),
`L<x>` list of x, `D<x>` dict with str keys and x values, `O<x>` x or None. For example
`list[dict[str, int | None]]` is `LDOi`. `wrappers/rt_check.c` walks the same grammar.
"""

from __future__ import annotations

__all__ = ["MOCHI_SCALARS", "PY_SCALARS", "mochi_type", "python_type", "validate"]

MOCHI_SCALARS = {"i": "int", "f": "float", "b": "bool", "s": "string"}
PY_SCALARS = {"i": "int", "f": "float", "b": "bool", "s": "str", "n": "None"}


def validate(desc: str) -> None:
    """Raise ValueError unless *desc* is exactly one well-formed descriptor."""
    if _end(desc, 0) != len(desc):
        raise ValueError(f"malformed type descriptor {desc!r}")


def _end(desc: str, pos: int) -> int:
    if pos >= len(desc):
        raise ValueError(f"truncated type descriptor {desc!r}")
    c = desc[pos]
    if c in "ifbsn":
        return pos + 1
    if c in "LDO":
        return _end(desc, pos + 1)
    raise ValueError(f"unknown code {c!r} in type descriptor {desc!r}")


def mochi_type(desc: str) -> str:
    """The Mochi spelling (DESIGN §6) of a parameter or return descriptor other than `n`."""
    c, rest = desc[0], desc[1:]
    if c in MOCHI_SCALARS:
        return MOCHI_SCALARS[c]
    if c == "L":
        return f"list<{mochi_type(rest)}>"
    if c == "D":
        return f"map<string, {mochi_type(rest)}>"
    if c == "O":
        return f"{mochi_type(rest)}?"
    raise ValueError(f"no Mochi type for descriptor {desc!r}")


def python_type(desc: str) -> str:
    """The Python spelling of a descriptor, for messages and docs."""
    c, rest = desc[0], desc[1:]
    if c in PY_SCALARS:
        return PY_SCALARS[c]
    if c == "L":
        return f"list[{python_type(rest)}]"
    if c == "D":
        return f"dict[str, {python_type(rest)}]"
    if c == "O":
        return f"{python_type(rest)} | None"
    raise ValueError(f"no Python type for descriptor {desc!r}")
