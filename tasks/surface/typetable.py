"""The closed type table: a Python annotation maps to a type descriptor, or is refused with a reason.

:class:`Mapper` reads one annotation in the context of its module (DESIGN §6: scalars, containers,
optionals, unions, literals, callables, awaitables, type variables, the package's and the standard
library's classes). :class:`TypeTable` owns what mapping creates: the classes that cross as handles
(`H<n>;`) and the named Mochi types (`R<n>;`: records, sum types, enums), named in one namespace
with the externs. A type either maps to a descriptor (:mod:`tasks.surface.typedesc`) or raises
:class:`~tasks.surface.model.Refusal` with a DESIGN §6 skip reason; refused items never become `any`.

The two classes are one file because each needs the other: mapping a record's fields names types,
and naming a record maps its fields.
"""

from __future__ import annotations

import ast

from .documents import Documents, Module, decorator_names, doc_summary, self_alias
from .model import ClassRef, Field, Refusal, SurfaceOptions, TypeDef, mochi_safe
from .typedesc import callable_, handle, mochi_type, named, parts

__all__ = ["ANYLIKE", "AWAITABLE", "Mapper", "TypeTable", "constant_type", "is_classvar"]

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
ANYLIKE = {"typing.Any": "Any", "typing_extensions.Any": "Any", "builtins.object": "object"}
_CALLABLE = {"typing.Callable", "collections.abc.Callable", "typing_extensions.Callable"}
_ASYNC_ITER = {f"{p}{n}" for p in _T for n in ("AsyncIterator", "AsyncIterable", "AsyncGenerator")}
AWAITABLE = {f"{p}{n}" for p in _T for n in ("Awaitable", "Coroutine")}
_ENUMS = {"enum.Enum", "enum.IntEnum", "enum.StrEnum"}
# Protocols a Mochi scalar satisfies, accepted in parameters (DESIGN §6): an int has __index__ and __int__
_PARAM_SCALARS = {f"{p}{n}": d for p in ("typing.", "typing_extensions.")
                  for n, d in (("SupportsIndex", "i"), ("SupportsInt", "i"), ("SupportsFloat", "f"))}
_PATHLIKE = {"os.PathLike"}
_BUFFERS = {"collections.abc.Buffer", "typing_extensions.Buffer", "typing.ByteString", "builtins.memoryview"}
"""Buffer parameters take bytes (a list<int> on the Mochi side), like the `bytes` row (PEP 688)."""
"""`os.PathLike[str]` is accepted where a string is passed: `os.fspath` and `open` take either."""
_IO_CLASSES = {"typing.IO", "typing.TextIO", "typing.BinaryIO"}
_MAPPING_PROTOCOLS = {"_typeshed.SupportsItems", "_typeshed.SupportsKeysAndGetItem"}
"""Protocols a dict satisfies: a parameter typed by one takes a map."""
_MAPPING_METHODS = {"items", "keys", "values", "get", "__getitem__", "__iter__", "__len__", "__contains__"}
"""Classes no stream is an instance of at run time: checked by their methods, like protocols."""
_RECORD_DECORATORS = {"dataclass", "define", "frozen", "mutable", "attrs"}


