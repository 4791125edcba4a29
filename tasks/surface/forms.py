"""Calling conventions (DESIGN §6a): the Mochi forms one Python signature is offered as.

Mochi has neither default nor keyword arguments, so a Python function `f(a, b=1, c=2, *rest, key=3)`
becomes several externs, each passing a fixed list of arguments:

- the plain form `f(a)`: the required parameters only (keyword-only ones too), every optional one keeps
  its Python default; a union is offered as its first scalar arm (`float | str` -> `int`, PEP 484's
  numeric tower), and its other scalar arms get plain forms of their own (`f_float(a)`, `f_string(a)`);
- positional forms `f_b(a, b)`, `f_c(a, b, c)`: the leading optional positional parameters too, named
  after the last one they pass, for up to :data:`MAX_POSITIONAL` of them (the way `naturalsize(x, True)`
  is written far more often than its keyword form);
- keyword forms `f_key(a, key)`, `f_b_key(a, b, key)`: the plain form (or one of the first two positional
  forms) and one more optional parameter passed by keyword, for each keyword-only one and each positional
  one no positional form reaches;
- the `_with` form `f_with(a, b, c, rest, key)`: every parameter that maps, in declaration order, each
  passed explicitly and with its full type (a union as its sum type, `T | None` as `T?`).

Only the `_with` form has optional (`T?`) parameters: Mochi does not pass `3` where `int?` is expected
(T007), so the other forms take the value itself, and passing None means choosing a form without it.

`*args: T` is a trailing `list<T>` (its items are spread into the call; an empty list passes none) in
every form that passes all the positional parameters before it: Python could not tell them apart.
This module is pure: arguments in, forms out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .model import Param

__all__ = ["MAX_POSITIONAL", "Arg", "Form", "forms"]

_KIND = {"i": "int", "f": "float", "b": "bool", "s": "string", "L": "list", "D": "map", "K": "intmap", "S": "set",
         "Y": "bytes"}

MAX_POSITIONAL = 3
"""Positional forms beyond the plain one; the `_with` form reaches every further parameter."""
KEYWORD_AFTER = 2
"""Keyword forms build on the plain form and on this many positional forms."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Arg:
    """One Python parameter as the type table saw it."""

    name: str
    mochi_name: str
    kind: str
    """`posonly`, `positional` (positional or keyword), `varargs` (`*args`) or `keyword` (keyword-only)."""
    required: bool
    desc: str | None
    """Its type descriptor; None when it does not map."""
    narrow: str | None = None
    """The type of the plain and positional forms (a union narrowed to its first scalar arm); None: *desc*."""
    others: tuple[str, ...] = ()
    """The union's other scalar arms: each gets a plain form of its own, `<name>_<kind>`."""
    why: str = ""
    """Why it does not map (`Reason: detail`)."""

    @property
    def simple(self) -> str | None:
        return self.narrow or self.desc


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    role: str
    """`plain`, `typed` (a form again with another arm of a union), `positional`, `keyword` or `with`."""
    suffix: str
    """Added to the extern's name: ``, `_<last parameter>` or `_with`."""
    params: tuple[Param, ...]


def _param(arg: Arg, full: bool, keyword: bool = False) -> Param:
    desc = arg.desc if full else arg.simple
    assert desc is not None
    if not full and desc.startswith("O"):
        desc = desc[1:]  # a form that passes an optional parameter passes a value: None is a shorter form, or `_with`
    return Param(name=arg.name, mochi_name=arg.mochi_name, type=("L" + desc) if arg.kind == "varargs" else desc,
                 keyword=keyword or arg.kind == "keyword", required=arg.required, varargs=arg.kind == "varargs")


