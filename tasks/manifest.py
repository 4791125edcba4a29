"""Parse `mochi.toml`: `[python-dependencies]` and `[python]` into frozen records.

Every error names the file, line and column of the offending value and what to write instead.
Version constraints are PEP 440; the caret and tilde shorthands are translated the npm/Cargo way
(`^1.2` -> `>=1.2,<2`, `^0.27` -> `>=0.27,<0.28`, `~1.2` -> `>=1.2,<1.3`).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from .errors import Location, ManifestError

__all__ = [
    "DEFAULT_REQUIRES_PYTHON",
    "Dependency",
    "Index",
    "Manifest",
    "PythonSettings",
    "load_manifest",
    "parse_manifest",
    "translate_constraint",
]

DEFAULT_REQUIRES_PYTHON = ">=3.12"
_PRIORITIES = ("primary", "supplemental", "explicit")
_PYTHON_KEYS = ("requires-python", "interpreter", "indexes", "strict-return-types")
# Keys DESIGN names whose behaviour is not built yet: refusing them is honest, ignoring them is not.
_PYTHON_KEYS_LATER = (
    "async-mode", "runtime", "stubgen", "free-threaded", "require-attestations", "monomorphise",
    "any", "implementation", "runtime-mode", "sidecar-glob", "typeshed", "int-mode",
)
_DEP_KEYS = ("version", "extras")
_DEP_KEYS_LATER = ("markers", "index", "path", "git", "branch", "rev", "tag", "editable", "optional")
_TOP_KEYS = ("python-dependencies", "python", "package", "dependencies", "capabilities")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """One `[python-dependencies]` entry."""

    name: str
    """Canonical (PEP 503) distribution name."""
    specifier: str
    """PEP 440 specifier set, shorthands translated; empty means any version."""
    extras: tuple[str, ...]
    where: Location

    @property
    def requirement(self) -> str:
        """The PEP 508 requirement string handed to the resolver."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    url: str
    priority: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonSettings:
    requires_python: str
    interpreter: str | None
    indexes: tuple[Index, ...]
    strict_return_types: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    path: Path
    dependencies: tuple[Dependency, ...]
    python: PythonSettings

    def dependency(self, name: str) -> Dependency | None:
        canon = canonicalize_name(name)
        return next((d for d in self.dependencies if d.name == canon), None)


def translate_constraint(text: str) -> str:
    """Turn a user constraint into a PEP 440 specifier set string.

    :raises ValueError: when the result is not valid PEP 440.
    """
    text = text.strip()
    if text in ("", "*"):
        return ""
    if text[0] in "^~" and not text.startswith("~="):
        op, ver = text[0], text[1:].strip()
        if not _VERSION_RE.match(ver):
            raise ValueError(f"{op!r} needs a plain release number after it, got {ver!r}")
        parts = [int(p) for p in ver.split(".")]
        if op == "^":
            # Cargo/npm: the first non-zero component is the one that may not change.
            idx = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        else:
            idx = min(1, len(parts) - 1) if len(parts) > 1 else 0
        upper = [*parts[:idx], parts[idx] + 1]
        return f">={ver},<{'.'.join(map(str, upper))}"
    if _VERSION_RE.match(text):
        text = f"=={text}"
    SpecifierSet(text)  # validates; raises InvalidSpecifier (a ValueError)
    return ",".join(part.strip() for part in text.split(","))  # the user's order, not packaging's sorted one


