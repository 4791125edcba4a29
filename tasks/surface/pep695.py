"""PEP 695 syntax (`type X = ...`, `def f[T](...)`, `class C[T: B]`) rewritten for an interpreter whose
parser predates it (3.11), so the stub documents that use it (scipy-stubs) can still be read.

The rewrite keeps every line where it was: `type X[T] = V` becomes `X: TypeAlias = V`, a type parameter list
after a `def` or `class` name is blanked out, and each parameter becomes a module-level `TypeVar`
(`TypeVarTuple`, `ParamSpec`) declaration appended at the end, which is how pre-695 stubs spell them.
Pure text in, text out.
"""

from __future__ import annotations

import io
import tokenize

__all__ = ["downlevel"]


def _bracket_end(toks: list[tokenize.TokenInfo], start: int) -> int:
    """Index of the `]` closing the `[` at *start*."""
    depth = 0
    for i in range(start, len(toks)):
        if toks[i].type == tokenize.OP and toks[i].string in "([{":
            depth += 1
        elif toks[i].type == tokenize.OP and toks[i].string in ")]}":
            depth -= 1
            if depth == 0:
                return i
    raise SyntaxError("unclosed type parameter list")


def _declarations(toks: list[tokenize.TokenInfo], lines: list[str]) -> list[str]:
    """`T = TypeVar("T", bound=B)` lines for the parameters between the brackets *toks* (exclusive)."""
    out: list[str] = []
    current: list[tokenize.TokenInfo] = []
    depth = 0
    for t in [*toks, None]:
        if t is None or (t.type == tokenize.OP and t.string == "," and depth == 0):
            if current:
                out.append(_declaration(current, lines))
            current = []
            continue
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        if t.type not in (tokenize.NL, tokenize.COMMENT):
            current.append(t)
    return out


def _text(toks: list[tokenize.TokenInfo], lines: list[str]) -> str:
    (r0, c0), (r1, c1) = toks[0].start, toks[-1].end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    # over several lines (comments among them): the tokens themselves, which parse the same
    return " ".join(t.string for t in toks if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT))


def _declaration(param: list[tokenize.TokenInfo], lines: list[str]) -> str:
    kind = "TypeVar"
    if param[0].string == "**":
        kind, param = "ParamSpec", param[1:]
    elif param[0].string == "*":
        kind, param = "TypeVarTuple", param[1:]
    name = param[0].string
    rest = param[1:]
    cut = next((i for i, t in enumerate(rest) if t.type == tokenize.OP and t.string == "="), len(rest))
    bound, default = rest[:cut], rest[cut + 1:]
    args = [repr(name)]
    if bound and bound[0].string == ":" and len(bound) > 1:
        shown = _text(bound[1:], lines)
        if bound[1].string == "(":  # `T: (int, str)` constrains rather than bounds
            args.append(shown.strip()[1:-1])
        else:
            args.append(f"bound={shown}")
    if default:
        args.append(f"default={_text(default, lines)}")
    return f"{name} = {kind}({', '.join(args)})"


def downlevel(source: str) -> str:
    """*source* with its PEP 695 constructs rewritten as described above (unchanged when it has none).

    :raises SyntaxError: the source does not tokenize.
    """
    lines = source.splitlines(keepends=True)
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError) as exc:
        raise SyntaxError(str(exc)) from None
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
    declared: list[str] = []
    line_start = True
    for i, t in enumerate(toks):
        if t.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
            line_start = line_start or t.type in (tokenize.NEWLINE, tokenize.NL)
            continue
        first, line_start = line_start, False
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        after = toks[i + 2] if i + 2 < len(toks) else None
        if (first and t.type == tokenize.NAME and t.string == "type" and nxt is not None
                and nxt.type == tokenize.NAME and after is not None and after.string in ("=", "[")):
            end = i + 1
            if after.string == "[":
                close = _bracket_end(toks, i + 2)
                declared += _declarations(toks[i + 3:close], lines)
                end = close
                edits.append((toks[i + 2].start, toks[close].end, ""))
            # `type X` -> `X: TypeAlias`, same line
            edits.append((t.start, nxt.start, ""))
            edits.append((toks[end].end, toks[end].end, ": TypeAlias") if end != i + 1
                         else (nxt.end, nxt.end, ": TypeAlias"))
        elif (t.type == tokenize.NAME and t.string in ("def", "class") and nxt is not None
              and nxt.type == tokenize.NAME and after is not None and after.string == "["):
            close = _bracket_end(toks, i + 2)
            declared += _declarations(toks[i + 3:close], lines)
            edits.append((after.start, toks[close].end, ""))
    if not edits:
        return source
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(pos: tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    out = source
    for begin, finish, text in sorted(edits, key=lambda e: (at(e[0]), at(e[1])), reverse=True):
        out = out[:at(begin)] + text + out[at(finish):]
    # the names come from `typing` here whatever the document imported
    tail = ["", "from typing import ParamSpec, TypeAlias, TypeVar, TypeVarTuple", *declared]
    return out.rstrip("\n") + "\n" + "\n".join(tail) + "\n"
