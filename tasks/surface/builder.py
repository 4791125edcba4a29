"""The item builder: one public function, method or class of a distribution bound in its Mochi forms.

:class:`Builder` maps each parameter through the type table (:mod:`.typetable`), offers the signature in
the calling conventions of DESIGN §6a (:mod:`.forms`), names overloads and forms, and records what it
could not bind (a :class:`~.model.Skip`, with a DESIGN §6 reason and a suggested hand-written binding).
"""

from __future__ import annotations

import ast
from dataclasses import replace

from .documents import Module, decorator_names, doc_summary
from .forms import Arg, Form, forms
from .model import Function, Param, Refusal, Skip, mochi_safe
from .typedesc import mochi_type, references
from .typetable import AWAITABLE, Mapper, TypeTable, constant_type, is_classvar

__all__ = ["Builder"]


def _arg(arg: ast.arg, kind: str, required: bool, mapper: Mapper, taken: set[str]) -> Arg:
    """One parameter through the type table; a required one that does not map refuses the function."""
    mname = mochi_safe(arg.arg, taken)
    taken.add(mname)
    try:
        if arg.annotation is None and not mapper.table.options.any_handle:
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} has no annotation")
        # PEP 484: a missing annotation is `Any` (stubgen leaves out what it cannot infer)
        desc = mapper.map(arg.annotation, "param") if arg.annotation is not None else "V"
        if desc == "n":
            raise Refusal("UnsupportedTypingConstruct", f"parameter {arg.arg!r} is annotated None")
    except Refusal as exc:
        if required:
            raise Refusal(exc.reason, f"parameter {arg.arg!r}: {exc.detail}") from None
        return Arg(name=arg.arg, mochi_name=mname, kind=kind, required=False, desc=None,
                   why=f"{exc.reason}: {exc.detail}")
    arms = mapper.table.scalar_arms(desc)
    return Arg(name=arg.arg, mochi_name=mname, kind=kind, required=required, desc=desc,
               narrow=arms[0] if arms else None, others=tuple(arms[1:]))


