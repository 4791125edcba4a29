"""The one type-descriptor encoding shared by the C runtime, the shim emitter and the re-export module.

A descriptor is a prefix string: `i` int, `f` float, `b` bool, `s` str, `n` None (returns only),
`O<x>` x or None, `L<x>` list, `T<x>` any iterable Python returns (materialised into a list),
`D<x>` dict with str keys, `K<x>` dict with int keys, `S<x>` set, `Y` bytes, and `H<n>;` a handle:
an instance of the module's class number n. For example `list[dict[str, int | None]]` is `LDOi`.
`wrappers/rt_convert.c` walks the same grammar.
"""

from __future__ import annotations

import re

__all__ = ["MOCHI_SCALARS", "handle", "mochi_type", "validate"]

MOCHI_SCALARS = {"i": "int", "f": "float", "b": "bool", "s": "string", "Y": "list<int>"}
_UNARY = "OLTDKS"
_HANDLE = re.compile(r"H(\d+);")


def handle(index: int) -> str:
    return f"H{index};"


def validate(desc: str) -> None:
    """Raise ValueError unless *desc* is exactly one well-formed descriptor."""
    if _end(desc, 0) != len(desc):
        raise ValueError(f"malformed type descriptor {desc!r}")


def _end(desc: str, pos: int) -> int:
    if pos >= len(desc):
        raise ValueError(f"truncated type descriptor {desc!r}")
    c = desc[pos]
    if c in "ifbsnY":
        return pos + 1
    if c in _UNARY:
        return _end(desc, pos + 1)
    m = _HANDLE.match(desc, pos)
    if m:
        return m.end()
    raise ValueError(f"unknown code {c!r} in type descriptor {desc!r}")


def mochi_type(desc: str) -> str:
    """The Mochi spelling (DESIGN §6) of a parameter or return descriptor other than `n`."""
    c, rest = desc[0], desc[1:]
    if c in MOCHI_SCALARS:
        return MOCHI_SCALARS[c]
    if c in "LT":
        return f"list<{mochi_type(rest)}>"
    if c == "D":
        return f"map<string, {mochi_type(rest)}>"
    if c == "K":
        return f"map<int, {mochi_type(rest)}>"
    if c == "S":
        return f"set<{mochi_type(rest)}>"
    if c == "O":
        return f"{mochi_type(rest)}?"
    if c == "H":
        return "value"
    raise ValueError(f"no Mochi type for descriptor {desc!r}")