class TypeTable:
    """The handles and named types of one distribution's surface, in one collision-free namespace."""

    def __init__(self, docs: Documents, options: SurfaceOptions, prefix: str) -> None:
        self.docs = docs
        self.options = options
        self.classes: list[ClassRef] = []
        self.prefix = prefix
        """The alias type names start with: the distribution's first import name."""
        self.types: list[TypeDef] = []
        self.type_keys: dict[tuple[str, ...], str] = {}
        """A class or structural shape -> its descriptor; `pending` while a record's fields are mapped."""
        self.used: set[str] = set()
        """Every Mochi name taken in the shim: externs, types and variants share one namespace."""
        self.public: dict[tuple[str, str], str] = {}
        """(defining module, class) -> the first path the package named it by (`io.StringIO` for `_io`'s)."""

    def seen_as(self, mod: Module, node: ast.ClassDef, qual: str) -> None:
        self.public.setdefault((mod.qualname, node.name), qual)

    def class_handle(self, mod: Module, node: ast.ClassDef) -> str:
        ref = ClassRef(module=mod.qualname, name=node.name)
        if ref not in self.classes:
            self.classes.append(ref)
        return handle(self.classes.index(ref))

    def class_type(self, mod: Module, node: ast.ClassDef) -> str:
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
            if (self.is_protocol(mod, node) and "runtime_checkable" not in decorator_names(node)) or (
                    f"{mod.qualname}.{node.name}" in _IO_CLASSES):
                return self.protocol_handle(mod, node)
            return self.class_handle(mod, node)
        self.type_keys[key] = "pending"
        try:
            fields = self.enum_members(node) if kind == "enum" else self.record_fields(mod, node, kind)
        except Refusal:
            fields = []
        if len(fields) < (2 if kind == "enum" else 1):  # `type E = A` alone is an alias, `type R {}` no record
            desc = self.class_handle(mod, node)
        else:
            desc = self.add_type(kind, node.name, fields, module=mod.qualname, name=node.name, doc=doc_summary(node))
        self.type_keys[key] = desc
        return desc

    def protocol_handle(self, mod: Module, node: ast.ClassDef) -> str:
        """A handle checked by the methods the protocol declares (no run-time `isinstance` exists for it)."""
        methods = sorted(name for name, (_, member, _) in self.docs.members(mod, node).items()
                         if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef) and "." not in name
                         and name not in ("__init__", "__class_getitem__", "__subclasshook__", "__new__")
                         and not decorator_names(member) & {"property", "cached_property"})
        if not methods:
            raise Refusal("UnsupportedTypingConstruct", f"{node.name} is a Protocol with no methods to check")
        ref = ClassRef(module=mod.qualname, name=node.name, methods=tuple(methods))
        if ref not in self.classes:
            self.classes.append(ref)
        return handle(self.classes.index(ref))

    def mapping_protocol(self, mod: Module, node: ast.ClassDef) -> bool:
        """A protocol a dict satisfies (its methods are a mapping's, `items()` for requests' SupportsItems): a
        parameter of it takes a map."""
        if not self.is_protocol(mod, node):
            return False
        methods = {n for n, (_, m, _) in self.docs.members(mod, node).items()
                   if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
        return bool(methods) and methods <= _MAPPING_METHODS

    def scalar_arms(self, desc: str) -> list[str]:
        """How the plain and positional forms offer a union parameter: its arms (`O` kept), scalars first in
        their order, a `float` arm as `int` and then `float` (PEP 484: a float parameter takes an int, which
        crosses unchanged, so `intcomma(value: float | str)` is called `intcomma(1234567)` as in Python), then
        lists, maps, sets and bytes. The first is the form's type, the others get forms of their own; handles
        and records stay in the `_with` form, which keeps the whole union."""
        opt = "O" if desc.startswith("O") else ""
        core = desc[len(opt):]
        if not core.startswith("R"):
            return []
        t = self.types[int(core[1:-1])]
        if t.kind != "union":
            return []
        scalars: list[str] = []
        for f in t.fields:
            for arm in (("i", "f") if f.type == "f" else (f.type,)) if f.type in ("i", "f", "b", "s") else ():
                if arm not in scalars:
                    scalars.append(arm)
        # bytes beside str gets no form of its own (`str | bytes` is everywhere): the `_with` form takes it
        containers = [f.type for f in t.fields if f.type[0] in "LDKS" or (f.type == "Y" and "s" not in scalars)]
        return [opt + a for a in [*scalars, *containers]]

    def is_protocol(self, mod: Module, node: ast.ClassDef) -> bool:
        """A `typing.Protocol` class (its own bases name Protocol: subclasses of a protocol are classes)."""
        for base in node.bases:
            qual = self.docs.qualify(mod, base.value if isinstance(base, ast.Subscript) else base) or ""
            if qual in ("typing.Protocol", "typing_extensions.Protocol"):
                return True
        return False

    def class_kind(self, mod: Module, node: ast.ClassDef, depth: int = 0) -> str | None:
        own = mod.qualname.split(".")[0] in self.docs.tops  # records only from this distribution; enums from anywhere
        if own and decorator_names(node) & _RECORD_DECORATORS:
            return "dataclass"
        for base in node.bases:
            qual = self.docs.qualify(mod, base.value if isinstance(base, ast.Subscript) else base) or ""
            if qual in _ENUMS:
                return "enum"
            if qual.rpartition(".")[2] in ("NamedTuple", "TypedDict") and qual.startswith(("typing", "typing_ext")):
                return ("namedtuple" if qual.endswith("NamedTuple") else "typeddict") if own else None
            found = self.docs.find_qualified(qual) if qual and not qual.startswith("builtins.") and depth < 8 else None
            if found is not None and isinstance(found[1], ast.ClassDef):
                inherited = self.class_kind(found[0], found[1], depth + 1)
                if inherited in ("typeddict", "enum") and (own or inherited == "enum"):
                    return inherited
        return None

    def record_fields(self, mod: Module, node: ast.ClassDef, kind: str, position: str = "return") -> list[Field]:
        """The fields a record (or a handle class's field constructor, *position* `param`) is built from:
        annotated, not class variables, constructor arguments. An unmappable optional field is left out."""
        total = next((k.value.value for k in node.keywords if k.arg == "total" and isinstance(k.value, ast.Constant)),
                     True)
        fields: list[Field] = []
        taken: set[str] = set()
        for name, (owner_mod, member, owner) in self.docs.members(mod, node).items():
            if not isinstance(member, ast.AnnAssign) or is_classvar(member.annotation) or not member.simple:
                continue  # `simple=0`: an attribute `__init__` sets, no field of a record
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
                desc = Mapper(self, owner_mod, owner).map(member.annotation, position)
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

    def enum_members(self, node: ast.ClassDef) -> list[Field]:
        out = []
        for member in self.docs.flat(node.body):
            if isinstance(member, ast.Assign) and len(member.targets) == 1 and isinstance(member.targets[0], ast.Name):
                name = member.targets[0].id
            elif (isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name)
                  and not is_classvar(member.annotation)):
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

    def derives(self, desc: str, base: str) -> bool:
        """Whether handle *desc*'s class is a subclass of handle *base*'s, by the documents."""
        if not (desc.startswith("H") and base.startswith("H")):
            return False
        sub, sup = self.classes[int(desc[1:-1])], self.classes[int(base[1:-1])]
        return f"{sup.module}.{sup.name}" in self.docs.ancestors(f"{sub.module}.{sub.name}")

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