def _args(fn: ast.FunctionDef | ast.AsyncFunctionDef, mapper: Mapper, skip_first: bool, taken: set[str]) -> list[Arg]:
    """Every parameter of *fn* in declaration order (`**kwargs: Unpack[TD]` as TD's keys, keyword-only)."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults_from = len(positional) - len(a.defaults)
    out = []
    for i, arg in enumerate(positional):
        if skip_first and i == 0:
            continue
        out.append(_arg(arg, "posonly" if i < len(a.posonlyargs) else "positional", i < defaults_from, mapper, taken))
    if a.vararg is not None:
        out.append(_arg(a.vararg, "varargs", False, mapper, taken))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append(_arg(arg, "keyword", default is None, mapper, taken))
    if a.kwarg is not None and a.kwarg.annotation is not None:
        out += _unpacked_kwargs(a.kwarg.annotation, mapper, taken)
    return out


def _unpacked_kwargs(annotation: ast.expr, mapper: Mapper, taken: set[str]) -> list[Arg]:
    """PEP 692: `**kwargs: Unpack[TD]` documents its keywords as the keys of the TypedDict TD."""
    if not (isinstance(annotation, ast.Subscript) and (mapper.qualify(annotation.value) or "").endswith(".Unpack")):
        return []
    found = mapper.docs.find_qualified(mapper.qualify(annotation.slice) or "")
    if found is None or not isinstance(found[1], ast.ClassDef):
        return []
    try:
        fields = mapper.table.record_fields(found[0], found[1], "typeddict", "param")
    except Refusal:
        return []
    out = []
    for f in fields:
        mname = mochi_safe(f.name, taken)
        taken.add(mname)
        desc = f.type[1:] if not f.required and f.type.startswith("O") else f.type
        arms = mapper.table.scalar_arms(desc)
        out.append(Arg(name=f.name, mochi_name=mname, kind="keyword", required=f.required, desc=desc,
                       narrow=arms[0] if arms else None, others=tuple(arms[1:])))
    return out


def _suggest(node: ast.FunctionDef | ast.AsyncFunctionDef, mochi: str, kind: str, module: str, path: str) -> str:
    """A starting point for a hand-written binding: the extern (required parameters, everything typed `value`)
    and the sidecar function that implements it, which imports the package itself."""
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    required = positional[: len(positional) - len(a.defaults)]
    if kind in ("method", "getattr", "new") or (required and required[0].arg in ("self", "cls")):
        required = required[1:]
    names = (["self"] if kind in ("method", "getattr") else []) + [mochi_safe(arg.arg) for arg in required]
    kw = [(arg.arg, mochi_safe(arg.arg)) for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    names += [n for _, n in kw]
    plain = [n for n in names if n not in {m for _, m in kw}]
    args = ", ".join([*(plain[1:] if kind == "method" else plain), *(f"{p}={m}" for p, m in kw)])
    if kind == "method":
        call = f"self.{path.rpartition('.')[2]}({args})"
    elif kind == "getattr":
        call = f"self.{path.rpartition('.')[2]}"
    else:
        call = f"importlib.import_module({module!r}).{path}({args})"
    decl = f"extern python fun {mochi}({', '.join(f'{n}: value' for n in names)}): value"
    return f"{decl}  ||  def {mochi}({', '.join(names)}): import importlib; return {call}"


def _signature_key(params: tuple[Param, ...], ret: str) -> tuple[object, ...]:
    return (tuple((p.mochi_name, p.type, p.keyword, p.varargs) for p in params), ret)


class Builder:
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
        self.foreign = False
        """Binding the members of classes of other distributions or of the standard library."""
        self.binding_class: tuple[Module, ast.ClassDef] | None = None
        """The class whose members are being bound (their handles are of it, not of the base defining them)."""

    def add(self, fn: Function) -> str:
        name = mochi_safe(fn.mochi_name, self.used)
        self.used.add(name)
        self.functions.append(replace(fn, mochi_name=name, foreign=self.foreign))
        return name

    def skip(self, item: str, exc: Refusal, suggestion: str = "") -> None:
        if not self.foreign:  # a foreign class's members are a convenience, not the package's surface
            self.skipped.append(Skip(item=item, reason=exc.reason, detail=exc.detail, suggestion=suggestion))

    def function(self, item: str, mod: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, module: str,
                 path: str, mochi: str, kind: str = "call", owner: ast.ClassDef | None = None) -> None:
        """Bind one function in its forms (DESIGN §6a); each `@overload` variant that maps gets its own
        `<name>_<k>` forms, unless every variant gives a form the same signature (then it is `<name>`).

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
        variants: list[ast.FunctionDef | ast.AsyncFunctionDef] = list(
            mod.overloads.get((owner.name if owner else "", node.name), [])) or [node]
        doc = doc_summary(node) or (doc_summary(variants[0]) if variants else "")
        mapped: list[tuple[int, list[Form], str, bool]] = []
        failures, lost_all = [], []
        for k, variant in enumerate(variants, 1):
            try:
                found, lost, ret, is_async = self._signature(mod, variant, kind, owner, subst)
            except Refusal as exc:
                failures.append((k, exc))
                continue
            except RecursionError:  # a hostile or generated stub: skipped like any other unmappable annotation
                failures.append((k, Refusal("UnsupportedTypingConstruct", "an annotation nests too deeply to map")))
                continue
            mapped.append((k, found, ret, is_async))
            lost_all += [f"overload {k}: {x}" if len(variants) > 1 else x for x in lost]
        if not mapped:
            refusal = failures[0][1] if len(variants) == 1 else Refusal(
                "OverloadAmbiguity", "no overload maps: " + "; ".join(
                    f"overload {k}: {e.reason}: {e.detail}" for k, e in failures)[:400])
            self.skip(item, refusal, _suggest(variants[0], mochi, kind, module, path))
            return False
        by_role: dict[tuple[str, str], list[tuple[int, Form, str, bool]]] = {}
        for k, found, ret, is_async in mapped:
            for form in found:
                by_role.setdefault((form.role, form.suffix), []).append((k, form, ret, is_async))
        for (role, suffix), entries in by_role.items():
            # the overload whose form takes the fewest arguments (the first of them) has the form's plain name,
            # the others add their number: `safe_dump(data)` rather than `safe_dump(data, stream)`
            one = len({_signature_key(f.params, r) for _, f, r, _ in entries}) == 1
            seen: set[tuple[object, ...]] = set()
            for k, form, ret, is_async in sorted(entries, key=lambda e: (len(e[1].params), e[0])):
                key = _signature_key(form.params, ret)
                if key in seen:
                    continue  # another overload already gives this form its signature
                seen.add(key)
                name = f"{mochi}{suffix}" if not seen - {key} else f"{mochi}{suffix}_{k}"
                note = f"overload {k} of {item}" if len(variants) > 1 and not one else ""
                self.add(Function(module=module, name=path, mochi_name=name, params=form.params, ret=ret,
                                  doc=". ".join(x for x in (note, doc) if x) or item, kind=kind, item=item,
                                  is_async=is_async, form=role))
                if one:
                    break
        if (lost_all or failures) and not self.foreign:
            parts = [*lost_all, *(f"overload {k} ({e.reason}: {e.detail})" for k, e in failures)]
            self.skipped.append(Skip(item=item, reason="PartiallyBound", detail=("left out: " + "; ".join(parts))[:400],
                                     suggestion=_suggest(variants[0], mochi, kind, module, path)))
        return True

    def _signature(self, mod: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, kind: str,
                   owner: ast.ClassDef | None, subst: ast.expr | None = None
                   ) -> tuple[list[Form], list[str], str, bool]:
        """The forms, what they leave out, the return descriptor, and whether the call's result is awaited."""
        is_async = isinstance(node, ast.AsyncFunctionDef) and not _is_async_generator(node)
        if isinstance(node, ast.AsyncFunctionDef) and self.trio:
            raise Refusal("IncompatibleAsyncRuntime", "the distribution imports trio (R12): its async code needs "
                          "trio's loop, not asyncio's")
        if node.returns is None and node.name != "__init__" and not self.table.options.any_handle:
            raise Refusal("UnsupportedTypingConstruct", "no return annotation")
        mapper = Mapper(self.table, mod, owner, subst)
        decorators = decorator_names(node)
        taken: set[str] = set()
        lead: tuple[Param, ...] = ()
        if kind in ("method", "getattr", "setattr") and owner is not None:
            taken.add("self")
            # the handle is of the class being bound: a member inherited from a base (perhaps a stub-only one,
            # numpy's `_ArrayOrScalarCommon`) is called on the subclass's instances
            of_mod, of_class = self.binding_class or (mod, owner)
            lead = (Param(name="self", mochi_name="self", type=self.table.class_type(of_mod, of_class), keyword=False,
                          required=True),)
        skip_first = owner is not None and ("staticmethod" not in decorators)
        args = _args(node, mapper, skip_first, taken) if kind != "getattr" else []
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
            # an unannotated return is `Any` (PEP 484), except `__init__`'s
            ret = (mapper.map(returns, "return") if returns is not None
                   else "V" if node.name != "__init__" else "n")
        found, lost = forms(args, lead)
        return found, lost, ret, is_async

    def klass(self, item: str, mod: Module, node: ast.ClassDef, alias: str) -> None:
        outer, self.binding_class = self.binding_class, (mod, node)
        try:
            self._klass(item, mod, node, alias)
        finally:
            self.binding_class = outer

    def _klass(self, item: str, mod: Module, node: ast.ClassDef, alias: str) -> None:
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
            if name.startswith("_") or name.endswith(".setter"):
                continue
            sub = f"{item}.{name}"
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                decorators = decorator_names(member)
                if "property" in decorators or "cached_property" in decorators:
                    self.function(sub, owner_mod, member, owner_mod.qualname, name, f"{alias}_{cname}_{name}",
                                  "getattr", owner)
                    setter = members.get(f"{name}.setter")
                    if setter is not None and isinstance(setter[1], ast.FunctionDef | ast.AsyncFunctionDef):
                        self.function(f"{sub}.setter", setter[0], setter[1], setter[0].qualname, name,
                                      f"{alias}_{cname}_set_{name}", "setattr", setter[2])
                elif decorators & {"staticmethod", "classmethod"}:
                    self.function(sub, owner_mod, member, mod.qualname, f"{cname}.{name}", f"{alias}_{cname}_{name}",
                                  "call", owner)
                else:
                    self.function(sub, owner_mod, member, owner_mod.qualname, name, f"{alias}_{cname}_{name}",
                                  "method", owner)
            elif isinstance(member, ast.AnnAssign) and is_classvar(member.annotation):
                # `ClassVar[T]`: read from the class itself, no handle needed
                try:
                    inner = member.annotation.slice if isinstance(member.annotation, ast.Subscript) else None
                    ret = (Mapper(self.table, owner_mod, owner).map(inner, "return") if inner is not None
                           else constant_type(member))
                    if ret is None:
                        raise Refusal("UnsupportedTypingConstruct", "a bare ClassVar without a literal value")
                except Refusal as exc:
                    self.skip(sub, exc)
                    continue
                self.add(Function(module=mod.qualname, name=f"{cname}.{name}", mochi_name=f"{alias}_{cname}_{name}",
                                  params=(), ret=ret, doc=sub, kind="constant", item=sub, form="plain"))
            elif isinstance(member, ast.AnnAssign) and not record:  # a record's fields are read in Mochi
                try:
                    ret = constant_type(member) or Mapper(self.table, owner_mod, owner).map(member.annotation, "return")
                except Refusal as exc:
                    self.skip(sub, exc)
                    continue
                self.add(Function(module=owner_mod.qualname, name=name, mochi_name=f"{alias}_{cname}_{name}",
                                  params=(Param(name="self", mochi_name="self", type=desc, keyword=False,
                                                required=True),),
                                  ret=ret, doc=sub, kind="getattr", item=sub, form="plain"))

    def _field_constructor(self, item: str, mod: Module, node: ast.ClassDef, alias: str) -> None:
        """The generated `__init__` of a dataclass, NamedTuple or TypedDict that crosses as a handle: its
        record fields as keyword parameters, the required ones in the plain form, all in `_with`."""
        try:
            fields = self.table.record_fields(mod, node, self.table.class_kind(mod, node) or "dataclass", "param")
        except Refusal as exc:
            self.skip(f"{item}.__init__", exc)
            return
        args = [Arg(name=f.name, mochi_name=f.mochi_name, kind="keyword", required=f.required,
                    desc=f.type[1:] if not f.required and f.type.startswith("O") and self.table.class_kind(
                        mod, node) == "typeddict" else f.type) for f in fields]
        ret = self.table.class_type(mod, node)
        for form in forms(args)[0]:
            self.add(Function(module=mod.qualname, name=node.name, mochi_name=f"{alias}_{node.name}_new{form.suffix}",
                              params=form.params, ret=ret, doc=doc_summary(node) or item, kind="new",
                              item=f"{item}.__init__", form=form.role))

    def casts(self) -> None:
        """`[python].any = "handle"`: checked conversions of a `value` to the types Mochi can hold, and of
        Mochi scalars to a `value` (to pass where Python takes `Any`)."""
        for suffix, ret in (("int", "i"), ("float", "f"), ("bool", "b"), ("string", "s"), ("list", "LV"),
                            ("map", "DV")):
            self.add(Function(module="", name="", mochi_name=f"{self.table.prefix}_as_{suffix}",
                              params=(Param(name="v", mochi_name="v", type="V", keyword=False, required=True),),
                              ret=ret, doc=f"The value as {mochi_type(ret)}; PythonTypeMismatch if it is not one.",
                              kind="cast", item=""))
        for suffix, arg in (("int", "i"), ("float", "f"), ("bool", "b"), ("string", "s"), ("list", "LV"),
                            ("map", "DV")):
            self.add(Function(module="", name="", mochi_name=f"{self.table.prefix}_of_{suffix}",
                              params=(Param(name="x", mochi_name="x", type=arg, keyword=False, required=True),),
                              ret="V", doc=f"A {mochi_type(arg)} as a value, to pass where Python takes Any.",
                              kind="cast", item=""))
        # a handle's attributes no stub declares, its text and its length, through Python's own builtins
        v = Param(name="v", mochi_name="v", type="V", keyword=False, required=True)
        for suffix, name, params, ret, doc in (
                ("attr", "getattr", (v, Param(name="name", mochi_name="name", type="s", keyword=False,
                                              required=True)), "V", "The value's attribute *name* (Python getattr)."),
                ("str", "str", (v,), "s", "The value as text (Python str)."),
                ("len", "len", (v,), "i", "The value's length (Python len).")):
            self.add(Function(module="builtins", name=name, mochi_name=f"{self.table.prefix}_{suffix}", params=params,
                              ret=ret, doc=doc, kind="call", item=""))


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
