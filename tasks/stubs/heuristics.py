"""`[python].stubgen.aggressive`: the two R1 heuristics applied to stubgen's output.

1. Docstring types: stubgen leaves a parameter or return unannotated when the source has no
   annotation. Many untyped packages document types in docstrings instead, in one of three
   conventions - Sphinx (`:param x:` / `:type x: int` / `:param int x:` / `:rtype: str`), Google
   (`Args:` with `x (int): ...`, `Returns:` with `str: ...`) and numpydoc (`Parameters` /
   `Returns` with `x : int`). A type written in a small closed vocabulary (`int`, `str`, `list of
   str`, `dict[str, int]`, `X or None`, `X, optional`) becomes the annotation; anything else stays
   unannotated. Documented names a signature only takes through `**kwargs` become keyword-only
   parameters with their documented types (the `**kwargs` is kept).
2. `__init__` re-exports against typeshed: public names the package's `__init__.py` imports from
   the standard library are re-exported from its stub, so they are typed by typeshed's stubs.

Both are pure text-to-text functions over one module; :func:`apply` runs them over a stub tree.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

__all__ = ["annotate_stub", "apply", "doc_types", "reexport_stdlib", "type_from_doc"]

_SIMPLE = {"int": "int", "integer": "int", "float": "float", "number": "float", "str": "str", "string": "str",
           "unicode": "str", "bool": "bool", "boolean": "bool", "bytes": "bytes", "none": "None",
           "list": "list", "dict": "dict", "set": "set", "tuple": "tuple", "callable": "Callable"}
_KNOWN_NAMES = {"int", "float", "str", "bool", "bytes", "None", "list", "dict", "set", "frozenset", "tuple",
                "Optional", "Union", "List", "Dict", "Set", "Tuple", "Sequence", "Mapping", "Iterable"}


def type_from_doc(text: str, depth: int = 0) -> str | None:
    """The annotation a docstring's type text stands for, or None when it is not in the vocabulary."""
    t = " ".join(text.strip().strip("`").split()).rstrip(".")
    if not t or depth > 4:
        return None
    optional = False
    for suffix in (", optional", " (optional)", ", default none", " or none", " | none"):
        if t.lower().endswith(suffix):
            t, optional = t[: -len(suffix)].strip(), True
    inner = _type(t, depth)
    if inner is None:
        return None
    return f"{inner} | None" if optional and inner != "None" else inner


def _type(t: str, depth: int) -> str | None:
    low = t.lower()
    if low in _SIMPLE:
        return _SIMPLE[low] if low not in ("list", "dict", "set", "tuple", "callable") else None  # bare: no element
    m = re.fullmatch(r"(list|set|sequence|iterable|tuple) of (.+?)s?", low)
    if m:
        elem = type_from_doc(m[2], depth + 1) or type_from_doc(m[2] + "s", depth + 1)
        if elem is None:
            return None
        container = {"list": "list", "set": "set", "sequence": "list", "iterable": "list", "tuple": "tuple"}[m[1]]
        return f"{container}[{elem}, ...]" if container == "tuple" else f"{container}[{elem}]"
    m = re.fullmatch(r"(?:dict|mapping) (?:of|from) (.+?) (?:to|->) (.+)", low)
    if m:
        key, value = type_from_doc(m[1], depth + 1), type_from_doc(m[2], depth + 1)
        return f"dict[{key}, {value}]" if key and value else None
    if " or " in low:
        arms = [type_from_doc(a, depth + 1) for a in re.split(r"\s+or\s+|\s*\|\s*", t)]
        return " | ".join(a for a in arms if a) if all(arms) else None
    try:  # a Python type expression of known names: list[int], dict[str, int], Optional[str]
        node = ast.parse(t, mode="eval").body
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if names and names <= _KNOWN_NAMES and all(isinstance(n, ast.Name | ast.Subscript | ast.Tuple | ast.BinOp |
                                                          ast.Constant | ast.Load | ast.BitOr | ast.expr_context)
                                               for n in ast.walk(node)):
        return ast.unparse(node)
    return None


