"""A checker for the Mochi subset DESIGN §6 lets a shim contain.

Allowed: blank lines, `//` and `///` comments, flat `extern python fun name(p: T, ...): R`
declarations whose names are no Mochi keyword, Python keyword or Mochi builtin, with named,
typed, distinct parameters; records `type Name {` with one `field: T` a line and `}`; sum types
`type Name = A(v: T) | B(v: T)` or `type Name = A | B` (two variants or more). Type forms: `int
float bool string value list<T> map<K, V> set<T> T? fun(A, ...): R` and the names of types
declared above. Every name (extern, type, variant) is unique. Returns the list of problems (empty
when the shim is valid).
"""

from __future__ import annotations

import keyword
import re

from tasks.surface.model import MOCHI_BUILTINS, MOCHI_KEYWORDS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The real lexer starts a number at every digit and refuses an identifier character right after it
# (error[P043], mochi-language.md §7.1): digits may only end a name.
_DIGIT_THEN_IDENT = re.compile(r"[0-9][A-Za-z_]")
_DECL = re.compile(r"^extern python fun ([^(]*)\((.*)$")
_SCALARS = {"int", "float", "bool", "string", "value"}


def _bad_name(name: str) -> str | None:
    if not _IDENT.fullmatch(name):
        return f"{name!r} is not a flat identifier"
    if _DIGIT_THEN_IDENT.search(name):
        return f"{name!r} has a digit followed by an identifier character (the lexer refuses it: P043)"
    if name in MOCHI_KEYWORDS or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a keyword"
    if name in MOCHI_BUILTINS:
        return f"{name!r} is a Mochi builtin"
    return None


class _TypeParser:
    def __init__(self, text: str, known: frozenset[str] = frozenset()) -> None:
        self.known = known
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
        if tok in _SCALARS or tok in self.known:
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


def check_type(text: str, known: frozenset[str] = frozenset()) -> str | None:
    try:
        _TypeParser(text, known).parse()
    except ValueError as exc:
        return str(exc)
    return None


_RECORD = re.compile(r"^type (\w+) \{$")
_FIELD = re.compile(r"^  (\w+): (.+)$")
_SUM = re.compile(r"^type (\w+) = (.+)$")
_VARIANT = re.compile(r"^(\w+)(?:\((\w+): (.+)\))?$")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: set[str] = set()
        self.types: set[str] = set()

    def name(self, n: int, name: str, what: str = "") -> None:
        if (why := _bad_name(name)) is not None:
            self.problems.append(f"line {n}: {what}{why}")
        if name in self.seen:
            self.problems.append(f"line {n}: {name!r} is declared twice")
        self.seen.add(name)

    def type_(self, n: int, text: str, what: str) -> None:
        if (why := check_type(text, frozenset(self.types))) is not None:
            self.problems.append(f"line {n}: {what}: {why}")

    def extern(self, n: int, m: re.Match[str]) -> None:
        name, rest = m[1], m[2]
        depth, end = 1, -1
        for i, ch in enumerate(rest):  # the `)` closing the parameter list (types hold parentheses too)
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                end = i
                break
        params, tail = rest[:end], rest[end + 1:]
        if end < 0 or (tail and not tail.startswith(": ")):
            self.problems.append(f"line {n}: malformed declaration")
            return
        ret = tail[2:] or None
        self.name(n, name)
        names: set[str] = set()
        for param in _split_params(params):
            pname, sep, ptype = param.partition(": ")
            if not sep:
                self.problems.append(f"line {n}: parameter {param!r} is unnamed or untyped")
                continue
            if (why := _bad_name(pname)) is not None:
                self.problems.append(f"line {n}: parameter {why}")
            if pname in names:
                self.problems.append(f"line {n}: parameter {pname!r} repeats")
            names.add(pname)
            self.type_(n, ptype, f"parameter {pname!r}")
        if ret is not None:
            self.type_(n, ret, "return type")

    def sum_type(self, n: int, name: str, body: str) -> None:
        self.name(n, name, "type ")
        variants = [v.strip() for v in body.split(" | ")]
        if len(variants) < 2:
            self.problems.append(f"line {n}: a sum type needs two variants or more (one is an alias)")
        self.types.add(name)
        for variant in variants:
            vm = _VARIANT.match(variant)
            if vm is None:
                self.problems.append(f"line {n}: bad variant {variant!r}")
                continue
            self.name(n, vm[1], "variant ")
            if vm[2] is not None:
                self.type_(n, vm[3], f"variant {vm[1]!r}")


def check_shim(text: str) -> list[str]:
    c = _Checker()
    record: tuple[int, str, list[str]] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if record is not None:
            if line == "}":
                if not record[2]:
                    c.problems.append(f"line {record[0]}: record {record[1]!r} has no field")
                c.types.add(record[1])
                record = None
            elif (fm := _FIELD.match(line)) is not None:
                if (why := _bad_name(fm[1])) is not None or fm[1] in record[2]:
                    c.problems.append(f"line {n}: field {why or repr(fm[1]) + ' repeats'}")
                record[2].append(fm[1])
                c.type_(n, fm[2], f"field {fm[1]!r}")
            else:
                c.problems.append(f"line {n}: not a record field: {line!r}")
            continue
        if not line.strip() or line.startswith("//"):
            continue
        if (m := _DECL.match(line)) is not None:
            c.extern(n, m)
        elif (m := _RECORD.match(line)) is not None:
            c.name(n, m[1], "type ")
            record = (n, m[1], [])
        elif (m := _SUM.match(line)) is not None:
            c.sum_type(n, m[1], m[2])
        else:
            c.problems.append(f"line {n}: not an allowed form: {line!r}")
    if record is not None:
        c.problems.append(f"line {record[0]}: record {record[1]!r} is not closed")
    return c.problems


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
