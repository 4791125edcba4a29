"""The target view of a surface (DESIGN §6b): what one program needs, in forms the Mochi Python target lowers.

The shim under `python_wrap/` is the language view: every item, in the full type table. The Mochi
Python target lowers every declaration of a program file, and fails the whole build on one form it
cannot lower (mochi-language.md §7.2). So for a program this module keeps only the externs the program
names and the types they need (transitively), and rewrites each form the target cannot lower:

- a parameter that is a list, map, bytes, `T?`, or a record or sum type whose fields are not all
  scalars becomes `value` (the program builds it with the prelude: `mb_list_new`, `mb_list_append_int`,
  `mb_map_set_string`, `mb_none`, ...; the wrapper still checks it against the real type);
- a result that is not a scalar, a handle or nothing becomes `value` (the program reads it with
  `mb_is_none`, `mb_len`, `mb_get_int`, `mb_key_string`, `mb_field_int`, `mb_variant`, ...).

Where even that cannot work (a callback whose parameters or result are not scalars; a type the program
names whose fields the target cannot lower) it reports an error naming the declaration, the form and
what to write instead. Calls to names that start with an import's alias but that the import does not
declare are reported as warnings. Everything here is pure: source and surfaces in, text and notes out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import Location
from ..surface.model import Function, Param, Surface, TypeDef
from ..surface.typedesc import mochi_type, parts, references
from .prelude import PRELUDE

__all__ = ["Finding", "TargetView", "lowers_param", "lowers_return", "program_names", "target_surface",
           "undeclared_calls"]

_SCALAR = frozenset("ifbs")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKENS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|[A-Za-z_][A-Za-z0-9_]*', re.S)


@dataclass(frozen=True, slots=True)
class Finding:
    """A note (a substitution), a warning (a call nothing declares) or an error (a form nothing can lower)."""

    level: str
    where: Location | None
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}" if self.where else f"{self.level}: {self.message}"


@dataclass(frozen=True, slots=True)
class TargetView:
    surface: Surface
    """Only what the program uses, with unlowerable forms replaced by `value`."""
    findings: list[Finding] = field(default_factory=list)


def program_names(source: str) -> dict[str, list[tuple[int, int, bool]]]:
    """Every identifier of a Mochi program outside comments and strings: (line, column, is a call) each."""
    out: dict[str, list[tuple[int, int, bool]]] = {}
    for m in _TOKENS.finditer(source):
        tok = m.group(0)
        if not _IDENT.fullmatch(tok):
            continue
        line = source.count("\n", 0, m.start()) + 1
        col = m.start() - (source.rfind("\n", 0, m.start()) + 1) + 1
        call = source[m.end():m.end() + 1] == "(" or source[m.end():].lstrip(" ").startswith("(")
        out.setdefault(tok, []).append((line, col, call))
    return out


def _record_lowers(t: TypeDef) -> bool:
    """Records and sum types lower when every field is a scalar; enums always do (mochi-language.md §7.3)."""
    return t.kind == "enum" or all(f.type in _SCALAR for f in t.fields)


def lowers_param(desc: str, types: tuple[TypeDef, ...]) -> bool:
    """Can the target pass an argument of this type to an extern?"""
    c = desc[0]
    if c in _SCALAR or c in "VH":
        return True
    if c == "S":
        return desc[1:] in _SCALAR
    if c == "R":
        return _record_lowers(types[references(desc)[0]])
    if c == "C":
        return _callback_lowers(desc)
    return False  # lists, maps, bytes and optionals


def lowers_return(desc: str) -> bool:
    """Can the target use a value of this type that an extern returns?"""
    return desc in ("n", "V") or desc in _SCALAR or desc[0] == "H"


def _callback_lowers(desc: str) -> bool:
    *args, ret = parts(desc)
    return all(a in _SCALAR for a in args) and (ret in _SCALAR or ret == "n")


def _names(s: Surface) -> list[str]:
    return [t.mochi_name for t in s.types]


def target_surface(surface: Surface, used: set[str], where: dict[str, Location]) -> TargetView:
    """The target view of one (already aliased) surface for a program that uses the names *used*.

    *where* gives the program location of a name's first use, for the findings.
    """
    findings: list[Finding] = []
    names = _names(surface)
    by_type = {t.mochi_name: i for i, t in enumerate(surface.types)}
    by_variant = {f.mochi_name: i for i, t in enumerate(surface.types) if t.kind in ("union", "enum")
                  for f in t.fields}
    functions: list[Function] = []
    for fn in surface.functions:
        if fn.mochi_name not in used:
            continue
        params: list[Param] = []
        for p in fn.params:
            if p.type[0] == "C" and not _callback_lowers(p.type):
                findings.append(Finding("error", where.get(fn.mochi_name), (
                    f"{fn.mochi_name}: parameter {p.mochi_name}: {mochi_type(p.type, names)}: the Mochi Python target "
                    "passes only functions of int, float, bool and string (mochi-language.md §7.3); write a function "
                    f"in your <module>_externs.py that calls {fn.item or fn.name} with a Python callable, and declare "
                    "it with `extern python fun`")))
                params.append(p)
            elif lowers_param(p.type, surface.types):
                params.append(p)
            else:
                findings.append(Finding("note", where.get(fn.mochi_name), (
                    f"{fn.mochi_name}: parameter {p.mochi_name}: {mochi_type(p.type, names)} is passed as value "
                    "(build it with the mb_ prelude)")))
                params.append(replace(p, type="V"))
        ret = fn.ret
        if not lowers_return(ret):
            findings.append(Finding("note", where.get(fn.mochi_name), (
                f"{fn.mochi_name}: returns {mochi_type(ret, names)} as value (read it with the mb_ prelude)")))
            ret = "V"
        functions.append(replace(fn, params=tuple(params), ret=ret))
    named = {by_type[n] for n in used if n in by_type} | {by_variant[n] for n in used if n in by_variant}
    for index in sorted(named):
        t = surface.types[index]
        if not _record_lowers(t):
            bad = next(f for f in t.fields if f.type not in _SCALAR)
            findings.append(Finding("error", where.get(t.mochi_name) or next(
                (where[f.mochi_name] for f in t.fields if f.mochi_name in where), None), (
                f"type {t.mochi_name}: field {bad.mochi_name}: {mochi_type(bad.type, names)}: the Mochi Python target "
                "lowers only records and sum types of int, float, bool and string (mochi-language.md §7.3); take "
                "the value the extern returns and read it with mb_field_int / mb_field_string / mb_payload")))
    kept_types, functions = _prune(surface.types, functions, named)
    return TargetView(surface=replace(surface, functions=tuple(functions), types=tuple(kept_types),
                                      classes=surface.classes), findings=findings)


def _prune(types: tuple[TypeDef, ...], functions: list[Function], named: set[int]
           ) -> tuple[list[TypeDef], list[Function]]:
    """The types the functions and the program need, renumbered in order (a type follows the ones it uses)."""
    used: set[int] = set()
    todo = [n for f in functions for d in (f.ret, *(p.type for p in f.params)) for n in references(d)] + list(named)
    while todo:
        n = todo.pop()
        if n not in used:
            used.add(n)
            todo += [m for f in types[n].fields for m in references(f.type)]
    order = {old: new for new, old in enumerate(sorted(used))}

    def renumber(desc: str) -> str:
        return re.sub(r"R(\d+);", lambda m: f"R{order[int(m[1])]};", desc)

    kept = [replace(t, fields=tuple(replace(f, type=renumber(f.type)) for f in t.fields))
            for n, t in enumerate(types) if n in used]
    return kept, [replace(f, ret=renumber(f.ret), params=tuple(replace(p, type=renumber(p.type)) for p in f.params))
                  for f in functions]


def undeclared_calls(names: dict[str, list[tuple[int, int, bool]]], aliases: dict[str, set[str]], path: str
                     ) -> list[Finding]:
    """Warnings for calls of `<alias>_...` names the import does not declare, and of unknown `mb_` names."""
    out = []
    for name, uses in sorted(names.items()):
        calls = [(line, col) for line, col, call in uses if call]
        if not calls:
            continue
        scopes = [(alias, declared) for alias, declared in aliases.items() if name.startswith(f"{alias}_")]
        if name.startswith("mb_"):
            scopes.append(("mb", set(PRELUDE)))
        if not scopes or any(name in declared for _, declared in scopes):
            continue
        alias, declared = max(scopes, key=lambda s: len(s[0]))
        close = difflib.get_close_matches(name, sorted(declared), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        what = "the bridge prelude" if alias == "mb" else f"the import aliased {alias}"
        line, col = calls[0]
        out.append(Finding("warning", Location(Path(path), line, col),
                           f"{name} is called but {what} declares no such name{hint}"))
    return out
