"""The items of a surface: which public names become externs, and their Mochi signatures.

:func:`build_surface` walks the public modules of a distribution (:mod:`.documents`), and for each
public name binds what it is: module-level functions become externs; classes become handles
(`value`) with a constructor, methods, properties and annotated attributes, or records and enums
when the table says so; module constants become zero-argument getters. Each signature's types come
from the type table (:mod:`.typetable`); an item the table refuses is a :class:`~.model.Skip` with
its reason and a suggested hand-written binding.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

from ..errors import BridgeError
from .documents import Documents, Module, decorator_names, doc_summary, is_reexport, public_submodules, star_names
from .model import Function, Param, Refusal, Skip, Surface, SurfaceOptions, TypeDef, mochi_safe
from .typedesc import mochi_type, references
from .typetable import AWAITABLE, Mapper, TypeTable, constant_type, is_classvar

__all__ = ["build_surface"]


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef, mapper: Mapper, skip_first: bool,
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


def _param_type(arg: ast.arg, mapper: Mapper, required: bool) -> str | None:
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

    def __init__(self, table: TypeTable) -> None:
        self.table = table
        self.docs = table.docs
        self.trio = table.options.trio
        self.functions: list[Function] = []
        self.skipped: list[Skip] = []
        self.used = table.used
        self.bound: set[tuple[str, str]] = set()
        """(defining module, name) of every definition already exported."""
        self.mono: dict[str, list[str]] = {}
        for item, t in table.options.monomorphise:
            self.mono.setdefault(item, []).append(t)
        self.mono_used: set[str] = set()

    def add(self, fn: Function) -> None:
        name = mochi_safe(fn.mochi_name, self.used)
        self.used.add(name)
        self.functions.append(Function(module=fn.module, name=fn.name, mochi_name=name, params=fn.params,
                                       ret=fn.ret, doc=fn.doc, kind=fn.kind, item=fn.item, is_async=fn.is_async))

    def skip(self, item: str, exc: Refusal, suggestion: str = "") -> None:
        self.skipped.append(Skip(item=item, reason=exc.reason, detail=exc.detail, suggestion=suggestion))

    def function(self, item: str, mod: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, module: str,
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

    def _bind(self, item: str, mod: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, module: str, path: str,
              mochi: str, kind: str, owner: ast.ClassDef | None, subst: ast.expr | None) -> bool:
        variants = mod.overloads.get((owner.name if owner else "", node.name), [])
        if not variants:
            try:
                params, ret, is_async = self._signature(mod, node, kind, owner, subst)
            except Refusal as exc:
                self.skip(item, exc, _suggest(node, mochi, kind))
                return False
            self.add(Function(module=module, name=path, mochi_name=mochi, params=params, ret=ret,
                              doc=doc_summary(node) or item, kind=kind, item=item, is_async=is_async))
            return True
        failures = []
        for k, variant in enumerate(variants, 1):
            try:
                params, ret, is_async = self._signature(mod, variant, kind, owner, subst)
            except Refusal as exc:
                failures.append(f"overload {k}: {exc.reason}: {exc.detail}")
                continue
            self.add(Function(module=module, name=path, mochi_name=f"{mochi}_{k}", params=params, ret=ret,
                              doc=f"overload {k} of {item}. {doc_summary(node) or doc_summary(variants[0])}".strip(),
                              kind=kind, item=item, is_async=is_async))
        if len(failures) == len(variants):
            self.skip(item, Refusal("OverloadAmbiguity", "no overload maps: " + "; ".join(failures)[:400]),
                      _suggest(variants[0], mochi, kind))
            return False
        return True

    def _signature(self, mod: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, kind: str,
                   owner: ast.ClassDef | None, subst: ast.expr | None = None) -> tuple[tuple[Param, ...], str, bool]:
        """Parameters, return descriptor, and whether the call's result is awaited (DESIGN §6 async row)."""
        is_async = isinstance(node, ast.AsyncFunctionDef) and not _is_async_generator(node)
        if isinstance(node, ast.AsyncFunctionDef) and self.trio:
            raise Refusal("IncompatibleAsyncRuntime", "the distribution imports trio (R12): its async code needs "
                          "trio's loop, not asyncio's")
        if node.returns is None and node.name != "__init__":
            raise Refusal("UnsupportedTypingConstruct", "no return annotation")
        mapper = Mapper(self.table, mod, owner, subst)
        decorators = decorator_names(node)
        taken: set[str] = set()
        params: list[Param] = []
        if kind in ("method", "getattr") and owner is not None:
            taken.add("self")
            params.append(Param(name="self", mochi_name="self", type=self.table.class_type(mod, owner),
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
            ret = self.table.class_type(mod, owner)
        else:
            ret = mapper.map(returns, "return") if returns is not None else "n"
        return tuple(params), ret, is_async

    def klass(self, item: str, mod: Module, node: ast.ClassDef, alias: str) -> None:
        try:
            desc = self.table.class_type(mod, node)
        except Refusal as exc:
            self.skip(item, exc)
            return
        record = desc.startswith("R")
        kind = self.table.types[references(desc)[0]].kind if record else "handle"
        cname = node.name
        members = self.docs.members(mod, node)
        init = members.pop("__init__", None)
        if kind == "enum":
            pass  # members are the variants; Mochi names them itself
        elif init is not None and isinstance(init[1], ast.FunctionDef | ast.AsyncFunctionDef):
            self.function(f"{item}.__init__", init[0], init[1], mod.qualname, cname, f"{alias}_{cname}_new", "new",
                          node)
        elif not record and ("dataclass" in decorator_names(node) or {ast.unparse(b).rsplit(".", 1)[-1]
                                                                  for b in node.bases} & {"NamedTuple", "TypedDict"}):
            self._field_constructor(item, mod, node, alias)
        for name, (owner_mod, member, owner) in sorted(members.items()):
            if name.startswith("_"):
                continue
            sub = f"{item}.{name}"
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                decorators = decorator_names(member)
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
                    ret = constant_type(member) or Mapper(self.table, owner_mod, owner).map(member.annotation, "return")
                    if is_classvar(member.annotation):
                        raise Refusal("UnsupportedTypingConstruct", "class variables are not instance attributes")
                except Refusal as exc:
                    self.skip(sub, exc)
                    continue
                self.add(Function(module=owner_mod.qualname, name=name, mochi_name=f"{alias}_{cname}_{name}",
                                  params=(Param(name="self", mochi_name="self", type=desc, keyword=False,
                                                required=True),),
                                  ret=ret, doc=f"{item}.{name}", kind="getattr", item=sub))

    def _field_constructor(self, item: str, mod: Module, node: ast.ClassDef, alias: str) -> None:
        """The generated `__init__` of a dataclass, NamedTuple or TypedDict that crosses as a handle: its
        record fields as parameters (the optional ones by keyword)."""
        try:
            fields = self.table.record_fields(mod, node, self.table.class_kind(mod, node) or "dataclass", "param")
        except Refusal as exc:
            self.skip(f"{item}.__init__", exc)
            return
        params = tuple(Param(name=f.name, mochi_name=f.mochi_name, type=f.type, keyword=not f.required,
                             required=f.required) for f in fields)
        self.add(Function(module=mod.qualname, name=node.name, mochi_name=f"{alias}_{node.name}_new",
                          params=params, ret=self.table.class_type(mod, node), doc=doc_summary(node) or item,
                          kind="new", item=f"{item}.__init__"))

    def casts(self) -> None:
        """`[python].any = "handle"`: checked conversions of a `value` to the types Mochi can hold."""
        for suffix, ret in (("int", "i"), ("float", "f"), ("bool", "b"), ("string", "s"), ("list", "LV"),
                            ("map", "DV")):
            self.add(Function(module="", name="", mochi_name=f"{self.table.prefix}_as_{suffix}",
                              params=(Param(name="v", mochi_name="v", type="V", keyword=False, required=True),),
                              ret=ret, doc=f"The value as {mochi_type(ret)}; PythonTypeMismatch if it is not one.",
                              kind="cast", item=""))


def _is_async_generator(node: ast.AsyncFunctionDef) -> bool:
    """An `async def` with `yield` in its body returns an async iterator; it is not awaited."""
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def _awaited(mapper: Mapper, returns: ast.expr) -> ast.expr | None:
    """R of a `Coroutine[Y, S, R]` or `Awaitable[R]` return annotation, else None."""
    if isinstance(returns, ast.Subscript) and mapper.qualify(returns.value) in AWAITABLE:
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
    docs = Documents(root, options.python_version, options.platform, set(modules))
    table = TypeTable(docs, options, mochi_safe(sorted(modules)[0].replace(".", "_")) if modules else "x")
    b = _Builder(table)
    for top in modules:
        if top in problems:
            b.skipped.append(Skip(item=top, reason=problems[top][0], detail=problems[top][1]))
            continue
        if docs.load(top) is None:
            b.skipped.append(Skip(item=top, reason="NoStubs", detail="no parsable stub document for the module"))
            continue
        # The top module first, so what it re-exports is bound under its shortest public path.
        for qualname in [top, *public_submodules(root, top)]:
            mod = docs.load(qualname)
            if mod is not None:
                _module_surface(b, docs, mod, qualname, top)
    unknown = sorted(item for item in b.mono if item.split(".")[0] in docs.tops and item not in b.mono_used)
    if unknown:
        raise BridgeError(f"{dist}: [python].monomorphise names {', '.join(unknown)}, which is no public function "
                          "or method of the distribution",
                          "write the item as its public path (module.function or module.Class.method)")
    if options.any_handle:
        b.casts()
    functions, types = _used_types(b.functions, table.types)
    return Surface(dist=dist, version=version, provenance=provenance,
                   functions=tuple(sorted(functions, key=lambda f: f.mochi_name)),
                   skipped=tuple(sorted(b.skipped, key=lambda s: s.item)), classes=tuple(table.classes),
                   types=tuple(types), prefix=table.prefix)


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


def _module_surface(b: _Builder, docs: Documents, mod: Module, qualname: str, top: str) -> None:
    alias = mochi_safe(qualname.replace(".", "_"))
    names = mod.exports if mod.exports is not None else sorted(
        {n for n in mod.defs if not n.startswith("_")}
        | {local for local, qual in mod.imports.items()  # a stub's `import y as y` re-exports from anywhere
           if not local.startswith("_") and (qual.split(".")[0] == top or mod.is_stub) and is_reexport(mod, local)}
        | star_names(docs, mod, top))
    for name in sorted(set(names)):
        _export(b, docs, mod, qualname, alias, name)
    for name in sorted(n for n in mod.defs if n.startswith("_") and not n.startswith("__")):
        if isinstance(mod.defs[name], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            b.skipped.append(Skip(item=f"{qualname}.{name}", reason="PrivateName", detail="leading underscore"))


def _export(b: _Builder, docs: Documents, mod: Module, top: str, alias: str, name: str) -> None:
    item = f"{top}.{name}"
    target = docs.find(mod, name)
    if target is None:
        if (name.startswith("__") or docs.find_alias(mod, name) is not None or docs.load(f"{top}.{name}") is not None
                or docs.names_module(mod, name)):
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
            ret = constant_type(node) or Mapper(b.table, defmod).map(node.annotation, "return")
        except Refusal as exc:
            b.skip(item, exc)
            return
        b.add(Function(module=top, name=name, mochi_name=f"{alias}_{name}", params=(), ret=ret, doc=item,
                       kind="constant", item=item))
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        b.function(item, defmod, node, top, name, f"{alias}_{name}")

