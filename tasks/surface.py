"""Surface stage: read stub documents with `ast` and map the public surface through the closed type table.

Internals: a :class:`_Surveyor` parses each module once (`.pyi` before `.py`), with
`if TYPE_CHECKING:`, `sys.version_info` and `sys.platform` branches evaluated for the target.
Names resolve through the module's imports (`import typing as t`, `from .x import y`, star
imports) and local aliases (`X = Union[...]`, `X: TypeAlias = ...`, bounded `TypeVar`s). Public
names follow `__all__` when present, else the leading-underscore rule (PEP 484 re-export rules in
stubs). Module-level functions become externs; classes become handles (`value`) with a
constructor, methods, properties and annotated attributes; module constants become zero-argument
getters. A type either maps to a descriptor (:mod:`tasks.typedesc`) or raises :class:`Refusal`
carrying a DESIGN §6 skip reason; refused items never become `any`.
"""

from __future__ import annotations

import ast
import importlib.util
import keyword
import operator
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import BridgeError
from .typedesc import callable_, handle, mochi_type, named, parts, references

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
    "build_surface",
    "mochi_safe",
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

_T = ("typing.", "typing_extensions.", "collections.abc.")
_SCALARS = {"builtins.int": "i", "builtins.float": "f", "builtins.bool": "b", "builtins.str": "s",
            "builtins.bytes": "Y", "builtins.bytearray": "Y", "typing.LiteralString": "s",
            "typing_extensions.LiteralString": "s"}
_LISTS = {"builtins.list", "typing.List", "typing_extensions.List"}
_SEQUENCES = {f"{p}{n}" for p in _T for n in ("Sequence", "MutableSequence", "Iterable", "Collection", "Iterator",
                                             "Generator", "Reversible")}
_DICTS = {"builtins.dict", "typing.Dict", *(f"{p}{n}" for p in _T for n in ("Mapping", "MutableMapping"))}
_SETS = {"builtins.set", "builtins.frozenset", "typing.Set", "typing.FrozenSet",
         *(f"{p}{n}" for p in _T for n in ("AbstractSet", "MutableSet", "Set"))}
_TUPLES = {"builtins.tuple", "typing.Tuple"}
_PASS_THROUGH = {f"{p}{n}" for p in ("typing.", "typing_extensions.") for n in ("Final", "Annotated", "ReadOnly",
                                                                                "Required", "NotRequired")}
