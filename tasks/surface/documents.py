"""Reading stub documents: each module parsed once with `ast`, names resolved across files.

:class:`Documents` loads the modules of one distribution (`.pyi` before `.py`) and, to recognise
classes, of the standard library's stubs (typeshed's copy inside mypy: found, never imported).
`if TYPE_CHECKING:`, `sys.version_info` and `sys.platform` branches are evaluated for the target.
Names resolve through the module's imports (`import typing as t`, `from .x import y`, star imports)
and local aliases (`X = Union[...]`, `X: TypeAlias = ...`, `TypeVar`s); public names follow
`__all__` when present, else the leading-underscore rule (PEP 484 re-export rules in stubs).
"""

from __future__ import annotations

import ast
import importlib.util
import operator
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..stubs.ladder import DEPENDENCY_STUBS
from .pep695 import downlevel

__all__ = ["Documents", "Module", "decorator_names", "doc_summary", "is_reexport", "public_submodules", "self_alias",
           "star_names"]

_TYPE_ALIAS: tuple[type, ...] = (ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()  # `type X = ...`, 3.12+
# typeshed's standard-library stubs, shipped inside mypy, to recognise stdlib classes (found, not imported)
_STDLIB_STUBS = Path(getattr(importlib.util.find_spec("mypy"), "origin", None) or ".").parent / "typeshed" / "stdlib"
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq,
        ast.NotEq: operator.ne}


@dataclass
class Module:
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


def _parse(text: str, filename: str) -> ast.Module:
    """The document's tree; PEP 695 syntax rewritten first when this interpreter's parser predates it."""
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError:
        if sys.version_info >= (3, 12):
            raise
        return ast.parse(downlevel(text), filename=filename)