class Mapper:
    """Maps annotations in one module to descriptors; *position* is `param` or `return`."""

    def __init__(self, table: TypeTable, mod: Module, self_class: ast.ClassDef | None = None,
                 subst: ast.expr | None = None) -> None:
        self.table = table
        self.docs = table.docs
        self.mod = mod
        self.self_class = self_class
        self.subst = subst
        """`[python].monomorphise`: the type every type variable stands for."""


    def qualify(self, node: ast.expr) -> str | None:
        return self.docs.qualify(self.mod, node)

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
            if not self_alias(target, node.id):
                return self.map(target, position, depth + 1)
        if isinstance(node, ast.Subscript):
            return self._generic(node, position, depth)
        return self._simple(node, position, depth)

    def _generic(self, node: ast.Subscript, position: str, depth: int) -> str:  # noqa: PLR0915 - one row a branch
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
        if origin in AWAITABLE:
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: awaitables cross only as the result of an async "
                          "function")
        if origin in _CALLABLE:
            return self._callable(args, position, depth, shown)
        if origin in ("builtins.type", "typing.Type"):
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: classes as values are not in the type table")
        if position == "param" and origin in _PATHLIKE:
            return "s"
        if origin in _TUPLES:
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                return ("T" if position == "return" else "L") + self._element(args[0], position, depth, node)
            if not args or (len(args) == 1 and isinstance(args[0], ast.Tuple) and not args[0].elts):
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: the empty tuple has no record")
            descs = [self._element(a, position, depth, node) for a in args]
            return self.table.structural("tuple", descs)
        if origin in _LISTS and len(args) == 1:
            return "L" + self._element(args[0], position, depth, node)
        if origin in _SEQUENCES and len(args) >= 1:
            return ("T" if position == "return" else "L") + self._element(args[0], position, depth, node)
        if origin in _SETS and len(args) == 1:
            elem = self._element(args[0], position, depth, node)
            if elem not in "ifbs":
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: set elements must be scalars")
            return "S" + elem
        if (origin in _DICTS or (position == "param" and origin in _MAPPING_PROTOCOLS)) and len(args) == 2:
            key = self.map(args[0], position, depth + 1)
            if key not in ("s", "i") and position == "param":  # keys `str | bytes`: what Mochi passes is a str
                key = next((a for a in self.table.scalar_arms(key) if a in ("s", "i")), key)
            if key not in ("s", "i"):
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: map keys must be str or int")
            return ("D" if key == "s" else "K") + self._element(args[1], position, depth, node)
        if origin in _IO_CLASSES:
            found = self.docs.find_qualified(origin)
            if found is not None and isinstance(found[1], ast.ClassDef):
                return self.table.class_type(found[0], found[1])
        if origin and not origin.startswith(("builtins.", "typing.", "typing_extensions.", "collections.abc.")):
            # A generic class of the package or the standard library: type arguments are erased at run time,
            # so `ndarray[S, D]` is a handle checked against ndarray. A generic alias maps as its definition.
            found = self.docs.find_qualified(origin)
            if found is not None and isinstance(found[1], ast.ClassDef):
                if position == "param" and len(args) == 2 and self.table.mapping_protocol(found[0], found[1]):
                    return self._generic(ast.Subscript(value=ast.Name("dict"), slice=node.slice), position, depth)
                self.table.seen_as(found[0], found[1], origin)
                return self.table.class_type(found[0], found[1])
            owner = self.docs.load_qualified_module(origin.rpartition(".")[0])
            hit = self.docs.find_alias(owner, origin.rpartition(".")[2]) if owner is not None else None
            if hit is not None and hit[1] in hit[0].aliases:
                return Mapper(self.table, hit[0], subst=self.subst).map(ast.Name(hit[1]), position, depth + 1)
        raise Refusal("UnsupportedTypingConstruct", f"{shown} is not in the type table")

    def _simple(self, node: ast.expr, position: str, depth: int) -> str:
        qual = self.qualify(node)
        shown = ast.unparse(node)
        if qual is None:
            raise Refusal("UnsupportedTypingConstruct", f"{shown} is not a type")
        if qual in _SCALARS:
            return _SCALARS[qual]
        if position == "param" and qual in _PARAM_SCALARS:
            return _PARAM_SCALARS[qual]
        if position == "param" and qual in _PATHLIKE:
            return "s"
        if position == "param" and qual in _BUFFERS:
            return "Y"
        if qual in _NONE:
            return "n"
        if qual in ANYLIKE:
            if self.table.options.any_handle:
                return "V"
            raise Refusal("UnsupportedTypingConstruct", f"{ANYLIKE[qual]} cannot be typed in Mochi (opt in with "
                          '[python].any = "handle")')
        if qual == "builtins.complex":
            raise Refusal("NoComplexType", "complex has no Mochi type")
        if qual in ("builtins.type", "typing.Type"):
            raise Refusal("UnsupportedTypingConstruct", f"{shown}: classes as values are not in the type table")
        if qual in _LISTS | _DICTS | _SETS | _SEQUENCES | _TUPLES:
            raise Refusal("UnsupportedTypingConstruct", f"bare {shown} has no element type")
        if qual.endswith((".Self", "typing.Self")) and self.self_class is not None:
            return self.table.class_type(self.mod, self.self_class)
        local = qual.rpartition(".")[2]
        if qual.startswith(f"{self.mod.qualname}.") and local in self.mod.typevars:
            return self._typevar(self.mod.typevars[local], position, depth)
        found = self.docs.find_qualified(qual) if not qual.startswith("builtins.") else None
        if found is None and not qual.startswith("builtins."):  # a TypeVar or alias of another module
            owner = self.docs.load_qualified_module(qual.rpartition(".")[0])
            hit = self.docs.find_alias(owner, local) if owner is not None else None
            if hit is not None:
                return Mapper(self.table, hit[0], subst=self.subst).map(ast.Name(hit[1]), position, depth + 1)
        if found is not None:
            defmod, defnode = found
            if isinstance(defnode, ast.ClassDef):
                # find_qualified only looks in this distribution, its typed requirements and the standard library
                self.table.seen_as(defmod, defnode, qual)
                return self.table.class_type(defmod, defnode)
            if local in defmod.typevars:
                return Mapper(self.table, defmod).map(ast.Name(local), position, depth + 1)
            if local in defmod.aliases:
                return Mapper(self.table, defmod).map(defmod.aliases[local], position, depth + 1)
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
        if self.table.options.any_handle:
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
        """A union: one arm, an optional, or a sum type. A parameter's union is narrowed to the arms that map
        (and of arms that overlap at run time, to the first), since whatever Mochi passes then fits it; a
        return's union must map whole."""
        param = position == "param"
        shown = " | ".join(ast.unparse(a) for a in arms)
        mapped: list[str] = []
        has_none = False
        refused: Refusal | None = None
        for arm in arms:
            if self.qualify(arm) in ANYLIKE:
                if self.table.options.any_handle:
                    return "V"  # Any absorbs the other arms (a value may be None, too)
                if param:
                    continue
                raise Refusal("OpenUnion", f"{shown} has an Any arm")
            try:
                desc = self.map(arm, position, depth + 1)
            except Refusal as exc:
                if not param:
                    raise
                refused = refused or exc
                continue
            if desc.removeprefix("O") == "V":
                return "V"  # an alias of Any (typeshed's `Incomplete`) absorbs the other arms too
            if desc == "n":
                has_none = True
            elif desc.removeprefix("O") not in mapped:
                mapped.append(desc.removeprefix("O"))
                has_none = has_none or desc.startswith("O")
        if not mapped and refused is not None:
            raise Refusal(refused.reason, f"{shown}: no arm maps ({refused.detail})")
        if "i" in mapped and "f" in mapped:
            mapped.remove("i")  # int | float is a float (a float parameter takes an int unchanged)
        opt = "O" if has_none else ""
        if not mapped:
            return "n"
        if len(mapped) == 1:
            if opt and mapped[0].startswith("C") and parts(mapped[0])[-1] != "n":
                # `fun(A): R?` reads as a function returning `R?`: an optional callable that returns a value has
                # no Mochi spelling
                raise Refusal("UnsupportedTypingConstruct", f"{shown}: an optional callable that returns a value "
                              "cannot be written in Mochi")
            return opt + mapped[0]
        if not param:
            # an arm whose class derives from another arm's is that arm (scipy's `float32 | float64`, numpy's
            # `floating[_32Bit] | float64`: every value is a `floating`), not an overlap
            mapped = [d for d in mapped if not any(o != d and self.table.derives(d, o) for o in mapped)]
            if len(mapped) == 1:
                return opt + mapped[0]
        seen: dict[str, str] = {}
        kept = []
        for desc in mapped:
            kinds = self.table.runtime_kinds(desc)
            clash = next((k for k in kinds if k == "any" or k in seen), None)
            if clash is not None:
                if param:
                    continue
                names = [t.mochi_name for t in self.table.types]
                raise Refusal("OpenUnion", f"{shown}: arms {mochi_type(seen.get(clash, desc), names)} and "
                              f"{mochi_type(desc, names)} overlap at run time")
            seen.update(dict.fromkeys(kinds, desc))
            kept.append(desc)
        return opt + (kept[0] if len(kept) == 1 else self.table.structural("union", kept))


_BUILTIN_NAMES = frozenset({"int", "float", "bool", "str", "bytes", "bytearray", "list", "dict", "set", "frozenset",
                            "tuple", "object", "type", "complex", "None", "memoryview", "range", "slice"})


def constant_type(node: ast.AnnAssign) -> str | None:
    """`X: Final = 3`: a bare `Final` takes its type from the literal value (PEP 591)."""
    if ast.unparse(node.annotation) not in ("Final", "typing.Final", "typing_extensions.Final", "t.Final"):
        return None
    value = node.value.value if isinstance(node.value, ast.Constant) else None
    return {bool: "b", int: "i", float: "f", str: "s", bytes: "Y"}.get(type(value)) if value is not None else None


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_or(node.left) + _flatten_or(node.right)
    return [node]


def is_classvar(annotation: ast.expr) -> bool:
    return ast.unparse(annotation).startswith(("ClassVar", "typing.ClassVar"))