_OPTIONAL = {"typing.Optional", "typing_extensions.Optional"}
_UNION = {"typing.Union", "typing_extensions.Union"}
_LITERAL = {"typing.Literal", "typing_extensions.Literal"}
_NONE = {"builtins.None", "types.NoneType", "typing.NoReturn", "typing.Never"}
_ANYLIKE = {"typing.Any": "Any", "typing_extensions.Any": "Any", "builtins.object": "object"}
_CALLABLE = {"typing.Callable", "collections.abc.Callable", "typing_extensions.Callable"}
_ASYNC_ITER = {f"{p}{n}" for p in _T for n in ("AsyncIterator", "AsyncIterable", "AsyncGenerator")}
_AWAITABLE = {f"{p}{n}" for p in _T for n in ("Awaitable", "Coroutine")}
_ENUMS = {"enum.Enum", "enum.IntEnum", "enum.StrEnum"}
_RECORD_DECORATORS = {"dataclass", "define", "frozen", "mutable", "attrs"}
_TYPE_ALIAS: tuple[type, ...] = (ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()  # `type X = ...`, 3.12+
# typeshed's standard-library stubs, shipped inside mypy, to recognise stdlib classes (found, not imported)
_STDLIB_STUBS = Path(getattr(importlib.util.find_spec("mypy"), "origin", None) or ".").parent / "typeshed" / "stdlib"
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq,
        ast.NotEq: operator.ne}


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
    """A type descriptor (:mod:`tasks.typedesc`)."""
    keyword: bool
    """Passed by keyword (it follows a left-out parameter, or is keyword-only)."""
    required: bool


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
    """`call`, `new` (constructor), `method`, `getattr` (property or attribute), `constant`, or `cast`
    (an `Any` handle checked against the return type)."""
    item: str = ""
    """The public item this extern binds (`requests.Session.get`); overload variants share it."""
    is_async: bool = False
    """An `async def`: the call's awaitable is run to completion on the event loop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassRef:
    """A class whose instances cross as handles (`H<n>;` is the n-th of a surface's classes)."""

    module: str
    name: str


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
    any_handle: bool = False
    """`[python].any = "handle"`: `Any` crosses as `value`, with checked `<alias>_as_*` casts."""
    monomorphise: tuple[tuple[str, str], ...] = ()
    """(`item`, `T`) pairs: the item's type variables instantiated with the Python type `T`."""


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
    """What every generated name starts with (`<prefix>_...`): the first import name, Mochi-safe."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Surface:
        funcs = tuple(Function(**{**f, "params": tuple(Param(**p) for p in f["params"])}) for f in data["functions"])
        return cls(dist=str(data["dist"]), version=str(data["version"]), provenance=str(data["provenance"]),
                   functions=funcs, skipped=tuple(Skip(**s) for s in data["skipped"]),
                   classes=tuple(ClassRef(**c) for c in data.get("classes", [])),
                   types=tuple(TypeDef(**{**t, "fields": tuple(Field(**f) for f in t["fields"])})
                               for t in data.get("types", [])), prefix=str(data.get("prefix", "")))


def mochi_safe(name: str, taken: set[str] | None = None) -> str:
    """*name* with trailing underscores until it is no Mochi keyword, Python keyword, builtin, or taken name."""
    taken = taken or set()
    while (name in MOCHI_KEYWORDS or name in MOCHI_BUILTINS or keyword.iskeyword(name) or name in taken
           or keyword.issoftkeyword(name)):
        name += "_"
    return name


@dataclass
class _Module:
    qualname: str
    tree: ast.Module
    imports: dict[str, str]
    """Local name -> qualified name."""
    aliases: dict[str, ast.expr]
    defs: dict[str, ast.stmt]
    exports: list[str] | None
    is_stub: bool
    overloads: dict[tuple[str, str], list[ast.FunctionDef]]
    """(class name or "", function name) -> its `@overload` variants, in order."""
    stars: list[str]
    typevars: dict[str, ast.Call]


def _module_file(root: Path, qualname: str) -> Path | None:
    base = root.joinpath(*qualname.split("."))
    for cand in (base / "__init__.pyi", base.with_suffix(".pyi"), base / "__init__.py", base.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    return {ast.unparse(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] for d in node.decorator_list}


class _Surveyor:
    """Loads modules of one distribution (and stdlib stubs, to recognise classes) and maps types."""

    def __init__(self, root: Path, options: SurfaceOptions, prefix: str) -> None:
        self.root = root
        self.options = options
        self.python_version = options.python_version
        self.platform = options.platform
        self.cache: dict[tuple[Path, str], _Module | None] = {}
        self.classes: list[ClassRef] = []
        self.tops: set[str] = set()
        self.prefix = prefix
        """The alias type names start with: the distribution's first import name."""
        self.types: list[TypeDef] = []
        self.type_keys: dict[tuple[str, ...], str] = {}
        """A class or structural shape -> its descriptor; `pending` while a record's fields are mapped."""
        self.used: set[str] = set()
        """Every Mochi name taken in the shim: externs, types and variants share one namespace."""

    # --- loading ------------------------------------------------------------------------------
    def load(self, qualname: str, root: Path | None = None) -> _Module | None:
        root = root or self.root
        key = (root, qualname)
        if key in self.cache:
            return self.cache[key]
        self.cache[key] = None
        path = _module_file(root, qualname)
        if path is None:
            return None
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            return None
        package = qualname if path.stem == "__init__" else qualname.rpartition(".")[0]
        mod = _Module(qualname, tree, {}, {}, {}, None, path.suffix == ".pyi", {}, [], {})
        for node in self._flat(tree.body):
            self._record(mod, node, package)
        self.cache[key] = mod
        return mod

    def _record(self, mod: _Module, node: ast.stmt, package: str) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                mod.imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for a in node.names:
                if a.name == "*":
                    mod.stars.append(base)
                else:
                    mod.imports[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            mod.defs[node.name] = node
            if isinstance(node, ast.FunctionDef) and "overload" in _decorators(node):
                mod.overloads.setdefault(("", node.name), []).append(node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                mod.exports = [e.value for e in node.value.elts
                               if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            elif isinstance(node.value, ast.Call) and ast.unparse(node.value.func).rsplit(".", 1)[-1] in (
                    "TypeVar", "ParamSpec", "TypeVarTuple"):
                mod.typevars[target] = node.value
            else:
                mod.aliases[target] = node.value
        elif (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__"
              and isinstance(node.value, ast.List | ast.Tuple) and mod.exports is not None):
            mod.exports += [e.value for e in node.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if ast.unparse(node.annotation).endswith("TypeAlias") and node.value is not None:
                mod.aliases[node.target.id] = node.value
            else:
                mod.defs[node.target.id] = node
        elif _TYPE_ALIAS and isinstance(node, _TYPE_ALIAS):
            alias_node: Any = node  # ast.TypeAlias exists only on 3.12+
            mod.aliases[alias_node.name.id] = alias_node.value

    def _flat(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """Statements with `TYPE_CHECKING`, `sys.version_info` and `sys.platform` branches resolved."""
        out: list[ast.stmt] = []
        for node in body:
            if isinstance(node, ast.If):
                taken = self._condition(node.test)
                if taken is True:
                    out.extend(self._flat(node.body))
                elif taken is False:
                    out.extend(self._flat(node.orelse))
                else:
                    out.extend(self._flat(node.body))  # unknown condition: the first branch, as type checkers do
            elif isinstance(node, ast.Try):
                out.extend(self._flat(node.body))
            else:
                out.append(node)
        return out

    def _condition(self, test: ast.expr) -> bool | None:
        text = ast.unparse(test)
        if text.rsplit(".", 1)[-1] == "TYPE_CHECKING":
            return True
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._condition(test.operand)
            return None if inner is None else not inner
        if isinstance(test, ast.BoolOp):
            values = [self._condition(v) for v in test.values]
            if None in values:
                return None
            return all(values) if isinstance(test.op, ast.And) else any(values)
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _CMP:
            left, right = ast.unparse(test.left), test.comparators[0]
            cmp = _CMP[type(test.ops[0])]
            try:
                value = ast.literal_eval(right)
            except ValueError:
                return None
            if left.startswith("sys.version_info") and isinstance(value, tuple):
                return bool(cmp(self.python_version[: len(value)], value))
            if left == "sys.platform" and isinstance(value, str):
                return bool(cmp(self.platform, value))
        if isinstance(test, ast.Call) and ast.unparse(test.func) == "sys.platform.startswith" and test.args:
            arg = test.args[0]
            return isinstance(arg, ast.Constant) and self.platform.startswith(str(arg.value))
        return None

    def binding(self, mod: _Module, name: str, depth: int = 0) -> tuple[_Module, str] | None:
        """The module (and local name) that binds *name* as seen from *mod* - a definition, a type alias or a
        TypeVar - following imports and star imports into this distribution and the standard library."""
        if name in mod.defs or name in mod.aliases or name in mod.typevars:
            return mod, name
        if depth > 12:
            return None
        candidates = [mod.imports[name]] if name in mod.imports else []
        for qual in [*candidates, *(f"{star}.{name}" for star in mod.stars)]:
            owner = self.load_qualified_module(qual.rpartition(".")[0])
            found = self.binding(owner, qual.rpartition(".")[2], depth + 1) if owner is not None else None
            if found is not None:
                return found
        return None

    def find(self, mod: _Module, name: str) -> tuple[_Module, ast.stmt] | None:
        """The definition (function, class or annotated name) *name* refers to in *mod*."""
        hit = self.binding(mod, name)
        return (hit[0], hit[0].defs[hit[1]]) if hit is not None and hit[1] in hit[0].defs else None

    def find_alias(self, mod: _Module, name: str) -> tuple[_Module, str] | None:
        """The module and name of the type alias or TypeVar *name* refers to in *mod*."""
        hit = self.binding(mod, name)
        return hit if hit is not None and hit[1] not in hit[0].defs else None

    def load_qualified_module(self, mod_name: str) -> _Module | None:
        """A module of this distribution, or of the standard library's stubs."""
        if not mod_name:
            return None
        return self.load(mod_name, self.root if mod_name.partition(".")[0] in self.tops else _STDLIB_STUBS)

    def names_module(self, mod: _Module, name: str, depth: int = 0) -> bool:
        """Whether *name* in *mod* is an imported module (`from . import sessions`, `import x.y as z`)."""
        qual = mod.imports.get(name)
        if qual is None or depth > 12:
            return False
        if self.load_qualified_module(qual) is not None:
            return True
        owner = self.load_qualified_module(qual.rpartition(".")[0])
        return owner is not None and self.names_module(owner, qual.rpartition(".")[2], depth + 1)

    def find_qualified(self, qual: str) -> tuple[_Module, ast.stmt] | None:
        mod_name, _, attr = qual.rpartition(".")
        other = self.load_qualified_module(mod_name)
        return None if other is None else self.find(other, attr)

    # --- handles and named types ----------------------------------------------------------------
    def class_handle(self, mod: _Module, node: ast.ClassDef) -> str:
        ref = ClassRef(module=mod.qualname, name=node.name)
        if ref not in self.classes:
            self.classes.append(ref)
        return handle(self.classes.index(ref))

    def class_type(self, mod: _Module, node: ast.ClassDef) -> str:
        """`R<n>;` for a record (dataclass, NamedTuple, TypedDict) or enum, else the class's handle.

        A record whose required fields do not all map, or an enum with fewer than two members,
        crosses as a handle instead; so does a record that contains itself.
        """
        key = ("class", mod.qualname, node.name)
        known = self.type_keys.get(key)
        if known == "pending":
            raise Refusal("UnsupportedTypingConstruct", f"{node.name} contains itself: it crosses as a handle")
        if known is not None:
            return known
        kind = self.class_kind(mod, node)
        if kind is None:
            if self.is_protocol(mod, node) and "runtime_checkable" not in _decorators(node):
                raise Refusal("UnsupportedTypingConstruct", f"{node.name} is a Protocol: a structural type with no "
                              "run-time check")
            return self.class_handle(mod, node)
        self.type_keys[key] = "pending"
        try:
            fields = self._enum_members(node) if kind == "enum" else self.record_fields(mod, node, kind)
        except Refusal:
            fields = []
        if len(fields) < (2 if kind == "enum" else 1):  # `type E = A` alone is an alias, `type R {}` no record
            desc = self.class_handle(mod, node)
        else:
            desc = self.add_type(kind, node.name, fields, module=mod.qualname, name=node.name, doc=_doc(node))
        self.type_keys[key] = desc
        return desc

    def is_protocol(self, mod: _Module, node: ast.ClassDef) -> bool:
        """A `typing.Protocol` class (its own bases name Protocol: subclasses of a protocol are classes)."""
        for base in node.bases:
            qual = _Mapper(self, mod).qualify(base.value if isinstance(base, ast.Subscript) else base) or ""
            if qual in ("typing.Protocol", "typing_extensions.Protocol"):
                return True
        return False

    def class_kind(self, mod: _Module, node: ast.ClassDef, depth: int = 0) -> str | None:
        own = mod.qualname.split(".")[0] in self.tops  # records only from this distribution; enums from anywhere
        if own and _decorators(node) & _RECORD_DECORATORS:
            return "dataclass"
        for base in node.bases:
            qual = _Mapper(self, mod).qualify(base.value if isinstance(base, ast.Subscript) else base) or ""
            if qual in _ENUMS:
                return "enum"
            if qual.rpartition(".")[2] in ("NamedTuple", "TypedDict") and qual.startswith(("typing", "typing_ext")):
                return ("namedtuple" if qual.endswith("NamedTuple") else "typeddict") if own else None
            found = self.find_qualified(qual) if qual and not qual.startswith("builtins.") and depth < 8 else None
            if found is not None and isinstance(found[1], ast.ClassDef):
                inherited = self.class_kind(found[0], found[1], depth + 1)
                if inherited in ("typeddict", "enum") and (own or inherited == "enum"):
                    return inherited
        return None

    def members(self, mod: _Module, node: ast.ClassDef, seen: set[str] | None = None
                ) -> dict[str, tuple[_Module, ast.stmt, ast.ClassDef]]:
        """Members of *node* and of its bases in this distribution (the class's own win)."""
        seen = set() if seen is None else seen
        out: dict[str, tuple[_Module, ast.stmt, ast.ClassDef]] = {}
        key = f"{mod.qualname}.{node.name}"
        if key in seen:
            return out
        seen.add(key)
        for base in reversed(node.bases):
            qual = _Mapper(self, mod).qualify(base.value if isinstance(base, ast.Subscript) else base)
            found = self.find_qualified(qual) if qual and not qual.startswith("builtins.") else None
            if found and isinstance(found[1], ast.ClassDef) and found[0].qualname.split(".")[0] in self.tops:
                out.update(self.members(found[0], found[1], seen))
        for member in self._flat(node.body):
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                variants = mod.overloads.setdefault((node.name, member.name), [])
                if isinstance(member, ast.FunctionDef) and "overload" in _decorators(member) and not any(
                        v is member for v in variants):
                    variants.append(member)
                out[member.name] = (mod, member, node)
            elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                out[member.target.id] = (mod, member, node)
        return out

    def record_fields(self, mod: _Module, node: ast.ClassDef, kind: str, position: str = "return") -> list[Field]:
        """The fields a record (or a handle class's field constructor, *position* `param`) is built from:
        annotated, not class variables, constructor arguments. An unmappable optional field is left out."""
        total = next((k.value.value for k in node.keywords if k.arg == "total" and isinstance(k.value, ast.Constant)),
                     True)
        fields: list[Field] = []
        taken: set[str] = set()
        for name, (owner_mod, member, owner) in self.members(mod, node).items():
            if not isinstance(member, ast.AnnAssign) or _is_classvar(member.annotation):
                continue
            if isinstance(member.value, ast.Call) and any(  # `field(init=False)`: not a constructor argument
                    k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in member.value.keywords):
                continue
            shown = ast.unparse(member.annotation)
            if kind == "typeddict":
                required = not shown.startswith(("NotRequired", "typing.NotRequired", "typing_extensions.NotRequired"))
                required = required and (bool(total) or shown.startswith(("Required", "typing.Req", "typing_ext")))
            else:
                required = member.value is None
            try:
                desc = _Mapper(self, owner_mod, owner).map(member.annotation, position)
                if desc == "n":
                    raise Refusal("UnsupportedTypingConstruct", f"field {name!r} is annotated None")
            except Refusal as exc:
                if required:
                    raise Refusal(exc.reason, f"field {name!r}: {exc.detail}") from None
                continue  # an optional field is left out: its default applies
            if kind == "typeddict" and not required and not desc.startswith("O"):
                desc = "O" + desc
            mname = mochi_safe(name, taken)
            taken.add(mname)
            fields.append(Field(name=name, mochi_name=mname, type=desc, required=required))
        return fields

    def _enum_members(self, node: ast.ClassDef) -> list[Field]:
        out = []
        for member in self._flat(node.body):
            if isinstance(member, ast.Assign) and len(member.targets) == 1 and isinstance(member.targets[0], ast.Name):
                name = member.targets[0].id
            elif (isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name)
                  and not _is_classvar(member.annotation)):
                name = member.target.id
            else:
                continue
            if not name.startswith("_"):
                out.append(Field(name=name, mochi_name=name, type=""))
        return out

    def add_type(self, kind: str, label: str, fields: list[Field], module: str = "", name: str = "",
                 doc: str = "") -> str:
        """Name and append a type; variants are named `<Type>_<label>`, unique in the whole shim."""
        tname = mochi_safe(f"{self.prefix}_{label}", self.used)
        self.used.add(tname)
        if kind in ("union", "enum"):
            renamed = []
            for f in fields:
                vname = mochi_safe(f"{tname}_{f.mochi_name}", self.used)
                self.used.add(vname)
                renamed.append(Field(name=f.name, mochi_name=vname, type=f.type, required=f.required))
            fields = renamed
        self.types.append(TypeDef(kind=kind, mochi_name=tname, module=module, name=name, fields=tuple(fields),
                                  doc=doc))
        return named(len(self.types) - 1)

    def structural(self, kind: str, descs: list[str]) -> str:
        """The record of a fixed tuple, or the sum type of a union's arms (one per distinct shape)."""
        key = (kind, *descs)
        if key not in self.type_keys:
            labels = [self.label(d) for d in descs]
            if kind == "tuple":
                fields = [Field(name=str(i), mochi_name=f"item{i}", type=d) for i, d in enumerate(descs)]
                self.type_keys[key] = self.add_type(kind, "Tuple_" + "_".join(labels), fields)
            else:
                fields = [Field(name=str(i), mochi_name=lab, type=d) for i, (lab, d) in enumerate(zip(labels, descs,
                                                                                                    strict=True))]
                self.type_keys[key] = self.add_type(kind, "_or_".join(labels), fields)
        return self.type_keys[key]

    def label(self, desc: str) -> str:
        """A short readable name for a descriptor, used to name structural types and variants."""
        c, rest = desc[0], desc[1:]
        simple = {"i": "Int", "f": "Float", "b": "Bool", "s": "Str", "Y": "Bytes", "V": "Value", "C": "Fun",
                  "n": "None"}
        if c in simple:
            return simple[c]
        nested = {"L": "List", "T": "List", "A": "List", "D": "Map", "K": "IntMap", "S": "Set", "O": "Opt"}
        if c in nested:
            return nested[c] + self.label(rest)
        if c == "H":
            return self.classes[int(rest[:-1])].name
        t = self.types[int(rest[:-1])]
        return t.name or ("Tuple" if t.kind == "tuple" else "Union")

    def runtime_kinds(self, desc: str) -> set[str]:
        """What a value of *desc* is at run time, to refuse unions whose arms overlap (`OpenUnion`)."""
        c = desc[0]
        simple = {"i": "int", "f": "float", "b": "bool", "s": "str", "Y": "bytes", "L": "seq", "T": "seq", "A": "seq",
                  "D": "dict", "K": "dict", "S": "set", "C": "callable", "V": "any"}
        if c in simple:
            return {simple[c]}
        index = int(desc[1:-1])
        if c == "H":
            return {f"class:{self.classes[index].module}.{self.classes[index].name}"}
        t = self.types[index]
        return {"tuple": {"seq"}, "typeddict": {"dict"}, "namedtuple": {"seq", f"class:{t.module}.{t.name}"}}.get(
            t.kind, {f"class:{t.module}.{t.name}"})


class _Mapper:
    """Maps annotations in one module to descriptors; *position* is `param` or `return`."""

    def __init__(self, surveyor: _Surveyor, mod: _Module, self_class: ast.ClassDef | None = None,
                 subst: ast.expr | None = None) -> None:
        self.sv = surveyor
        self.mod = mod
        self.self_class = self_class
        self.subst = subst
        """`[python].monomorphise`: the type every type variable stands for."""

    def qualify(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.mod.imports:
                return self.mod.imports[node.id]
            if node.id in self.mod.aliases and _self_alias(self.mod.aliases[node.id], node.id):
                return f"builtins.{node.id}"  # `str = str` (a compat module) names the builtin
            if node.id in self.mod.defs or node.id in self.mod.aliases or node.id in self.mod.typevars:
                return f"{self.mod.qualname}.{node.id}"
            for star in self.mod.stars:
                if self.sv.find_qualified(f"{star}.{node.id}") is not None:
                    return f"{star}.{node.id}"
            return f"builtins.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base.removeprefix('builtins.')}.{node.attr}" if base else None
        if isinstance(node, ast.Constant) and node.value is None:
            return "builtins.None"
        return None

    def map(self, node: ast.expr, position: str, depth: int = 0) -> str:
        if depth > 20:
            raise Refusal("UnsupportedTypingConstruct", "type nests too deeply")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            try:
                node = ast.parse(text, mode="eval").body
            except SyntaxError:
                raise Refusal("ForwardRef", f"unparsable string annotation {text!r}") from None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union(_flatten_or(node), position, depth)
        if isinstance(node, ast.Starred) or (isinstance(node, ast.Subscript) and (self.qualify(node.value) or "")
                                             .endswith(".Unpack")):
            raise Refusal("TypeVarTuple", f"{ast.unparse(node)} unpacks a variadic type")
        if isinstance(node, ast.Name) and node.id in self.mod.aliases and node.id not in self.mod.imports:
            target = self.mod.aliases[node.id]
            if not _self_alias(target, node.id):
                return self.map(target, position, depth + 1)
        if isinstance(node, ast.Subscript):
            return self._generic(node, position, depth)
        return self._simple(node, position, depth)

    def _generic(self, node: ast.Subscript, position: str, depth: int) -> str:
        origin = self.qualify(node.value)
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        shown = ast.unparse(node)
        if origin in _PASS_THROUGH:
            return self.map(args[0], position, depth + 1)
        if origin in _OPTIONAL and len(args) == 1:
            return self._union([args[0], ast.Constant(None)], position, depth)
        if origin in _UNION:
            return self._union(args, position, depth)
        if origin in _LITERAL:
            kinds = {type(a.value) for a in args if isinstance(a, ast.Constant)}
            scalar = {int: "i", str: "s", bool: "b", float: "f", bytes: "Y"}
            if len(kinds) == 1 and len(args) == len([a for a in args if isinstance(a, ast.Constant)]):
                kind = next(iter(kinds))
                if kind in scalar:
                    return scalar[kind]
            raise Refusal("UnsupportedTypingConstruct", f"{shown} mixes literal kinds")
        if origin in _ASYNC_ITER:
            if position != "return":
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: an async iterator is materialised on return "
                              "only")
            return "A" + self._element(args[0], position, depth, node)
        if origin in _AWAITABLE:
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: awaitables cross only as the result of an async "
                          "function")
        if origin in _CALLABLE:
            return self._callable(args, position, depth, shown)
        if origin in ("builtins.type", "typing.Type"):
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: classes as values are not in the type table")
        if origin in _TUPLES:
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                return ("T" if position == "return" else "L") + self._element(args[0], position, depth, node)
            if not args or (len(args) == 1 and isinstance(args[0], ast.Tuple) and not args[0].elts):
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: the empty tuple has no record")
            descs = [self._element(a, position, depth, node) for a in args]
            return self.sv.structural("tuple", descs)
        if origin in _LISTS and len(args) == 1:
            return "L" + self._element(args[0], position, depth, node)
        if origin in _SEQUENCES and len(args) >= 1:
            return ("T" if position == "return" else "L") + self._element(args[0], position, depth, node)
        if origin in _SETS and len(args) == 1:
            elem = self._element(args[0], position, depth, node)
            if elem not in "ifbs":
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: set elements must be scalars")
            return "S" + elem
        if origin in _DICTS and len(args) == 2:
            key = self.map(args[0], position, depth + 1)
            if key not in ("s", "i"):
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: map keys must be str or int")
            return ("D" if key == "s" else "K") + self._element(args[1], position, depth, node)
        if origin and not origin.startswith(("builtins.", "typing.", "typing_extensions.", "collections.abc.")):
            # A generic class of the package or the standard library: type arguments are erased at run time,
            # so `ndarray[S, D]` is a handle checked against ndarray. A generic alias maps as its definition.
            found = self.sv.find_qualified(origin)
            if found is not None and isinstance(found[1], ast.ClassDef):
                return self.sv.class_type(found[0], found[1])
            owner = self.sv.load_qualified_module(origin.rpartition(".")[0])
            hit = self.sv.find_alias(owner, origin.rpartition(".")[2]) if owner is not None else None
            if hit is not None and hit[1] in hit[0].aliases:
                return _Mapper(self.sv, hit[0], subst=self.subst).map(ast.Name(hit[1]), position, depth + 1)
        raise Refusal("UnsupportedTypingConstruct", f"{shown} is not in the type table")

    def _simple(self, node: ast.expr, position: str, depth: int) -> str:
        qual = self.qualify(node)
        shown = ast.unparse(node)
        if qual is None:
            raise Refusal("UnsupportedTypingConstruct", f"{shown} is not a type")
        if qual in _SCALARS:
            return _SCALARS[qual]
        if qual in _NONE:
            return "n"
        if qual in _ANYLIKE:
            if self.sv.options.any_handle:
                return "V"
            raise Refusal("UnsupportedTypingConstruct", f"{_ANYLIKE[qual]} cannot be typed in Mochi (opt in with "
                          '[python].any = "handle")')
        if qual == "builtins.complex":
            raise Refusal("NoComplexType", "complex has no Mochi type")
        if qual in ("builtins.type", "typing.Type"):
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: classes as values are not in the type table")
        if qual in _LISTS | _DICTS | _SETS | _SEQUENCES | _TUPLES:
            raise Refusal("UnsupportedTypingConstruct", f"bare {shown} has no element type")
        if qual.endswith((".Self", "typing.Self")) and self.self_class is not None:
            return self.sv.class_type(self.mod, self.self_class)
        local = qual.rpartition(".")[2]
        if qual.startswith(f"{self.mod.qualname}.") and local in self.mod.typevars:
            return self._typevar(self.mod.typevars[local], position, depth)
        found = self.sv.find_qualified(qual) if not qual.startswith("builtins.") else None
        if found is None and not qual.startswith("builtins."):  # a TypeVar or alias of another module
            owner = self.sv.load_qualified_module(qual.rpartition(".")[0])
            hit = self.sv.find_alias(owner, local) if owner is not None else None
            if hit is not None:
                return _Mapper(self.sv, hit[0], subst=self.subst).map(ast.Name(hit[1]), position, depth + 1)
        if found is not None:
            defmod, defnode = found
            if isinstance(defnode, ast.ClassDef):
                # find_qualified only looks in this distribution and in the standard library's stubs
                return self.sv.class_type(defmod, defnode)
            if local in defmod.typevars:
                return _Mapper(self.sv, defmod).map(ast.Name(local), position, depth + 1)
            if local in defmod.aliases:
                return _Mapper(self.sv, defmod).map(defmod.aliases[local], position, depth + 1)
        if qual.startswith("builtins.") and qual[9:] not in _BUILTIN_NAMES:
            raise Refusal("ForwardRef", f"{shown} does not resolve to a known type")
        if qual.startswith(("typing.", "typing_extensions.")):
            name = qual.rpartition(".")[2]
            if name in ("ParamSpec", "TypeVarTuple"):
                raise Refusal(name, f"{shown}")
            raise Refusal("UnsupportedTypingConstruct", f"{shown} is not in the type table")
        raise Refusal("ForwardRef", f"{shown} ({qual}) does not resolve to a class of this distribution or the "
                      "standard library")

    def _typevar(self, call: ast.Call, position: str, depth: int) -> str:
        kind = ast.unparse(call.func).rsplit(".", 1)[-1]
        if kind in ("ParamSpec", "TypeVarTuple"):
            raise Refusal(kind, f"{ast.unparse(call)}")
        if self.subst is not None:
            return self.map(self.subst, position, depth + 1)
        bound = next((k.value for k in call.keywords if k.arg == "bound"), None)
        if bound is not None:
            return self.map(bound, position, depth + 1)
        if len(call.args) > 1:
            return self._union(list(call.args[1:]), position, depth)
        if self.sv.options.any_handle:
            return "V"  # generics are erased at run time: an unbounded type variable holds any value, like Any
        raise Refusal("UnsupportedTypingConstruct", f"unbounded {ast.unparse(call)}: list it under "
                      "[python].monomorphise to instantiate it, or opt in to [python].any = \"handle\"")

    def _element(self, node: ast.expr, position: str, depth: int, whole: ast.expr) -> str:
        desc = self.map(node, position, depth + 1)
        if desc == "n":
            raise Refusal("UnsupportedTypingConstruct", f"{ast.unparse(whole)}: None as an element type")
        return desc

    def _callable(self, args: list[ast.expr], position: str, depth: int, shown: str) -> str:
        if len(args) != 2:
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: bare Callable has no signature")
        params, ret = args
        if isinstance(params, ast.Constant) and params.value is Ellipsis:
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: Callable[..., R] has no parameter list")
        if not isinstance(params, ast.List):
            name = self.qualify(params) or ""
            local = name.rpartition(".")[2]
            if "Concatenate" in ast.unparse(params) or local in self.mod.typevars:
                raise Refusal("ParamSpec", f"{shown}: a ParamSpec signature has no fixed parameters")
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: unrecognised parameter list")
        # the callee calls a callback with values: its parameters flow the other way
        inner = "return" if position == "param" else "param"
        descs = [self._element(a, inner, depth, params) for a in params.elts]
        return callable_(descs, self.map(ret, position, depth + 1))

    def _union(self, arms: list[ast.expr], position: str, depth: int) -> str:
        mapped: list[str] = []
        has_none = False
        for arm in arms:
            if self.qualify(arm) in _ANYLIKE:
                raise Refusal("OpenUnion", f"{' | '.join(ast.unparse(a) for a in arms)} has an Any arm")
            desc = self.map(arm, position, depth + 1)
            if desc == "n":
                has_none = True
            elif desc.removeprefix("O") not in mapped:
                mapped.append(desc.removeprefix("O"))
                has_none = has_none or desc.startswith("O")
        if "i" in mapped and "f" in mapped:
            mapped.remove("i")  # int | float is a float (an int widens at the boundary)
        opt = "O" if has_none else ""
        if not mapped:
            return "n"
        shown = " | ".join(ast.unparse(a) for a in arms)
        if len(mapped) == 1:
            if opt and mapped[0].startswith("C") and parts(mapped[0])[-1] != "n":
                # `fun(A): R?` reads as a function returning `R?`: an optional callable that returns a value has
                # no Mochi spelling
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: an optional callable that returns a value "
                              "cannot be written in Mochi")
            return opt + mapped[0]
        seen: dict[str, str] = {}
        for desc in mapped:
            for kind in self.sv.runtime_kinds(desc):
                if kind == "any" or kind in seen:
                    names = [t.mochi_name for t in self.sv.types]
                    raise Refusal("OpenUnion", f"{shown}: arms {mochi_type(seen.get(kind, desc), names)} and "
                                  f"{mochi_type(desc, names)} overlap at run time")
                seen[kind] = desc
        return opt + self.sv.structural("union", mapped)


_BUILTIN_NAMES = frozenset({"int", "float", "bool", "str", "bytes", "bytearray", "list", "dict", "set", "frozenset",
                            "tuple", "object", "type", "complex", "None", "memoryview", "range", "slice"})


def _constant_type(node: ast.AnnAssign) -> str | None:
    """`X: Final = 3`: a bare `Final` takes its type from the literal value (PEP 591)."""
    if ast.unparse(node.annotation) not in ("Final", "typing.Final", "typing_extensions.Final", "t.Final"):
        return None
    value = node.value.value if isinstance(node.value, ast.Constant) else None
    return {bool: "b", int: "i", float: "f", str: "s", bytes: "Y"}.get(type(value)) if value is not None else None


def _self_alias(target: ast.expr, name: str) -> bool:
    return isinstance(target, ast.Name) and target.id == name


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_or(node.left) + _flatten_or(node.right)
    return [node]


def _doc(node: ast.AST) -> str:
    text = ast.get_docstring(node) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else ""
    first = (text or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())[:200]


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef, mapper: _Mapper, skip_first: bool,
            taken: set[str]) -> list[Param]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults_from = len(positional) - len(a.defaults)
    params: list[Param] = []
    dropped = False
    for i, arg in enumerate(positional):
        if skip_first and i == 0:
            continue
        required = i < defaults_from
        desc = _param_type(arg, mapper, required)
        posonly = i < len(a.posonlyargs)
        if desc is None or (dropped and posonly):
            dropped = True
            continue
        mname = mochi_safe(arg.arg, taken)
        taken.add(mname)
        params.append(Param(name=arg.arg, mochi_name=mname, type=desc, keyword=dropped, required=required))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        desc = _param_type(arg, mapper, default is None)
        if desc is None:
            continue
        mname = mochi_safe(arg.arg, taken)
        taken.add(mname)
        params.append(Param(name=arg.arg, mochi_name=mname, type=desc, keyword=True, required=default is None))
    if any(p.required and p.keyword for p in params) and any(not p.required for p in params):
        raise Refusal("UnsupportedTypingConstruct", "required keyword-only parameters after optional ones")
    return params


def _param_type(arg: ast.arg, mapper: _Mapper, required: bool) -> str | None:
    """The descriptor of a parameter; None when an optional one is left out (its default applies)."""
    try:
        if arg.annotation is None:
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} has no annotation")
        desc = mapper.map(arg.annotation, "param")
        if desc == "n":
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} is annotated None")
        return desc
    except Refusal as exc:
        if required:
            raise Refusal(exc.reason, f"parameter {arg.arg!r}: {exc.detail}") from None
        return None