def _module_file(root: Path, qualname: str) -> Path | None:
    base = root.joinpath(*qualname.split("."))
    for cand in (base / "__init__.pyi", base.with_suffix(".pyi"), base / "__init__.py", base.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    return {ast.unparse(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] for d in node.decorator_list}


class Documents:
    """The stub documents of one distribution (import names *tops* under *root*) and of the standard library."""

    def __init__(self, root: Path, python_version: tuple[int, int], platform: str, tops: set[str]) -> None:
        self.root = root
        self.python_version = python_version
        self.platform = platform
        self.tops = tops
        self.dep_tops: set[str] = set()
        """Top-level modules of dependencies whose documents sit under `<root>/{DEPENDENCY_STUBS}`."""
        self.cache: dict[tuple[Path, str], Module | None] = {}

    def load(self, qualname: str, root: Path | None = None) -> Module | None:
        root = root or self.root
        key = (root, qualname)
        if key in self.cache:
            return self.cache[key]
        self.cache[key] = None
        path = _module_file(root, qualname)
        if path is None:
            return None
        try:
            tree = _parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError):  # unreadable: no surface from it
            return None
        package = qualname if path.stem == "__init__" else qualname.rpartition(".")[0]
        mod = Module(qualname, tree, {}, {}, {}, None, path.suffix == ".pyi", {}, [], {})
        for node in self.flat(tree.body):
            self._record(mod, node, package)
        self.cache[key] = mod
        return mod

    def _record(self, mod: Module, node: ast.stmt, package: str) -> None:
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
            if isinstance(node, ast.FunctionDef) and "overload" in decorator_names(node):
                mod.overloads.setdefault(("", node.name), []).append(node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                mod.exports = [e.value for e in node.value.elts
                               if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            elif isinstance(node.value, ast.Call) and ast.unparse(node.value.func).rsplit(".", 1)[-1] in (
                    "TypeVar", "ParamSpec", "TypeVarTuple"):
                mod.typevars[target] = node.value
            elif (isinstance(node.value, ast.Call) and ast.unparse(node.value.func).rsplit(".", 1)[-1]
                  == "TypeAliasType" and len(node.value.args) >= 2):
                mod.aliases[target] = node.value.args[1]  # `X = TypeAliasType("X", T)`, PEP 695's functional form
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

    def flat(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """Statements with `TYPE_CHECKING`, `sys.version_info` and `sys.platform` branches resolved."""
        out: list[ast.stmt] = []
        for node in body:
            if isinstance(node, ast.If):
                taken = self._condition(node.test)
                if taken is True:
                    out.extend(self.flat(node.body))
                elif taken is False:
                    out.extend(self.flat(node.orelse))
                else:
                    out.extend(self.flat(node.body))  # unknown condition: the first branch, as type checkers do
            elif isinstance(node, ast.Try):
                out.extend(self.flat(node.body))
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

    def binding(self, mod: Module, name: str, depth: int = 0) -> tuple[Module, str] | None:
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

    def find(self, mod: Module, name: str) -> tuple[Module, ast.stmt] | None:
        """The definition (function, class or annotated name) *name* refers to in *mod*."""
        hit = self.binding(mod, name)
        return (hit[0], hit[0].defs[hit[1]]) if hit is not None and hit[1] in hit[0].defs else None

    def find_alias(self, mod: Module, name: str) -> tuple[Module, str] | None:
        """The module and name of the type alias or TypeVar *name* refers to in *mod*."""
        hit = self.binding(mod, name)
        return hit if hit is not None and hit[1] not in hit[0].defs else None

    def load_qualified_module(self, mod_name: str) -> Module | None:
        """A module of this distribution, of a typed dependency, or of the standard library's stubs."""
        if not mod_name:
            return None
        top = mod_name.partition(".")[0]
        if top in self.tops:
            return self.load(mod_name, self.root)
        if top in self.dep_tops:
            return self.load(mod_name, self.root / DEPENDENCY_STUBS)
        return self.load(mod_name, _STDLIB_STUBS)

    def names_module(self, mod: Module, name: str, depth: int = 0) -> bool:
        """Whether *name* in *mod* is an imported module (`from . import sessions`, `import x.y as z`)."""
        qual = mod.imports.get(name)
        if qual is None or depth > 12:
            return False
        if self.load_qualified_module(qual) is not None:
            return True
        owner = self.load_qualified_module(qual.rpartition(".")[0])
        return owner is not None and self.names_module(owner, qual.rpartition(".")[2], depth + 1)

    def find_qualified(self, qual: str) -> tuple[Module, ast.stmt] | None:
        mod_name, _, attr = qual.rpartition(".")
        other = self.load_qualified_module(mod_name)
        return None if other is None else self.find(other, attr)

    # --- handles and named types ----------------------------------------------------------------

    def qualify(self, mod: Module, node: ast.expr) -> str | None:
        """The qualified name an annotation's name or attribute refers to in *mod* (`builtins.` when unbound)."""
        if isinstance(node, ast.Name):
            if node.id in mod.imports:
                return mod.imports[node.id]
            if node.id in mod.aliases and self_alias(mod.aliases[node.id], node.id):
                return f"builtins.{node.id}"  # `str = str` (a compat module) names the builtin
            if node.id in mod.defs or node.id in mod.aliases or node.id in mod.typevars:
                return f"{mod.qualname}.{node.id}"
            for star in mod.stars:
                if self.find_qualified(f"{star}.{node.id}") is not None:
                    return f"{star}.{node.id}"
            return f"builtins.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.qualify(mod, node.value)
            return f"{base.removeprefix('builtins.')}.{node.attr}" if base else None
        if isinstance(node, ast.Constant) and node.value is None:
            return "builtins.None"
        return None

    def ancestors(self, qual: str) -> set[str]:
        """Qualified names of the classes the class *qual* derives from, as far as the documents name them."""
        out: set[str] = set()
        todo = [qual]
        while todo and len(out) < 64:  # a bound for pathological hierarchies
            found = self.find_qualified(todo.pop())
            if found is None or not isinstance(found[1], ast.ClassDef):
                continue
            for base in found[1].bases:
                name = self.qualify(found[0], base.value if isinstance(base, ast.Subscript) else base)
                if name and name not in out and name != qual:
                    out.add(name)
                    todo.append(name)
        return out

    def members(self, mod: Module, node: ast.ClassDef, seen: set[str] | None = None
                ) -> dict[str, tuple[Module, ast.stmt, ast.ClassDef]]:
        """Members of *node* and of its bases in its own distribution (the class's own win).

        A property's setter is the member `<name>.setter` (the getter keeps `<name>`); deleters are left out.
        """
        seen = set() if seen is None else seen
        out: dict[str, tuple[Module, ast.stmt, ast.ClassDef]] = {}
        key = f"{mod.qualname}.{node.name}"
        if key in seen:
            return out
        seen.add(key)
        for base in reversed(node.bases):
            qual = self.qualify(mod, base.value if isinstance(base, ast.Subscript) else base)
            found = self.find_qualified(qual) if qual and not qual.startswith("builtins.") else None
            top = found[0].qualname.split(".")[0] if found else ""
            if found and isinstance(found[1], ast.ClassDef) and (top in self.tops or top == mod.qualname.split(".")[0]):
                out.update(self.members(found[0], found[1], seen))
        for member in self.flat(node.body):
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                accessors = [ast.unparse(d) for d in member.decorator_list if ast.unparse(d).endswith(
                    (".setter", ".deleter"))]
                if accessors:
                    if f"{member.name}.setter" in accessors:
                        out[f"{member.name}.setter"] = (mod, member, node)
                    continue
                variants = mod.overloads.setdefault((node.name, member.name), [])
                if isinstance(member, ast.FunctionDef) and "overload" in decorator_names(member) and not any(
                        v is member for v in variants):
                    variants.append(member)
                out[member.name] = (mod, member, node)
            elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                out[member.target.id] = (mod, member, node)
        if not mod.is_stub:
            for name, attr in self._init_attributes(mod, node).items():
                out.setdefault(name, (mod, attr, node))
        return out

    def _init_attributes(self, mod: Module, node: ast.ClassDef) -> dict[str, ast.AnnAssign]:
        """Instance attributes a `.py` class sets in `__init__` with a known type: `self.x: T = ...`, and
        `self.x = SomeClass(...)` for a class this module can name. They come back as annotated names marked
        `simple=0`, so they are getters of a handle, never fields of a record."""
        init = next((m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
        out: dict[str, ast.AnnAssign] = {}
        if init is None:
            return out
        for stmt in ast.walk(init):
            annotation: ast.expr | None = None
            target: ast.expr | None = None
            if isinstance(stmt, ast.AnnAssign) and _self_attr(stmt.target):
                target, annotation = stmt.target, stmt.annotation
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _self_attr(stmt.targets[0]) and (
                    isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name | ast.Attribute)):
                found = self.find_qualified(self.qualify(mod, stmt.value.func) or "")
                if found is not None and isinstance(found[1], ast.ClassDef):
                    target, annotation = stmt.targets[0], stmt.value.func
            if annotation is not None and isinstance(target, ast.Attribute) and not target.attr.startswith("_"):
                out.setdefault(target.attr, ast.AnnAssign(target=ast.Name(target.attr), annotation=annotation,
                                                          value=None, simple=0))
        return out


def _self_attr(target: ast.expr) -> bool:
    return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"


def self_alias(target: ast.expr, name: str) -> bool:
    return isinstance(target, ast.Name) and target.id == name


def doc_summary(node: ast.AST) -> str:
    text = ast.get_docstring(node) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else ""
    first = (text or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())[:200]


_NOT_PUBLIC = {"tests", "test", "testing", "conftest"}


def public_submodules(root: Path, top: str) -> list[str]:
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


def star_names(docs: Documents, mod: Module, top: str) -> set[str]:
    """Public names `from .x import *` brings in: x's `__all__`, else its public definitions."""
    out: set[str] = set()
    for star in mod.stars:
        other = docs.load(star) if star.split(".")[0] == top else None
        if other is not None:
            out |= set(other.exports) if other.exports is not None else {
                n for n in other.defs if not n.startswith("_")}
    return out


def is_reexport(mod: Module, local: str) -> bool:
    """PEP 484: in a stub only `from m import y as y` re-exports; in a `.py` any import from the package does."""
    if not mod.is_stub:
        return True
    for node in mod.tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            for a in node.names:
                if (a.asname or a.name) == local:
                    return a.asname == a.name
    return False
