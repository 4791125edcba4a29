"""The surface model: what one distribution offers Mochi, as frozen records with a JSON form.

A :class:`Surface` lists the translated externs (:class:`Function`, each with its :class:`Param`s and
type descriptors of :mod:`tasks.surface.typedesc`), the classes whose instances cross as handles,
the named Mochi types (records, sum types, enums), and every public item that got no binding
(:class:`Skip`, with a DESIGN §6 reason). The naming rules every generated name obeys live here too.
"""

from __future__ import annotations

import keyword
from dataclasses import asdict, dataclass, field
from typing import Any

from ..context import Context

__all__ = [
    "MOCHI_BUILTINS",
    "MOCHI_KEYWORDS",
    "ClassRef",
    "Field",
    "Function",
    "Param",
    "Refusal",
    "Skip",
    "Surface",
    "SurfaceOptions",
    "TypeDef",
    "lexable",
    "mochi_safe",
    "surface_options",
]

# Mochi hard keywords (both parsers) and Bool tokens: never usable as names.
MOCHI_KEYWORDS = frozenset({
    "test", "expect", "agent", "intent", "on", "stream", "emit", "type", "fun", "extern", "import", "return",
    "break", "continue", "let", "var", "if", "else", "then", "for", "while", "in", "generate", "match", "fetch",
    "load", "save", "package", "export", "fact", "rule", "all", "none", "when", "try", "catch", "not", "set",
    "omap", "async", "await", "spawn", "close", "true", "false",
})
# Mochi built-ins win over externs of the same name (T037/T039), so externs avoid them.
MOCHI_BUILTINS = frozenset({
    "print", "len", "count", "sum", "avg", "min", "max", "str", "keys", "values", "append", "has", "add", "input",
    "json", "now", "exists", "substring", "upper", "lower", "reduce", "contains",
})


