"""Surface stage: read stub documents with `ast` and map module-level functions through the type table.

Internals: each top-level module is parsed once; names are resolved through the module's imports
(`import typing as t`, `from typing import Optional`) and one level of local type aliases; public
names follow `__all__` when present, else the leading-underscore rule, and `from .x import y`
re-exports are followed into the defining module. A type either maps to a descriptor
(:mod:`tasks.typedesc`) or raises :class:`Refusal` carrying a DESIGN §6 skip reason; refused items
never become `any`.
"""

from __future__ import annotations

import ast
import keyword
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MOCHI_BUILTINS",
    "MOCHI_KEYWORDS",
    "Function",
    "Param",
    "Refusal",
    "Skip",
    "Surface",
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
    "print", "len", "count", "sum", "avg", "min", "max", "str", "keys", "values", "append", "has", "add",
    "input", "json", "now", "exists", "substring", "upper", "lower", "reduce", "contains",
})

_SCALARS = {"builtins.int": "i", "builtins.float": "f", "builtins.bool": "b", "builtins.str": "s"}
_LISTS = {"builtins.list", "typing.List"}
_DICTS = {"builtins.dict", "typing.Dict"}
_OPTIONAL = {"typing.Optional", "typing_extensions.Optional"}
_UNION = {"typing.Union", "typing_extensions.Union"}
_NONE = {"builtins.None", "types.NoneType"}
_TYPE_ALIAS: tuple[type, ...] = (ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()  # `type X = ...`, 3.12+
_ANYLIKE = {"typing.Any": "Any", "typing_extensions.Any": "Any", "builtins.object": "object"}


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
    """The import path a user reaches it by (e.g. `humanize`)."""
    name: str
    mochi_name: str
    params: tuple[Param, ...]
    ret: str
    doc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    item: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Surface:
    dist: str
    version: str
    provenance: str
    functions: tuple[Function, ...] = ()
    skipped: tuple[Skip, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Surface:
        funcs = tuple(Function(**{**f, "params": tuple(Param(**p) for p in f["params"])}) for f in data["functions"])
        skipped = tuple(Skip(**s) for s in data["skipped"])
        return cls(dist=str(data["dist"]), version=str(data["version"]), provenance=str(data["provenance"]),
                   functions=funcs, skipped=skipped)


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
    overloaded: set[str]


def _module_file(root: Path, qualname: str) -> Path | None:
    base = root.joinpath(*qualname.split("."))
    for cand in (base / "__init__.pyi", base.with_suffix(".pyi"), base / "__init__.py", base.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def _flat_body(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module statements with `if TYPE_CHECKING:` blocks inlined (their names exist for type checkers)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If) and ast.unparse(node.test).split(".")[-1] == "TYPE_CHECKING":
            out.extend(_flat_body(node.body))
        else:
            out.append(node)
    return out


def _load(root: Path, qualname: str, cache: dict[str, _Module | None]) -> _Module | None:
    if qualname in cache:
        return cache[qualname]
    path = _module_file(root, qualname)
    cache[qualname] = None
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return None
    is_pkg = path.stem == "__init__"
    package = qualname if is_pkg else qualname.rpartition(".")[0]
    imports: dict[str, str] = {}
    aliases: dict[str, ast.expr] = {}
    defs: dict[str, ast.stmt] = {}
    exports: list[str] | None = None
    overloaded: set[str] = set()
    for node in _flat_body(tree.body):
        if isinstance(node, ast.Import):
            for a in node.names:
                imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for a in node.names:
                if a.name != "*":
                    imports[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = node
            if not isinstance(node, ast.ClassDef) and any(
                    ast.unparse(d).rsplit(".", 1)[-1] == "overload" for d in node.decorator_list):
                overloaded.add(node.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                exports = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            else:
                aliases[target] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            ann = ast.unparse(node.annotation)
            if ann.endswith("TypeAlias") and node.value is not None:
                aliases[node.target.id] = node.value
            else:
                defs[node.target.id] = node
        elif _TYPE_ALIAS and isinstance(node, _TYPE_ALIAS):
            alias_node: Any = node  # ast.TypeAlias exists only on 3.12+
            aliases[alias_node.name.id] = alias_node.value
    mod = _Module(qualname, tree, imports, aliases, defs, exports, path.suffix == ".pyi", overloaded)
    cache[qualname] = mod
    return mod


class _Mapper:
    def __init__(self, mod: _Module) -> None:
        self.mod = mod

    def qualify(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.mod.imports:
                return self.mod.imports[node.id]
            if node.id in self.mod.defs or node.id in self.mod.aliases:
                return f"{self.mod.qualname}.{node.id}"
            return f"builtins.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Constant) and node.value is None:
            return "builtins.None"
        return None

    def map(self, node: ast.expr, depth: int = 0) -> str:
        if depth > 20:
            raise Refusal("UnsupportedTypingConstruct", "type nests too deeply")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            try:
                node = ast.parse(text, mode="eval").body
            except SyntaxError:
                raise Refusal("ForwardRef", f"unparsable string annotation {text!r}") from None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union(_flatten_or(node), depth)
        if isinstance(node, ast.Name) and node.id in self.mod.aliases and node.id not in self.mod.imports:
            return self.map(self.mod.aliases[node.id], depth + 1)
        if isinstance(node, ast.Subscript):
            origin = self.qualify(node.value)
            args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
            if origin in _LISTS and len(args) == 1:
                inner = self.map(args[0], depth + 1)
                return "L" + self._value(inner, node)
            if origin in _DICTS and len(args) == 2:
                key = self.map(args[0], depth + 1)
                if key != "s":
                    raise Refusal("UnsupportedTypingConstruct",
                                  f"{ast.unparse(node)}: only str keys are wrapped by this version")
                return "D" + self._value(self.map(args[1], depth + 1), node)
            if origin in _OPTIONAL and len(args) == 1:
                return self._union([args[0], ast.Constant(None)], depth)
            if origin in _UNION:
                return self._union(args, depth)
            raise Refusal("UnsupportedTypingConstruct", f"{ast.unparse(node)} is not in the type table yet")
        qual = self.qualify(node)
        if qual is None:
            raise Refusal("UnsupportedTypingConstruct", f"{ast.unparse(node)} is not a type")
        if qual in _SCALARS:
            return _SCALARS[qual]
        if qual in _NONE:
            return "n"
        if qual in _ANYLIKE:
            raise Refusal("UnsupportedTypingConstruct", f"{_ANYLIKE[qual]} cannot be typed in Mochi")
        if qual == "builtins.complex":
            raise Refusal("NoComplexType", "complex has no Mochi type")
        if qual in _LISTS or qual in _DICTS:
            raise Refusal("UnsupportedTypingConstruct", f"bare {ast.unparse(node)} has no element type")
        if qual.startswith("builtins.") and qual[9:] not in dir(__builtins__) and qual[9:] not in _BUILTIN_NAMES:
            raise Refusal("ForwardRef", f"{ast.unparse(node)} does not resolve to a known type")
        raise Refusal("UnsupportedTypingConstruct", f"{ast.unparse(node)} ({qual}) is not in the type table yet")

    def _value(self, desc: str, node: ast.expr) -> str:
        if desc == "n":
            raise Refusal("UnsupportedTypingConstruct", f"{ast.unparse(node)}: None as an element type")
        return desc

    def _union(self, arms: list[ast.expr], depth: int) -> str:
        mapped = []
        has_none = False
        for arm in arms:
            desc = self.map(arm, depth + 1)
            if desc == "n":
                has_none = True
            elif desc not in mapped:
                mapped.append(desc.removeprefix("O"))
        if len(mapped) == 1:
            return ("O" if has_none else "") + mapped[0]
        shown = " | ".join(ast.unparse(a) for a in arms)
        if not mapped:
            return "n"
        raise Refusal("UnsupportedTypingConstruct", f"union {shown} becomes a sum type in a later version")


_BUILTIN_NAMES = frozenset({"int", "float", "bool", "str", "bytes", "list", "dict", "set", "tuple", "object"})


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_or(node.left) + _flatten_or(node.right)
    return [node]


def _doc(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    text = ast.get_docstring(fn) or ""
    first = text.strip().split("\n\n", 1)[0]
    return " ".join(first.split())[:200]


def _map_function(fn: ast.FunctionDef | ast.AsyncFunctionDef, mapper: _Mapper, public_module: str,
                  alias: str) -> Function:
    if isinstance(fn, ast.AsyncFunctionDef):
        raise Refusal("UnsupportedTypingConstruct", "async def is wrapped in a later version")
    if fn.returns is None:
        raise Refusal("UnsupportedTypingConstruct", "no return annotation")
    ret = mapper.map(fn.returns)
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults_from = len(positional) - len(a.defaults)
    params: list[Param] = []
    taken: set[str] = set()
    dropped = False
    for i, arg in enumerate(positional):
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
    if a.kwonlyargs and any(p.required and p.keyword for p in params) and any(
            not p.required and not p.keyword for p in params):
        raise Refusal("UnsupportedTypingConstruct", "required keyword-only parameters after optional ones")
    return Function(module=public_module, name=fn.name, mochi_name=f"{alias}_{fn.name}", params=tuple(params),
                    ret=ret, doc=_doc(fn))


def _param_type(arg: ast.arg, mapper: _Mapper, required: bool) -> str | None:
    """The descriptor of a parameter; None when an optional one is left out (its default applies)."""
    try:
        if arg.annotation is None:
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} has no annotation")
        desc = mapper.map(arg.annotation)
        if desc == "n":
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} is annotated None")
        return desc
    except Refusal as exc:
        if required:
            raise Refusal(exc.reason, f"parameter {arg.arg!r}: {exc.detail}") from None
        return None


def build_surface(root: Path, modules: list[str], dist: str, version: str, provenance: str) -> Surface:
    """The translated functions and the skip report of the public surface of *modules* under *root*."""
    if provenance == "none":
        return Surface(dist=dist, version=version, provenance=provenance,
                       skipped=tuple(Skip(item=m, reason="NoStubs", detail="the wheel ships no py.typed marker; "
                                          "the -stubs, typeshed and stubgen tiers arrive with a later version")
                                     for m in modules))
    cache: dict[str, _Module | None] = {}
    functions: list[Function] = []
    skipped: list[Skip] = []
    used: set[str] = set()
    for top in modules:
        mod = _load(root, top, cache)
        if mod is None:
            skipped.append(Skip(item=top, reason="NoStubs", detail="no parsable stub document for the module"))
            continue
        alias = mochi_safe(top)
        names = mod.exports if mod.exports is not None else [
            n for n in mod.defs if not n.startswith("_")] + [
            local for local, qual in mod.imports.items()
            if not local.startswith("_") and qual.split(".")[0] == top and _is_reexport(mod, local)]
        for name in sorted(set(names)):
            item = f"{top}.{name}"
            target = _find_definition(root, mod, name, cache)
            if target is None:
                if name in mod.aliases or name.startswith("__"):
                    continue
                skipped.append(Skip(item=item, reason="ForwardRef", detail="the name does not resolve to a definition"))
                continue
            defmod, node = target
            if isinstance(node, ast.ClassDef):
                skipped.append(Skip(item=item, reason="UnsupportedTypingConstruct",
                                    detail="classes become handles in a later version"))
                continue
            if isinstance(node, ast.AnnAssign):
                skipped.append(Skip(item=item, reason="UnsupportedTypingConstruct",
                                    detail="module constants become getters in a later version"))
                continue
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.name in defmod.overloaded:
                skipped.append(Skip(item=item, reason="OverloadAmbiguity",
                                    detail="overloaded functions are resolved in a later version"))
                continue
            try:
                fn = _map_function(node, _Mapper(defmod), top, alias)
            except Refusal as exc:
                skipped.append(Skip(item=item, reason=exc.reason, detail=exc.detail))
                continue
            fn = Function(module=fn.module, name=fn.name, mochi_name=mochi_safe(fn.mochi_name, used),
                          params=fn.params, ret=fn.ret, doc=fn.doc)
            used.add(fn.mochi_name)
            functions.append(fn)
        for name in sorted(n for n in mod.defs if n.startswith("_") and not n.startswith("__")):
            if isinstance(mod.defs[name], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                skipped.append(Skip(item=f"{top}.{name}", reason="PrivateName", detail="leading underscore"))
    return Surface(dist=dist, version=version, provenance=provenance,
                   functions=tuple(sorted(functions, key=lambda f: f.mochi_name)),
                   skipped=tuple(sorted(skipped, key=lambda s: s.item)))


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


def _find_definition(root: Path, mod: _Module, name: str, cache: dict[str, _Module | None],
                     depth: int = 0) -> tuple[_Module, ast.stmt] | None:
    if name in mod.defs:
        return mod, mod.defs[name]
    if depth > 10 or name not in mod.imports:
        return None
    qual = mod.imports[name]
    src_mod, _, src_name = qual.rpartition(".")
    top = mod.qualname.split(".")[0]
    if src_mod.split(".")[0] != top:
        return None  # defined outside this distribution
    other = _load(root, src_mod, cache)
    if other is None:
        return None
    return _find_definition(root, other, src_name, cache, depth + 1)
