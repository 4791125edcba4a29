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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["MOCHI", "PYTHON", "Spelling", "callable_", "handle", "mochi_type", "named", "parts", "references", "spell",
           "validate"]

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


@dataclass(frozen=True, slots=True)
class Spelling:
    """How one language writes the descriptor grammar (a walker per language would repeat the grammar)."""

    scalars: Mapping[str, str]
    """Code -> text for the one-letter codes (and `H`, whose index does not change the text)."""
    forms: Mapping[str, str]
    """One-argument code -> a template whose `{}` is the argument's spelling."""
    named: Callable[[str], str]
    """A named type's (`R<n>;`) name -> its spelling."""
    fun: Callable[[list[str], str | None], str]
    """A callable's parameter spellings and return spelling (None: no return value) -> its spelling."""


MOCHI = Spelling(
    scalars={"i": "int", "f": "float", "b": "bool", "s": "string", "Y": "list<int>", "V": "value", "H": "value"},
    forms={"L": "list<{}>", "T": "list<{}>", "A": "list<{}>", "D": "map<string, {}>", "K": "map<int, {}>",
           "S": "set<{}>", "O": "{}?"},
    named=lambda name: name,
    fun=lambda params, ret: f"fun({', '.join(params)})" + (f": {ret}" if ret is not None else ""),
)
"""DESIGN §6 Mochi (`n`, no value, has no spelling: a return of `n` is written by leaving the type out)."""

PYTHON = Spelling(
    scalars={"i": "int", "f": "float", "b": "bool", "s": "str", "Y": "list[int]", "V": "object", "H": "object",
             "n": "None"},
    forms={"L": "list[{}]", "T": "list[{}]", "A": "list[{}]", "D": "dict[str, {}]", "K": "dict[int, {}]",
           "S": "set[{}]", "O": "{} | None"},
    named=lambda name: f'"{name}"',
    fun=lambda params, ret: f"Callable[[{', '.join(params)}], {ret or 'None'}]",
)
"""The Python annotation of the Mochi-side value (documentation in the generated re-export module)."""


def spell(desc: str, names: Sequence[str], how: Spelling) -> str:
    """*desc* written the way *how* says; *names* spells `R<n>;`."""
    c, rest = desc[0], desc[1:]
    if c in how.scalars:
        return how.scalars[c]
    if c in how.forms:
        return how.forms[c].format(spell(rest, names, how))
    if c == "R":
        return how.named(names[int(rest[:-1])])
    if c == "C":
        *args, ret = parts(desc)
        return how.fun([spell(a, names, how) for a in args], None if ret == "n" else spell(ret, names, how))
    raise ValueError(f"no spelling for descriptor {desc!r}")


def mochi_type(desc: str, names: Sequence[str] = ()) -> str:
    """The Mochi spelling (DESIGN §6) of a descriptor other than `n`; *names* spells `R<n>;`."""
    return spell(desc, names, MOCHI)
