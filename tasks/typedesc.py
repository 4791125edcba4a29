"""The one type-descriptor encoding shared by the C runtime, the shim emitter and the re-export module.

A descriptor is a prefix string:

- scalars: `i` int, `f` float, `b` bool, `s` str, `Y` bytes (a `list<int>` on the Mochi side),
  `n` None (returns only), `V` any Python object as an opaque `value` (`[python].any = "handle"`);
- one argument: `O<x>` x or None, `L<x>` list, `T<x>` any iterable Python returns (materialised),
  `A<x>` an async iterable Python returns (materialised on the event loop), `D<x>` dict with str keys,
  `K<x>` dict with int keys, `S<x>` set;
- numbered: `H<n>;` a handle (an instance of the surface's class n), `R<n>;` the surface's named type
  n (a record, a sum type or an enum);
- callables: `C<k>;<a1>...<ak><r>`, a function of k parameters returning r (`n`: nothing).

For example `list[dict[str, int | None]]` is `LDOi` and `Callable[[int], str]` is `C1;is`.
`wrappers/rt_convert.c` walks the same grammar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MOCHI_SCALARS", "callable_", "handle", "mochi_type", "named", "parts", "references", "validate"]

MOCHI_SCALARS = {"i": "int", "f": "float", "b": "bool", "s": "string", "Y": "list<int>", "V": "value"}
_UNARY = "OLTADKS"
_NUMBERED = re.compile(r"([HR])(\d+);")
_CALLABLE = re.compile(r"C(\d+);")


def handle(index: int) -> str:
    return f"H{index};"


def named(index: int) -> str:
    return f"R{index};"


def callable_(params: Sequence[str], ret: str) -> str:
    return f"C{len(params)};{''.join(params)}{ret}"


def validate(desc: str) -> None:
    """Raise ValueError unless *desc* is exactly one well-formed descriptor."""
    if _end(desc, 0) != len(desc):
        raise ValueError(f"malformed type descriptor {desc!r}")


def _end(desc: str, pos: int) -> int:
    if pos >= len(desc):
        raise ValueError(f"truncated type descriptor {desc!r}")
    c = desc[pos]
    if c in "ifbsnYV":
        return pos + 1
    if c in _UNARY:
        return _end(desc, pos + 1)
    m = _NUMBERED.match(desc, pos)
    if m:
        return m.end()
    m = _CALLABLE.match(desc, pos)
    if m:
        pos = m.end()
        for _ in range(int(m.group(1)) + 1):
            pos = _end(desc, pos)
        return pos
    raise ValueError(f"unknown code {c!r} in type descriptor {desc!r}")


def parts(desc: str) -> list[str]:
    """The descriptors of a callable's parameters followed by its return descriptor."""
    m = _CALLABLE.match(desc)
    if m is None:
        raise ValueError(f"{desc!r} is not a callable descriptor")
    out, pos = [], m.end()
    for _ in range(int(m.group(1)) + 1):
        end = _end(desc, pos)
        out.append(desc[pos:end])
        pos = end
    return out


def references(desc: str) -> list[int]:
    """The named types (`R<n>;`) *desc* mentions, in order."""
    return [int(m.group(2)) for m in _NUMBERED.finditer(desc) if m.group(1) == "R"]


def mochi_type(desc: str, names: Sequence[str] = ()) -> str:
    """The Mochi spelling (DESIGN §6) of a descriptor other than `n`; *names* spells `R<n>;`."""
    c, rest = desc[0], desc[1:]
    if c in MOCHI_SCALARS:
        return MOCHI_SCALARS[c]
    if c in "LTA":
        return f"list<{mochi_type(rest, names)}>"
    if c == "D":
        return f"map<string, {mochi_type(rest, names)}>"
    if c == "K":
        return f"map<int, {mochi_type(rest, names)}>"
    if c == "S":
        return f"set<{mochi_type(rest, names)}>"
    if c == "O":
        return f"{mochi_type(rest, names)}?"
    if c == "H":
        return "value"
    if c == "R":
        return names[int(rest[:-1])]
    if c == "C":
        *args, ret = parts(desc)
        sig = f"fun({', '.join(mochi_type(a, names) for a in args)})"
        return sig if ret == "n" else f"{sig}: {mochi_type(ret, names)}"
    raise ValueError(f"no Mochi type for descriptor {desc!r}")