def _suggest(node: ast.FunctionDef | ast.AsyncFunctionDef, mochi: str, kind: str) -> str:
    """A starting point for a hand-written binding: the required parameters, everything typed `value`."""
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    required = positional[: len(positional) - len(a.defaults)]
    if kind in ("method", "getattr", "new") or (required and required[0].arg in ("self", "cls")):
        required = required[1:]
    names = (["self"] if kind in ("method", "getattr") else []) + [mochi_safe(arg.arg) for arg in required]
    names += [mochi_safe(arg.arg) for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    return f"extern python fun {mochi}({', '.join(f'{n}: value' for n in names)}): value"


class _Builder:
    """Collects the externs and skips of one distribution."""

    def __init__(self, sv: _Surveyor) -> None:
        self.sv = sv
        self.trio = sv.options.trio
        self.functions: list[Function] = []
        self.skipped: list[Skip] = []
        self.used = sv.used
        self.bound: set[tuple[str, str]] = set()
        """(defining module, name) of every definition already exported."""
        self.mono: dict[str, list[str]] = {}
        for item, t in sv.options.monomorphise:
            self.mono.setdefault(item, []).append(t)
        self.mono_used: set[str] = set()

    def add(self, fn: Function) -> None:
        name = mochi_safe(fn.mochi_name, self.used)
        self.used.add(name)
        self.functions.append(Function(module=fn.module, name=fn.name, mochi_name=name, params=fn.params,
                                       ret=fn.ret, doc=fn.doc, kind=fn.kind, item=fn.item, is_async=fn.is_async))

    def skip(self, item: str, exc: Refusal, suggestion: str = "") -> None:
        self.skipped.append(Skip(item=item, reason=exc.reason, detail=exc.detail, suggestion=suggestion))

    def function(self, item: str, mod: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef, module: str,
                 path: str, mochi: str, kind: str = "call", owner: ast.ClassDef | None = None) -> None:
        """Bind one function; each `@overload` variant that maps becomes its own `<name>_<k>` extern.

        A `[python].monomorphise` entry for *item* adds `<name>_<T>`, its type variables instantiated.
        """
        skips_before = len(self.skipped)
        self._bind(item, mod, node, module, path, mochi, kind, owner, None)
        for t in self.mono.get(item, []):
            self.mono_used.add(item)
            try:
                subst = ast.parse(t, mode="eval").body
            except SyntaxError:
                self.skip(item, Refusal("UnsupportedTypingConstruct", f"monomorphise T {t!r} is not a Python type"))
                continue
            if self._bind(item, mod, node, module, path, f"{mochi}_{_ident_part(t)}", kind, owner, subst):
                del self.skipped[skips_before:]  # the instantiation replaces the refusal

    def _bind(self, item: str, mod: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef, module: str, path: str,
              mochi: str, kind: str, owner: ast.ClassDef | None, subst: ast.expr | None) -> bool:
        variants = mod.overloads.get((owner.name if owner else "", node.name), [])
        if not variants:
            try:
                params, ret, is_async = self._signature(mod, node, kind, owner, subst)
            except Refusal as exc:
                self.skip(item, exc, _suggest(node, mochi, kind))
                return False
            self.add(Function(module=module, name=path, mochi_name=mochi, params=params, ret=ret,
                              doc=_doc(node) or item, kind=kind, item=item, is_async=is_async))
            return True
        failures = []
        for k, variant in enumerate(variants, 1):
            try:
                params, ret, is_async = self._signature(mod, variant, kind, owner, subst)
            except Refusal as exc:
                failures.append(f"overload {k}: {exc.reason}: {exc.detail}")
                continue
            self.add(Function(module=module, name=path, mochi_name=f"{mochi}_{k}", params=params, ret=ret,
                              doc=f"overload {k} of {item}. {_doc(node) or _doc(variants[0])}".strip(), kind=kind,
                              item=item, is_async=is_async))
        if len(failures) == len(variants):
            self.skip(item, Refusal("OverloadAmbiguity", "no overload maps: " + "; ".join(failures)[:400]),
                      _suggest(variants[0], mochi, kind))
            return False
        return True

    def _signature(self, mod: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef, kind: str,
                   owner: ast.ClassDef | None, subst: ast.expr | None = None) -> tuple[tuple[Param, ...], str, bool]:
        """Parameters, return descriptor, and whether the call's result is awaited (DESIGN §6 async row)."""
        is_async = isinstance(node, ast.AsyncFunctionDef) and not _is_async_generator(node)
        if isinstance(node, ast.AsyncFunctionDef) and self.trio:
            raise Refusal("IncompatibleAsyncRuntime", "the distribution imports trio (R12): its async code needs "
                          "trio's loop, not asyncio's")
        if node.returns is None and node.name != "__init__":
            raise Refusal("UnsupportedTypingConstruct", "no return annotation")
        mapper = _Mapper(self.sv, mod, owner, subst)
        decorators = _decorators(node)
        taken: set[str] = set()
        params: list[Param] = []
        if kind in ("method", "getattr") and owner is not None:
            taken.add("self")
            params.append(Param(name="self", mochi_name="self", type=self.sv.class_type(mod, owner),
                                keyword=False, required=True))
        skip_first = owner is not None and ("staticmethod" not in decorators)
        params += _params(node, mapper, skip_first, taken) if kind != "getattr" else []
        returns = node.returns
        if returns is not None and not is_async and kind != "new":
            awaited = _awaited(mapper, returns)  # `def f() -> Awaitable[R]` / `Coroutine[Y, S, R]`
            if awaited is not None:
                if self.trio:
                    raise Refusal("IncompatibleAsyncRuntime", "the distribution imports trio (R12)")
                returns, is_async = awaited, True
        if kind == "new" and owner is not None:
            ret = self.sv.class_type(mod, owner)
        else:
            ret = mapper.map(returns, "return") if returns is not None else "n"
        return tuple(params), ret, is_async

    def klass(self, item: str, mod: _Module, node: ast.ClassDef, alias: str) -> None:
        try:
            desc = self.sv.class_type(mod, node)
        except Refusal as exc:
            self.skip(item, exc)
            return
        record = desc.startswith("R")
        kind = self.sv.types[references(desc)[0]].kind if record else "handle"
        cname = node.name
        members = self.sv.members(mod, node)
        init = members.pop("__init__", None)
        if kind == "enum":
            pass  # members are the variants; Mochi names them itself
        elif init is not None and isinstance(init[1], ast.FunctionDef | ast.AsyncFunctionDef):
            self.function(f"{item}.__init__", init[0], init[1], mod.qualname, cname, f"{alias}_{cname}_new", "new",
                          node)
        elif not record and ("dataclass" in _decorators(node) or {ast.unparse(b).rsplit(".", 1)[-1]
                                                                  for b in node.bases} & {"NamedTuple", "TypedDict"}):
            self._field_constructor(item, mod, node, alias)
        for name, (owner_mod, member, owner) in sorted(members.items()):
            if name.startswith("_"):
                continue
            sub = f"{item}.{name}"
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                decorators = _decorators(member)
                if "property" in decorators or "cached_property" in decorators:
                    self.function(sub, owner_mod, member, owner_mod.qualname, name, f"{alias}_{cname}_{name}",
                                  "getattr", owner)
                elif decorators & {"staticmethod", "classmethod"}:
                    self.function(sub, owner_mod, member, mod.qualname, f"{cname}.{name}", f"{alias}_{cname}_{name}",
                                  "call", owner)
                else:
                    self.function(sub, owner_mod, member, owner_mod.qualname, name, f"{alias}_{cname}_{name}",
                                  "method", owner)
            elif isinstance(member, ast.AnnAssign) and not record:  # a record's fields are read in Mochi
                try:
                    ret = _constant_type(member) or _Mapper(self.sv, owner_mod, owner).map(member.annotation, "return")
                    if _is_classvar(member.annotation):
                        raise Refusal("UnsupportedTypingConstruct", "class variables are not instance attributes")
                except Refusal as exc:
                    self.skip(sub, exc)
                    continue
                self.add(Function(module=owner_mod.qualname, name=name, mochi_name=f"{alias}_{cname}_{name}",
                                  params=(Param(name="self", mochi_name="self", type=desc, keyword=False,
                                                required=True),),
                                  ret=ret, doc=f"{item}.{name}", kind="getattr", item=sub))

    def _field_constructor(self, item: str, mod: _Module, node: ast.ClassDef, alias: str) -> None:
        """The generated `__init__` of a dataclass, NamedTuple or TypedDict that crosses as a handle: its
        record fields as parameters (the optional ones by keyword)."""
        try:
            fields = self.sv.record_fields(mod, node, self.sv.class_kind(mod, node) or "dataclass", "param")
        except Refusal as exc:
            self.skip(f"{item}.__init__", exc)
            return
        params = tuple(Param(name=f.name, mochi_name=f.mochi_name, type=f.type, keyword=not f.required,
                             required=f.required) for f in fields)
        self.add(Function(module=mod.qualname, name=node.name, mochi_name=f"{alias}_{node.name}_new",
                          params=params, ret=self.sv.class_type(mod, node), doc=_doc(node) or item,
                          kind="new", item=f"{item}.__init__"))

    def casts(self) -> None:
        """`[python].any = "handle"`: checked conversions of a `value` to the types Mochi can hold."""
        for suffix, ret in (("int", "i"), ("float", "f"), ("bool", "b"), ("string", "s"), ("list", "LV"),
                            ("map", "DV")):
            self.add(Function(module="", name="", mochi_name=f"{self.sv.prefix}_as_{suffix}",
                              params=(Param(name="v", mochi_name="v", type="V", keyword=False, required=True),),
                              ret=ret, doc=f"The value as {mochi_type(ret)}; PythonTypeMismatch if it is not one.",
                              kind="cast", item=""))


def _is_classvar(annotation: ast.expr) -> bool:
    return ast.unparse(annotation).startswith(("ClassVar", "typing.ClassVar"))


def _is_async_generator(node: ast.AsyncFunctionDef) -> bool:
    """An `async def` with `yield` in its body returns an async iterator; it is not awaited."""
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def _awaited(mapper: _Mapper, returns: ast.expr) -> ast.expr | None:
    """R of a `Coroutine[Y, S, R]` or `Awaitable[R]` return annotation, else None."""
    if isinstance(returns, ast.Subscript) and mapper.qualify(returns.value) in _AWAITABLE:
        args = list(returns.slice.elts) if isinstance(returns.slice, ast.Tuple) else [returns.slice]
        return args[-1]
    return None


def _ident_part(text: str) -> str:
    """A Python type expression as a name fragment: `list[int]` -> `list_int`."""
    return "_".join(part for part in "".join(ch if ch.isalnum() else " " for ch in text).split())


def build_surface(root: Path, modules: list[str], dist: str, version: str, provenance: str,
                  options: SurfaceOptions | None = None, problems: dict[str, list[str]] | None = None) -> Surface:
    """The translated externs and the skip report of the public surface of *modules* under *root*.

    *problems* maps modules the stub ladder could not type to their (skip reason, detail). Raises
    :class:`~tasks.errors.BridgeError` when a `[python].monomorphise` item of this distribution
    names no public function.
    """
    options = options or SurfaceOptions()
    problems = problems or {}
    if provenance == "none" and problems:
        return Surface(dist=dist, version=version, provenance=provenance,
                       skipped=tuple(Skip(item=m, reason=r[0], detail=r[1]) for m, r in sorted(problems.items())))
    if provenance == "none":
        return Surface(dist=dist, version=version, provenance=provenance,
                       skipped=tuple(Skip(item=m, reason="NoStubs", detail="no stubs: the wheel ships no py.typed "
                                          "marker and no stub distribution was found") for m in modules))
    sv = _Surveyor(root, options, mochi_safe(sorted(modules)[0].replace(".", "_")) if modules else "x")
    sv.tops = set(modules)
    b = _Builder(sv)
    for top in modules:
        if top in problems:
            b.skipped.append(Skip(item=top, reason=problems[top][0], detail=problems[top][1]))
            continue
        if sv.load(top) is None:
            b.skipped.append(Skip(item=top, reason="NoStubs", detail="no parsable stub document for the module"))
            continue
        # The top module first, so what it re-exports is bound under its shortest public path.
        for qualname in [top, *_public_submodules(root, top)]:
            mod = sv.load(qualname)
            if mod is not None:
                _module_surface(b, sv, mod, qualname, top)
    unknown = sorted(item for item in b.mono if item.split(".")[0] in sv.tops and item not in b.mono_used)
    if unknown:
        raise BridgeError(f"{dist}: [python].monomorphise names {', '.join(unknown)}, which is no public function "
                          "or method of the distribution",
                          "write the item as its public path (module.function or module.Class.method)")
    if options.any_handle:
        b.casts()
    functions, types = _used_types(b.functions, sv.types)
    return Surface(dist=dist, version=version, provenance=provenance,
                   functions=tuple(sorted(functions, key=lambda f: f.mochi_name)),
                   skipped=tuple(sorted(b.skipped, key=lambda s: s.item)), classes=tuple(sv.classes),
                   types=tuple(types), prefix=sv.prefix)


def _used_types(functions: list[Function], types: list[TypeDef]) -> tuple[list[Function], list[TypeDef]]:
    """Only the named types the externs use (mapping a skipped item may have made others), renumbered."""
    used: set[int] = set()
    todo = [n for f in functions for d in (f.ret, *(p.type for p in f.params)) for n in references(d)]
    while todo:
        n = todo.pop()
        if n not in used:
            used.add(n)
            todo += [m for f in types[n].fields for m in references(f.type)]
    order = {old: new for new, old in enumerate(sorted(used))}  # a type still follows the types it uses

    def renumber(desc: str) -> str:
        return re.sub(r"R(\d+);", lambda m: f"R{order[int(m[1])]};", desc)

    kept = [replace(t, fields=tuple(replace(f, type=renumber(f.type)) for f in t.fields)) for n, t in enumerate(types)
            if n in used]
    return [replace(f, ret=renumber(f.ret), params=tuple(replace(p, type=renumber(p.type)) for p in f.params))
            for f in functions], kept


_NOT_PUBLIC = {"tests", "test", "testing", "conftest"}


def _public_submodules(root: Path, top: str) -> list[str]:
    """Importable submodules of package *top* with no private (`_`) or test component, sorted."""
    base = root / top
    if not base.is_dir():
        return []
    found = set()
    for path in base.rglob("*.py*"):
        if path.suffix not in (".py", ".pyi"):
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if len(parts) > 1 and not any(p.startswith("_") or p in _NOT_PUBLIC or not p.isidentifier()
                                      for p in parts[1:]):
            found.add(".".join(parts))
    return sorted(found)


def _module_surface(b: _Builder, sv: _Surveyor, mod: _Module, qualname: str, top: str) -> None:
    alias = mochi_safe(qualname.replace(".", "_"))
    names = mod.exports if mod.exports is not None else sorted(
        {n for n in mod.defs if not n.startswith("_")}
        | {local for local, qual in mod.imports.items()  # a stub's `import y as y` re-exports from anywhere
           if not local.startswith("_") and (qual.split(".")[0] == top or mod.is_stub) and _is_reexport(mod, local)}
        | _star_names(sv, mod, top))
    for name in sorted(set(names)):
        _export(b, sv, mod, qualname, alias, name)
    for name in sorted(n for n in mod.defs if n.startswith("_") and not n.startswith("__")):
        if isinstance(mod.defs[name], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            b.skipped.append(Skip(item=f"{qualname}.{name}", reason="PrivateName", detail="leading underscore"))


def _export(b: _Builder, sv: _Surveyor, mod: _Module, top: str, alias: str, name: str) -> None:
    item = f"{top}.{name}"
    target = sv.find(mod, name)
    if target is None:
        if (name.startswith("__") or sv.find_alias(mod, name) is not None or sv.load(f"{top}.{name}") is not None
                or sv.names_module(mod, name)):
            return  # type aliases, type variables and modules are not callables
        b.skipped.append(Skip(item=item, reason="ForwardRef", detail="the name does not resolve to a definition"))
        return
    defmod, node = target
    key = (defmod.qualname, getattr(node, "name", None) or name)
    if key in b.bound:
        return  # already bound under another public path (a re-export)
    b.bound.add(key)
    if isinstance(node, ast.ClassDef):
        b.klass(item, defmod, node, alias)
    elif isinstance(node, ast.AnnAssign):
        try:
            ret = _constant_type(node) or _Mapper(sv, defmod).map(node.annotation, "return")
        except Refusal as exc:
            b.skip(item, exc)
            return
        b.add(Function(module=top, name=name, mochi_name=f"{alias}_{name}", params=(), ret=ret, doc=item,
                       kind="constant", item=item))
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        b.function(item, defmod, node, top, name, f"{alias}_{name}")


def _star_names(sv: _Surveyor, mod: _Module, top: str) -> set[str]:
    """Public names `from .x import *` brings in: x's `__all__`, else its public definitions."""
    out: set[str] = set()
    for star in mod.stars:
        other = sv.load(star) if star.split(".")[0] == top else None
        if other is not None:
            out |= set(other.exports) if other.exports is not None else {
                n for n in other.defs if not n.startswith("_")}
    return out


def _is_reexport(mod: _Module, local: str) -> bool:
    """PEP 484: in a stub only `from m import y as y` re-exports; in a `.py` any import from the package does."""
    if not mod.is_stub:
        return True
    for node in mod.tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            for a in node.names:
                if (a.asname or a.name) == local:
                    return a.asname == a.name
    return False
