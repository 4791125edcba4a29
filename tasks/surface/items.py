"""The items of a surface: which public names become externs, and their Mochi signatures.

:func:`build_surface` walks the public modules of a distribution (:mod:`.documents`), and for each
public name binds what it is: module-level functions become externs; classes become handles
(`value`) with a constructor, methods, properties and annotated attributes, or records and enums
when the table says so; module constants become zero-argument getters. Each item is bound by the
:class:`~.builder.Builder`; classes of other distributions and of the standard library that the
surface hands out get their own members too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

from ..errors import BridgeError
from ..stubs.ladder import DEPENDENCY_STUBS
from .builder import Builder
from .documents import Documents, Module, is_reexport, public_submodules, star_names
from .model import Function, Refusal, Skip, Surface, SurfaceOptions, TypeDef, mochi_safe
from .typedesc import references
from .typetable import Mapper, TypeTable, constant_type

__all__ = ["build_surface"]


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
    docs.dep_tops = _dependency_tops(root, set(modules))
    primary = _primary_top(dist, modules)
    table = TypeTable(docs, options, mochi_safe(primary))
    b = Builder(table)
    exports: list[tuple[int, int, str, str, Module]] = []
    for top in modules:
        if top in problems:
            b.skipped.append(Skip(item=top, reason=problems[top][0], detail=problems[top][1]))
            continue
        if docs.load(top) is None:
            b.skipped.append(Skip(item=top, reason="NoStubs", detail="no parsable stub document for the module"))
            continue
        for order, qualname in enumerate([top, *public_submodules(root, top)]):
            mod = docs.load(qualname)
            if mod is not None:
                exports += _module_exports(b, docs, mod, qualname, top, order)
    # What the top module re-exports is bound under its shortest public path; the rest under the public module
    # that defines it, and only what no public module defines under the first public module re-exporting it.
    for _, _, qualname, name, mod in sorted(exports, key=lambda e: e[:4]):
        _export(b, docs, mod, qualname, mochi_safe(qualname.replace(".", "_")), name)
    _foreign_members(b, docs)
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
                   types=tuple(types), prefix=table.prefix,
                   tops=tuple(mochi_safe(t) for t in sorted(modules, key=lambda m: (m != primary, m))))


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


def _module_exports(b: Builder, docs: Documents, mod: Module, qualname: str, top: str, order: int
                    ) -> list[tuple[int, int, str, str, Module]]:
    """(binding pass, module order, module, name, module) of each public name of *mod*: pass 0 for the top
    module's names, 1 for a submodule's own definitions, 2 for what a submodule merely imports."""
    names = mod.exports if mod.exports is not None else sorted(
        {n for n in mod.defs if not n.startswith("_")}
        | {local for local, qual in mod.imports.items()  # a stub's `import y as y` re-exports from anywhere
           if not local.startswith("_") and (qual.split(".")[0] == top or mod.is_stub) and is_reexport(mod, local)}
        | star_names(docs, mod, top))
    for name in sorted(n for n in mod.defs if n.startswith("_") and not n.startswith("__")):
        if isinstance(mod.defs[name], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            b.skipped.append(Skip(item=f"{qualname}.{name}", reason="PrivateName", detail="leading underscore"))
    out = []
    for name in sorted(set(names)):
        found = docs.find(mod, name)
        defined_here = found is not None and found[0].qualname == qualname
        out.append((0 if order == 0 else 1 if defined_here else 2, order, qualname, name, mod))
    return out


def _primary_top(dist: str, modules: list[str]) -> str:
    """The import name that stands for the distribution (`attrs` of `attr` and `attrs`): the one named like
    it, else the first public one."""
    normal = dist.replace("-", "_").replace(".", "_").lower()
    return next((m for m in modules if m.lower() == normal), None) or next(
        (m for m in sorted(modules) if not m.startswith("_")), sorted(modules)[0] if modules else "x")


def _dependency_tops(root: Path, own: set[str]) -> set[str]:
    """Top-level modules of the dependencies whose typed documents the stub stage put beside the package's."""
    deps = root / DEPENDENCY_STUBS
    return {p.stem for p in deps.iterdir() if p.stem.isidentifier()} - own if deps.is_dir() else set()


_FOREIGN_DEPTH = 2
_FOREIGN_CLASSES = 64


def _bind_callable_instance(b: Builder, docs: Documents, mod: Module, node: ast.AnnAssign, item: str, top: str,
                            name: str, alias: str) -> bool:
    """`zeros: Final[_ConstructorEmpty]`: a module name typed by a callable protocol is a function, bound with
    the protocol's `__call__` signatures (numpy declares its constructors this way)."""
    annotation = node.annotation
    if isinstance(annotation, ast.Subscript) and (docs.qualify(mod, annotation.value) or "").endswith(".Final"):
        annotation = annotation.slice
    found = docs.find_qualified(docs.qualify(mod, annotation) or "") if isinstance(
        annotation, ast.Name | ast.Attribute) else None
    if found is None or not isinstance(found[1], ast.ClassDef):
        return False
    cls_mod, cls = found[0], found[1]
    call = docs.members(cls_mod, cls).get("__call__")
    if call is None or not isinstance(call[1], ast.FunctionDef | ast.AsyncFunctionDef) or not (
            b.table.is_protocol(cls_mod, cls) or cls.name.startswith("_")):
        return False
    b.function(item, call[0], call[1], top, name, f"{alias}_{name}", "call", call[2])
    return True


def _foreign_members(b: Builder, docs: Documents) -> None:
    """Classes of the standard library and of other distributions that the surface hands out as handles get
    their own public members, bound from their own stubs (`dateutil.parser.parse(...)` returns a `datetime`
    whose `year` can be read), under `<prefix>_<module>_<Class>_...`; to two levels and 64 classes."""
    done = 0
    level_of: dict[int, int] = {}
    index = 0
    b.foreign = True
    while index < len(b.table.classes) and done < _FOREIGN_CLASSES:
        ref = b.table.classes[index]
        level = level_of.setdefault(index, 1)
        index += 1
        if ref.module.split(".")[0] in docs.tops or ref.methods or level > _FOREIGN_DEPTH or ref.name.startswith("_"):
            continue
        found = docs.find_qualified(f"{ref.module}.{ref.name}")
        if found is None or not isinstance(found[1], ast.ClassDef):
            continue
        # named after the module the package reached it through when it is defined in a private one (`_io`)
        path = ref.module
        if any(part.startswith("_") for part in path.split(".")):
            path = b.table.public.get((ref.module, ref.name), f"{ref.module}.{ref.name}").rpartition(".")[0]
        before = len(b.table.classes)
        b.klass(f"{path}.{ref.name}", found[0], found[1], mochi_safe(f"{b.table.prefix}_{path.replace('.', '_')}"))
        done += 1
        for new in range(before, len(b.table.classes)):
            level_of[new] = level + 1
    b.foreign = False


def _export(b: Builder, docs: Documents, mod: Module, top: str, alias: str, name: str) -> None:
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
    elif isinstance(node, ast.AnnAssign) and _bind_callable_instance(b, docs, defmod, node, item, top, name, alias):
        return
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

