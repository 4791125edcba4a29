"""The bridge prelude: checked accessors and builders for `value`s, for programs on the Mochi Python target.

That target cannot pass lists or maps to an extern, cannot use a list, map, record or sum type an extern
returns, and cannot lower `T?` at all (mochi-language.md §4.2, §7.3). The target view of `mochi-py build`
declares such parameters and results as `value`, and a program reads and builds those values with these
functions. Each reader checks what it finds (`mb_get_int` raises `PythonTypeMismatch` on a `str`).

Names start with `mb_`, a prefix no import alias may take. Only the functions a program calls are declared.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRELUDE", "PreludeFunction", "render_prelude_python"]


@dataclass(frozen=True, slots=True)
class PreludeFunction:
    name: str
    params: tuple[tuple[str, str], ...]
    """(name, Mochi type) pairs."""
    ret: str
    """The Mochi return type; empty for none."""
    doc: str
    body: str
    """The Python function body (one expression, returned), over the parameter names."""

    def declaration(self) -> str:
        params = ", ".join(f"{n}: {t}" for n, t in self.params)
        return f"extern python fun {self.name}({params})" + (f": {self.ret}" if self.ret else "")


_SCALARS = (("int", "int"), ("float", "float"), ("bool", "bool"), ("string", "str"))


def _functions() -> list[PreludeFunction]:
    out = [
        PreludeFunction("mb_is_none", (("v", "value"),), "bool", "Whether the value is None (an optional result that "
                        "is absent).", "v is None"),
        PreludeFunction("mb_len", (("v", "value"),), "int", "The number of items of a list, map, set or string.",
                        "_mb_len(v)"),
        PreludeFunction("mb_get", (("v", "value"), ("i", "int")), "value", "Item i of a list (negative counts from "
                        "the end).", "_mb_item(v, i)"),
        PreludeFunction("mb_key", (("v", "value"), ("k", "string")), "value", "The value of key k of a map.",
                        "_mb_key(v, k)"),
        PreludeFunction("mb_key_at", (("v", "value"), ("k", "int")), "value", "The value of int key k of a map.",
                        "_mb_key(v, k)"),
        PreludeFunction("mb_has", (("v", "value"), ("k", "string")), "bool", "Whether map v has key k.",
                        "_mb_map(v).__contains__(k)"),
        PreludeFunction("mb_keys", (("v", "value"),), "value", "The keys of a map, as a list value.",
                        "list(_mb_map(v))"),
        PreludeFunction("mb_field", (("v", "value"), ("name", "string")), "value", "Field *name* of a record (its "
                        "Python attribute, or its key for a TypedDict).", "_mb_field(v, name)"),
        PreludeFunction("mb_variant", (("v", "value"),), "string", "The Mochi name of the variant a sum-type or enum "
                        "value is.", "_mb_variant(v)"),
        PreludeFunction("mb_payload", (("v", "value"),), "value", "The payload `v` of a sum-type variant.",
                        "_mb_field(v, 'v')"),
        PreludeFunction("mb_str", (("v", "value"),), "string", "The value as text (Python's str()).", "str(v)"),
        PreludeFunction("mb_none", (), "value", "None, for an optional parameter.", "None"),
        PreludeFunction("mb_list_new", (), "value", "A new, empty list.", "[]"),
        PreludeFunction("mb_list_append", (("l", "value"), ("x", "value")), "value", "Append x to list l; returns l.",
                        "_mb_append(l, x)"),
        PreludeFunction("mb_map_new", (), "value", "A new, empty map.", "{}"),
        PreludeFunction("mb_map_set", (("m", "value"), ("k", "string"), ("x", "value")), "value",
                        "Set key k of map m to x; returns m.", "_mb_set(m, k, x)"),
        PreludeFunction("mb_set_new", (), "value", "A new, empty set.", "set()"),
    ]
    for mochi, py in _SCALARS:
        out += [
            PreludeFunction(f"mb_as_{mochi}", (("v", "value"),), mochi, f"The value as {mochi}; PythonTypeMismatch "
                            "if it is not one.", f"_mb_check(v, {py!r}, 'the value')"),
            PreludeFunction(f"mb_get_{mochi}", (("v", "value"), ("i", "int")), mochi, f"Item i of a list, as {mochi}.",
                            f"_mb_check(_mb_item(v, i), {py!r}, f'item [{{i}}]')"),
            PreludeFunction(f"mb_key_{mochi}", (("v", "value"), ("k", "string")), mochi,
                            f"The value of key k of a map, as {mochi}.",
                            f"_mb_check(_mb_key(v, k), {py!r}, f'key {{k!r}}')"),
            PreludeFunction(f"mb_field_{mochi}", (("v", "value"), ("name", "string")), mochi,
                            f"Field *name* of a record, as {mochi}.",
                            f"_mb_check(_mb_field(v, name), {py!r}, f'field .{{name}}')"),
            PreludeFunction(f"mb_of_{mochi}", (("x", mochi),), "value", f"A {mochi} as a value.", "x"),
            PreludeFunction(f"mb_list_append_{mochi}", (("l", "value"), ("x", mochi)), "value",
                            f"Append a {mochi} to list l; returns l.", "_mb_append(l, x)"),
            PreludeFunction(f"mb_map_set_{mochi}", (("m", "value"), ("k", "string"), ("x", mochi)), "value",
                            f"Set key k of map m to a {mochi}; returns m.", "_mb_set(m, k, x)"),
        ]
    out.append(PreludeFunction("mb_set_add", (("s", "value"), ("x", "value")), "value", "Add x to set s; returns s.",
                               "_mb_add(s, x)"))
    return out


PRELUDE = {f.name: f for f in _functions()}

_HELPERS = '''\
class _MbMismatch(TypeError):
    """A value was not what the program read it as (the bridge prelude's PythonTypeMismatch)."""


def _mb_fail(what, expected, value):
    raise _MbMismatch(f"{what}: expected {expected}, got {type(value).__name__}")


def _mb_check(value, kind, what):
    ok = {"int": type(value) is int, "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}[kind]
    if not ok:
        _mb_fail(what, {"str": "string"}.get(kind, kind), value)
    return float(value) if kind == "float" else value


def _mb_len(v):
    if isinstance(v, (list, tuple, dict, set, frozenset, str)):
        return len(v)
    _mb_fail("mb_len", "a list, map, set or string", v)


def _mb_item(v, i):
    if not isinstance(v, (list, tuple)):
        _mb_fail("mb_get", "a list", v)
    if not -len(v) <= i < len(v):
        raise IndexError(f"mb_get: index {i} is out of range for a list of {len(v)}")
    return v[i]


def _mb_map(v):
    if not isinstance(v, dict):
        _mb_fail("a map accessor", "a map", v)
    return v


def _mb_key(v, k):
    m = _mb_map(v)
    if k not in m:
        raise KeyError(f"the map has no key {k!r}")
    return m[k]


def _mb_field(v, name):
    if isinstance(v, dict):
        if name not in v:
            raise KeyError(f"the record has no field {name!r}")
        return v[name]
    if not hasattr(v, name):
        _mb_fail(f"field .{name}", "a record with that field", v)
    return getattr(v, name)


def _mb_variant(v):
    if isinstance(v, (str, int, float, bool, list, dict, tuple, set)) or v is None:
        _mb_fail("mb_variant", "a sum-type or enum value", v)
    return type(v).__name__


def _mb_append(l, x):
    if not isinstance(l, list):
        _mb_fail("mb_list_append", "a list", l)
    l.append(x)
    return l


def _mb_set(m, k, x):
    _mb_map(m)[k] = x
    return m


def _mb_add(s, x):
    if not isinstance(s, set):
        _mb_fail("mb_set_add", "a set", s)
    s.add(x)
    return s
'''


def render_prelude_python(names: list[str]) -> list[str]:
    """The sidecar's prelude: the helpers, then one function per used prelude name."""
    if not names:
        return []
    out = ["# ---- the bridge prelude (mochi-py build): checked accessors and builders for values ----",
           *_HELPERS.splitlines(), ""]
    for name in sorted(names):
        f = PRELUDE[name]
        out += ["", f"def {f.name}({', '.join(n for n, _ in f.params)}):", f'    """{f.doc}"""',
                f"    return {f.body}", ""]
    return out