def load_manifest(path: Path) -> Manifest:
    """Read and parse `mochi.toml` at *path*."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            Location(path, 1, 1), "no mochi.toml here", "run the command in a Mochi project directory"
        ) from None
    return parse_manifest(text, path)


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse manifest *text* (read from *path*, used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(m[1]), int(m[2])) if m else (1, 1)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ManifestError(Location(path, line, col), f"invalid TOML: {msg}",
                            "fix the TOML syntax at that place") from None
    loc = _Locator(text, path)
    for key in data:
        if key not in _TOP_KEYS:
            raise ManifestError(loc.key(None, key), f"unknown top-level table {key!r}", _suggest(key, _TOP_KEYS))
    deps_table = data.get("python-dependencies", {})
    if not isinstance(deps_table, Mapping):
        raise ManifestError(loc.key(None, "python-dependencies"), "[python-dependencies] must be a table")
    deps = tuple(sorted((_parse_dep(name, value, loc) for name, value in deps_table.items()),
                        key=lambda d: d.name))
    seen: dict[str, str] = {}
    for raw in deps_table:
        canon = canonicalize_name(raw)
        if canon in seen:
            raise ManifestError(loc.key("python-dependencies", raw),
                                f"{raw!r} names the same distribution as {seen[canon]!r}",
                                "keep one entry per distribution")
        seen[canon] = raw
    return Manifest(path=path, dependencies=deps, python=_parse_python(data.get("python", {}), loc))


def _parse_dep(raw_name: str, value: object, loc: _Locator) -> Dependency:
    where = loc.key("python-dependencies", raw_name)
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", raw_name):
        raise ManifestError(where, f"{raw_name!r} is not a valid distribution name",
                            "use the name the package index lists (letters, digits, '.', '-', '_')")
    extras: tuple[str, ...] = ()
    if isinstance(value, str):
        constraint, cwhere = value, loc.value("python-dependencies", raw_name)
    elif isinstance(value, Mapping):
        for key in value:
            if key in _DEP_KEYS_LATER:
                raise ManifestError(loc.inner("python-dependencies", raw_name, key, at_key=True),
                                    f"dependency key {key!r} is not supported by this version yet",
                                    "use a version constraint from the default index")
            if key not in _DEP_KEYS:
                raise ManifestError(loc.inner("python-dependencies", raw_name, key, at_key=True),
                                    f"unknown dependency key {key!r}", _suggest(key, _DEP_KEYS + _DEP_KEYS_LATER))
        constraint = value.get("version", "")
        cwhere = loc.inner("python-dependencies", raw_name, "version")
        if not isinstance(constraint, str):
            raise ManifestError(cwhere, "'version' must be a string such as \">=1.0\"")
        ex = value.get("extras", [])
        if not isinstance(ex, list) or not all(isinstance(e, str) for e in ex):
            raise ManifestError(loc.inner("python-dependencies", raw_name, "extras"),
                                "'extras' must be a list of strings", 'write extras = ["name"]')
        extras = tuple(sorted({canonicalize_name(e) for e in ex}))
    else:
        raise ManifestError(where, f"the value for {raw_name!r} must be a version string or a table",
                            f'write {raw_name} = ">=1.0" or {raw_name} = {{ version = ">=1.0" }}')
    try:
        spec = translate_constraint(constraint)
    except (ValueError, InvalidSpecifier) as exc:
        raise ManifestError(cwhere, f"invalid version constraint {constraint!r} for {raw_name!r}: {exc}",
                            'use PEP 440 (">=1.2,<2", "~=1.4", "==1.2.3") or "^1.2" / "~1.2"') from None
    return Dependency(name=canonicalize_name(raw_name), specifier=spec, extras=extras, where=where)


def _parse_python(table: object, loc: _Locator) -> PythonSettings:
    if not isinstance(table, Mapping):
        raise ManifestError(loc.key(None, "python"), "[python] must be a table")
    for key in table:
        if key in _PYTHON_KEYS_LATER:
            raise ManifestError(loc.key("python", key), f"[python] key {key!r} is not supported by this version yet",
                                "remove it; the default behaviour applies")
        if key not in _PYTHON_KEYS:
            raise ManifestError(loc.key("python", key), f"unknown [python] key {key!r}",
                                _suggest(key, _PYTHON_KEYS + _PYTHON_KEYS_LATER))
    req = table.get("requires-python", DEFAULT_REQUIRES_PYTHON)
    try:
        if not isinstance(req, str):
            raise InvalidSpecifier("not a string")
        SpecifierSet(req)
    except InvalidSpecifier:
        raise ManifestError(loc.value("python", "requires-python"), f"invalid requires-python {req!r}",
                            'write a PEP 440 specifier such as ">=3.12"') from None
    interp = table.get("interpreter")
    if interp is not None and not isinstance(interp, str):
        raise ManifestError(loc.value("python", "interpreter"), "'interpreter' must be a path or command name")
    strict = table.get("strict-return-types", True)
    if not isinstance(strict, bool):
        raise ManifestError(loc.value("python", "strict-return-types"), "'strict-return-types' must be true or false")
    return PythonSettings(requires_python=req, interpreter=interp, indexes=_parse_indexes(table, loc),
                          strict_return_types=strict)


def _parse_indexes(table: Mapping[str, object], loc: _Locator) -> tuple[Index, ...]:
    raw = table.get("indexes", [])
    where = loc.value("python", "indexes")
    if not isinstance(raw, list):
        raise ManifestError(where, "'indexes' must be a list of tables",
                            'write indexes = [{ url = "...", priority = "primary" }]')
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
            raise ManifestError(where, f"indexes[{i}] needs a 'url' string")
        url = str(item["url"])
        if not re.match(r"^(https?|file)://", url):
            raise ManifestError(where, f"indexes[{i}].url {url!r} is not an http(s) or file URL",
                                "write the simple-index URL, such as https://host/simple/")
        prio = item.get("priority", "primary")
        if prio not in _PRIORITIES:
            raise ManifestError(where, f"indexes[{i}].priority {prio!r} is not one of {', '.join(_PRIORITIES)}",
                                'write priority = "primary" (the default), "supplemental" or "explicit"')
        extra = set(item) - {"url", "priority"}
        if extra:
            raise ManifestError(where, f"indexes[{i}] has unknown key(s) {', '.join(sorted(extra))}")
        out.append(Index(url=url.rstrip("/") + "/", priority=str(prio)))
    return tuple(out)


def _suggest(key: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(choices)}"


class _Locator:
    """Finds the line and column of a key or value in the manifest text (tomllib keeps no positions)."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def key(self, table: str | None, key: str) -> Location:
        line, col, _ = self._find(table, key)
        return Location(self.path, line, col)

    def value(self, table: str | None, key: str) -> Location:
        line, col, value_col = self._find(table, key)
        return Location(self.path, line, value_col or col)

    def inner(self, table: str, key: str, inner: str, *, at_key: bool = False) -> Location:
        """An inline-table member: its value, or with *at_key* its key."""
        line, col, _ = self._find(table, key)
        if line <= len(self.lines):
            m = re.search(rf"([{{,\s])(\"?{re.escape(inner)}\"?\s*=\s*)", self.lines[line - 1][col:])
            if m:
                return Location(self.path, line, col + (m.start(2) if at_key else m.end()) + 1)
        sub_line, sub_col, sub_val = self._find(f"{table}.{key}", inner)
        if sub_line:
            return Location(self.path, sub_line, sub_val or sub_col)
        return Location(self.path, line, col)

    def _find(self, table: str | None, key: str) -> tuple[int, int, int]:
        current: str | None = None
        key_re = re.compile(rf"^(\s*)(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=\s*")
        for n, raw in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", raw)
            if header:
                current = header[1].replace('"', "").replace(" ", "")
                if table is None and current.split(".")[0] == key:
                    return n, raw.index("[") + 1, 0
                continue
            if current == table:
                m = key_re.match(raw)
                if m:
                    return n, len(m[1]) + 1, m.end() + 1
        return (1, 1, 0) if table is None or table.count(".") == 0 else (0, 0, 0)