def _typed(form: Form, args: list[Arg]) -> list[Form]:
    """When one parameter of *form* is a union of several scalar kinds, the form again with each other kind
    (`intcomma_float(x)`, `style_fg_string(text, "red")`): the natural call for each without a sum type."""
    unions = [a for a in args if a.others]
    if len(unions) != 1:
        return []
    out = []
    for arm in unions[0].others:
        swapped = _param(replace(unions[0], narrow=arm, others=()), False)
        params = tuple(replace(p, type=swapped.type) if p.name == swapped.name and not p.varargs else p
                       for p in form.params)  # the same parameter, passed the same way, with the other arm's type
        out.append(Form(role="typed", suffix=f"{form.suffix}_{_KIND[arm.removeprefix('O')[0]]}", params=params))
    return out


def forms(args: list[Arg], lead: tuple[Param, ...] = ()) -> tuple[list[Form], list[str]]:
    """The forms of a signature whose required parameters all map, and what even the `_with` form leaves out.

    *lead* (the handle of a method) starts every form.
    """
    positional = [a for a in args if a.kind in ("posonly", "positional")]
    required_pos = [a for a in positional if a.required]
    optional_pos = [a for a in positional if not a.required]
    varargs = next((a for a in args if a.kind == "varargs" and a.desc is not None), None)
    required_kw = [a for a in args if a.kind == "keyword" and a.required]
    head = [*lead, *(_param(a, False) for a in required_pos)]
    tail = [_param(a, False) for a in required_kw]
    out = [Form(role="plain", suffix="", params=(*head, *([_param(varargs, False)] if varargs and not optional_pos
                                                           else []), *tail))]
    out += _typed(out[0], [*required_pos, *required_kw])
    for k, arg in enumerate(optional_pos[:MAX_POSITIONAL], 1):
        if any(a.desc is None for a in optional_pos[:k]):
            break
        spread = [_param(varargs, False)] if varargs and k == len(optional_pos) else []
        form = Form(role="positional", suffix=f"_{arg.mochi_name}",
                    params=(*head, *(_param(a, False) for a in optional_pos[:k]), *spread, *tail))
        out += [form, *_typed(form, [*required_pos, *optional_pos[:k], *required_kw])]
    # keyword forms: the plain form, or one of the first KEYWORD_AFTER positional forms, and one more optional
    # parameter by keyword (`Request_new_headers(m, u, h)`, `Request_new_url_params(m, u, p)`), for each one no
    # positional form reaches (keyword-only ones, and positional ones past MAX_POSITIONAL)
    reached = {a.name for a in optional_pos[:MAX_POSITIONAL]}
    bases = [out[0], *[f for f in out if f.role == "positional"][:KEYWORD_AFTER]]
    for a in [*optional_pos, *(x for x in args if x.kind == "keyword" and not x.required)]:
        if a.desc is None or a.name in reached or a.kind == "posonly":
            continue
        for base in bases:
            form = Form(role="keyword", suffix=f"{base.suffix}_{a.mochi_name}",
                        params=(*base.params, _param(a, False, keyword=True)))
            shown = [x for x in args if x.name in {p.name for p in base.params}]
            out += [form, *_typed(form, [*shown, a])]
    full, lost, dropped = list(lead), [], False
    for a in positional:
        if a.desc is None or (dropped and a.kind == "posonly"):
            dropped = True
            lost.append(f"parameter {a.name!r} ({a.why or 'cannot be passed by keyword after a left-out one'})")
            continue
        full.append(_param(a, True, keyword=dropped))
    for a in args:
        if a.kind == "varargs":
            if a.desc is None:
                lost.append(f"*{a.name} ({a.why})")
            elif dropped:
                lost.append(f"*{a.name} (a positional parameter before it is left out)")
            else:
                full.append(_param(a, True))
        elif a.kind == "keyword":
            if a.desc is None:
                lost.append(f"parameter {a.name!r} ({a.why})")
            else:
                full.append(_param(a, True))
    if tuple(full) != out[0].params:
        out = [f for f in out if f.params != tuple(full)]
        out.append(Form(role="with", suffix="_with", params=tuple(full)))
    return out, lost