class Refusal(Exception):
    """A type the closed table does not map; `reason` is a DESIGN §6 skip reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    name: str
    """The Python parameter name."""
    mochi_name: str
    type: str
    """A type descriptor (:mod:`tasks.surface.typedesc`)."""
    keyword: bool
    """Passed by keyword (it follows a left-out parameter, or is keyword-only)."""
    required: bool
    """The Python parameter has no default (every parameter of an extern is passed)."""
    varargs: bool = False
    """`*args`: a list whose items are spread into the call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    module: str
    """The module imported on first call."""
    name: str
    """The attribute path in `module` (`get`, `Session.merge`), or the attribute of the handle."""
    mochi_name: str
    params: tuple[Param, ...]
    ret: str
    doc: str
    kind: str = "call"
    """`call`, `new` (constructor), `method`, `getattr` (property or attribute), `setattr` (a property's
    setter), `constant`, or `cast` (a `value` checked against the return type, or a scalar made a `value`)."""
    item: str = ""
    """The public item this extern binds (`requests.Session.get`); overload variants and forms share it."""
    is_async: bool = False
    """An `async def`: the call's awaitable is run to completion on the event loop."""
    form: str = ""
    """The calling convention (DESIGN §6a): `plain`, `positional` or `with`; empty for casts."""
    foreign: bool = False
    """A member of a class of another distribution or of the standard library that the surface hands out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassRef:
    """A class whose instances cross as handles (`H<n>;` is the n-th of a surface's classes)."""

    module: str
    name: str
    methods: tuple[str, ...] = ()
    """For a protocol (no run-time `isinstance`): the attributes a value must have instead."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """A record field, a sum-type variant (payload `v`) or an enum member (no type)."""

    name: str
    """The Python field name, tuple position, or enum member name."""
    mochi_name: str
    type: str
    required: bool = True
    """False for a `TypedDict` key that may be absent (its type is then optional)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeDef:
    """A named Mochi type (`R<n>;` is the n-th of a surface's types).

    `kind` is `dataclass`, `namedtuple`, `typeddict` or `tuple` (a record `type Name { ... }`),
    `union` (a sum type, one variant per arm) or `enum` (a payload-less sum type).
    """

    kind: str
    mochi_name: str
    module: str
    """The Python class (dataclass, namedtuple, enum); empty for the structural kinds."""
    name: str
    fields: tuple[Field, ...]
    doc: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SurfaceOptions:
    """What the surface depends on besides the stubs: the target and the `[python]` settings."""

    python_version: tuple[int, int] = (3, 12)
    platform: str = "linux"
    trio: bool = False
    any_handle: bool = True
    """`[python].any = "handle"`: `Any` crosses as `value`, with checked `<alias>_as_*` casts."""
    monomorphise: tuple[tuple[str, str], ...] = ()
    """(`item`, `T`) pairs: the item's type variables instantiated with the Python type `T`."""


def surface_options(ctx: Context, trio: bool) -> SurfaceOptions:
    """The options of the project *ctx* describes; *trio*: the distribution runs its async code on trio (R12)."""
    return SurfaceOptions(python_version=(ctx.python_version[0], ctx.python_version[1]),
                          platform=ctx.marker_env["sys_platform"], trio=trio, any_handle=ctx.any_mode == "handle",
                          monomorphise=tuple((m[0], m[1]) for m in ctx.monomorphise))


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    item: str
    reason: str
    detail: str
    suggestion: str = ""
    """A hand-written `extern python fun` to start from (functions and methods), typed `value` throughout."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Surface:
    dist: str
    version: str
    provenance: str
    functions: tuple[Function, ...] = ()
    skipped: tuple[Skip, ...] = field(default=())
    classes: tuple[ClassRef, ...] = ()
    types: tuple[TypeDef, ...] = ()
    prefix: str = ""
    """What every generated type name starts with (`<prefix>_...`): the distribution's primary import name."""
    tops: tuple[str, ...] = ()
    """The Mochi-safe import names the externs start with, the primary one first (`attrs`, `attr`)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def counts(self) -> tuple[int, int, int]:
        """(translated, skipped, partially bound) public items of the distribution itself: an item with several
        forms or overloads counts once, members of other distributions' classes and the casts not at all."""
        translated = {f.item for f in self.functions if f.item and not f.foreign}
        skipped = {k.item for k in self.skipped if k.reason != "PartiallyBound"} - translated
        partial = {k.item for k in self.skipped if k.reason == "PartiallyBound"}
        return len(translated), len(skipped), len(partial)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Surface:
        funcs = tuple(Function(**{**f, "params": tuple(Param(**p) for p in f["params"])}) for f in data["functions"])
        return cls(dist=str(data["dist"]), version=str(data["version"]), provenance=str(data["provenance"]),
                   functions=funcs, skipped=tuple(Skip(**s) for s in data["skipped"]),
                   classes=tuple(ClassRef(**{**c, "methods": tuple(c.get("methods", ()))})
                                 for c in data.get("classes", [])),
                   types=tuple(TypeDef(**{**t, "fields": tuple(Field(**f) for f in t["fields"])})
                               for t in data.get("types", [])), prefix=str(data.get("prefix", "")),
                   tops=tuple(data.get("tops", ())))


_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def lexable(name: str) -> str:
    """*name* with every digit that is not part of its trailing run of digits spelled as a word.

    The real Mochi lexer starts a number at any digit and refuses an identifier character right after it
    (error[P043]), so a digit may only end a name: `ISO8601Highlighter` -> `ISOeightsixzerooneHighlighter`,
    `utf_8_decode` -> `utf_eight_decode`, while `sha256` and `item0` stay as they are.
    """
    tail = len(name) - len(name.rstrip("0123456789"))
    head, end = name[: len(name) - tail], name[len(name) - tail:]
    if not any(c.isdigit() for c in head):
        return name
    return "".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c for c in head) + end


def mochi_safe(name: str, taken: set[str] | None = None) -> str:
    """*name* made lexable (:func:`lexable`), then with trailing underscores until it is no Mochi keyword,
    Python keyword, builtin, or taken name."""
    taken = taken or set()
    name = lexable(name)
    while (name in MOCHI_KEYWORDS or name in MOCHI_BUILTINS or keyword.iskeyword(name) or name in taken
           or keyword.issoftkeyword(name)):
        name = lexable(name + "_")  # `item0` + `_` would put an identifier character after a digit
    return name