def doc_types(doc: str) -> tuple[dict[str, str], str | None]:
    """Parameter name -> annotation, and the return annotation, that *doc* documents."""
    params: dict[str, str] = {}
    ret: str | None = None
    lines = doc.expandtabs().splitlines()
    for line in lines:  # Sphinx
        s = line.strip()
        m = re.match(r":param\s+(.+?)\s+(\*{0,2}\w+)\s*:", s)
        if m and (ann := type_from_doc(m[1])):
            params[m[2].lstrip("*")] = ann
        m = re.match(r":type\s+(\*{0,2}\w+)\s*:\s*(.+)", s)
        if m and (ann := type_from_doc(m[2])):
            params[m[1].lstrip("*")] = ann
        m = re.match(r":rtype:\s*(.+)", s)
        if m:
            ret = type_from_doc(m[1]) or ret
    section = ""
    for i, line in enumerate(lines):
        s = line.strip()
        header = s.rstrip(":").lower()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if header in ("args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "kwargs",
                      "other parameters", "returns", "return", "yields") and (s.endswith(":") or set(nxt) == {"-"}):
            section = "returns" if header in ("returns", "return", "yields") else "params"
            continue
        if not s or set(s) == {"-"}:
            continue
        if section == "params":
            m = re.match(r"(\*{0,2}\w+)\s*\(([^)]*)\)\s*:", s) or re.match(r"(\*{0,2}\w+)\s+:\s+(.+)$", s)
            if m and (ann := type_from_doc(m[2])):
                params.setdefault(m[1].lstrip("*"), ann)
        elif section == "returns" and ret is None:
            m = re.match(r"(?:\w+\s+:\s+)?([^:]+?)(?::\s.*)?$", s)
            ret = type_from_doc(m[1]) if m else None
            section = ""
    return params, ret


def _unannotated(ann: ast.expr | None) -> bool:
    return ann is None or ast.unparse(ann) in ("Incomplete", "_typeshed.Incomplete", "Any")


def annotate_stub(text: str) -> str:
    """*text* (a `.pyi` with docstrings) with the types its docstrings document filled in."""
    tree = ast.parse(text)
    changed = False
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node)
        if not doc:
            continue
        params, ret = doc_types(doc)
        a = node.args
        present = set()
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
            present.add(arg.arg)
            if arg.arg in params and _unannotated(arg.annotation):
                arg.annotation = ast.parse(params[arg.arg], mode="eval").body
                changed = True
        if a.kwarg is not None:  # documented keywords reached only through **kwargs
            for name in params:
                if name not in present and name != a.kwarg.arg and name.isidentifier() and name != (
                        a.vararg.arg if a.vararg else None):
                    a.kwonlyargs.append(ast.arg(arg=name, annotation=ast.parse(params[name], mode="eval").body))
                    a.kw_defaults.append(ast.Constant(...))
                    changed = True
        if ret is not None and (node.returns is None or ast.unparse(node.returns) == "Incomplete"):
            node.returns = ast.parse(ret, mode="eval").body
            changed = True
    if not changed:
        return text
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def reexport_stdlib(stub: str, source: str) -> str:
    """*stub* (a package's `__init__.pyi`) plus `from m import x as x` for each public name its
    `__init__.py` *source* imports from the standard library and the stub does not define."""
    try:
        src, tree = ast.parse(source), ast.parse(stub)
    except SyntaxError:
        return stub
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom | ast.Import) for a in n.names}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    defined |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    lines = []
    for node in src.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] in sys.stdlib_module_names:
            for a in node.names:  # a renamed import is no re-export in a stub (PEP 484): left out
                if a.asname in (None, a.name) and a.name != "*" and not a.name.startswith("_") and \
                        a.name not in defined:
                    lines.append(f"from {node.module} import {a.name} as {a.name}")
    return stub if not lines else stub.rstrip("\n") + "\n\n# re-exported from the standard library " \
        "(stubgen.aggressive)\n" + "\n".join(lines) + "\n"


def apply(stubs: Path, sources: Path) -> None:
    """Run both heuristics over every `.pyi` under *stubs* (the package sources are under *sources*)."""
    for pyi in sorted(stubs.rglob("*.pyi")):
        text = pyi.read_text(encoding="utf-8")
        try:
            new = annotate_stub(text)
        except (SyntaxError, ValueError):
            new = text
        if pyi.name == "__init__.pyi":
            init = sources / pyi.relative_to(stubs).with_suffix(".py")
            if init.is_file():
                new = reexport_stdlib(new, init.read_text(encoding="utf-8", errors="replace"))
        if new != text:
            pyi.write_text(new, encoding="utf-8")
