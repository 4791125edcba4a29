"""A checker for the Mochi subset DESIGN §6 lets a shim contain.

Allowed: blank lines, `//` and `///` comments, and flat `extern python fun name(p: T, ...): R`
declarations whose names are no Mochi keyword, Python keyword or Mochi builtin, with named,
typed, distinct parameters and type forms `int float bool string value list<T> map<K, V> set<T>
T? fun(A, ...): R`. Returns the list of problems (empty when the shim is valid).
"""

from __future__ import annotations

import keyword
import re

from tasks.surface import MOCHI_BUILTINS, MOCHI_KEYWORDS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECL = re.compile(r"^extern python fun ([^(]*)\((.*)\)(?:: (.+))?$")
_SCALARS = {"int", "float", "bool", "string", "value"}


def _bad_name(name: str) -> str | None:
    if not _IDENT.fullmatch(name):
        return f"{name!r} is not a flat identifier"
    if name in MOCHI_KEYWORDS or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a keyword"
    if name in MOCHI_BUILTINS:
        return f"{name!r} is a Mochi builtin"
    return None


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.tokens = re.findall(r"[A-Za-z_]\w*|[<>(),:?]", text)
        if "".join(self.tokens) != text.replace(" ", ""):
            raise ValueError(f"unexpected characters in type {text!r}")
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise ValueError(f"expected {want or 'a type'} at token {self.pos}, got {tok!r}")
        self.pos += 1
        return tok

    def parse(self) -> None:
        self.type_()
        if self.peek() is not None:
            raise ValueError(f"trailing tokens after a type: {self.tokens[self.pos:]}")

    def type_(self) -> None:
        tok = self.take()
        if tok in _SCALARS:
            pass
        elif tok in ("list", "set"):
            self.take("<")
            self.type_()
            self.take(">")
        elif tok == "map":
            self.take("<")
            key = self.take()
            if key not in ("int", "string"):
                raise ValueError(f"map keys must be int or string, got {key!r}")
            self.take(",")
            self.type_()
            self.take(">")
        elif tok == "fun":
            self.take("(")
            if self.peek() != ")":
                self.type_()
                while self.peek() == ",":
                    self.take(",")
                    self.type_()
            self.take(")")
            if self.peek() == ":":
                self.take(":")
                self.type_()
        else:
            raise ValueError(f"type {tok!r} is not in the allowed set")
        if self.peek() == "?":
            self.take("?")
            if self.peek() == "?":
                raise ValueError("T?? is not a type")


def check_type(text: str) -> str | None:
    try:
        _TypeParser(text).parse()
    except ValueError as exc:
        return str(exc)
    return None


def check_shim(text: str) -> list[str]:
    problems = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("//"):
            continue
        m = _DECL.match(line)
        if not m:
            problems.append(f"line {n}: not an allowed form: {line!r}")
            continue
        name, params, ret = m[1], m[2], m[3]
        if (why := _bad_name(name)) is not None:
            problems.append(f"line {n}: {why}")
        if name in seen:
            problems.append(f"line {n}: {name!r} is declared twice")
        seen.add(name)
        names: set[str] = set()
        for param in _split_params(params):
            pname, sep, ptype = param.partition(": ")
            if not sep:
                problems.append(f"line {n}: parameter {param!r} is unnamed or untyped")
                continue
            if (why := _bad_name(pname)) is not None:
                problems.append(f"line {n}: parameter {why}")
            if pname in names:
                problems.append(f"line {n}: parameter {pname!r} repeats")
            names.add(pname)
            if (why := check_type(ptype)) is not None:
                problems.append(f"line {n}: parameter {pname!r}: {why}")
        if ret is not None and (why := check_type(ret)) is not None:
            problems.append(f"line {n}: return type: {why}")
    return problems


def _split_params(text: str) -> list[str]:
    """Split at top-level commas (types such as map<K, V> hold commas of their own)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out
