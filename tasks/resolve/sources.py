"""Scan `*.mochi` files for `import python "<spec>" as <alias>` lines.

The manifest is the source of truth: every imported distribution must have a
`[python-dependencies]` entry, its extras must be listed there, and the version the lock pins
must satisfy the import's own constraint.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..errors import Location, SourceError
from .manifest import Manifest, read_user_text, translate_constraint

__all__ = ["PythonImport", "check_imports", "find_mochi_files", "import_key", "parse_imports", "scan_project"]

_IMPORT_RE = re.compile(r'^(\s*)import\s+python\s+"([^"]*)"(?:\s+as\s+([A-Za-z_]\w*))?')
_SKIP_DIRS = {".mochi", "python_wrap", ".git", ".venv", "node_modules"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonImport:
    name: str
    specifier: str
    extras: tuple[str, ...]
    alias: str
    where: Location


def find_mochi_files(root: Path) -> list[Path]:
    """All `.mochi` files of the project, sorted, outside tool-owned directories (never walked into)."""
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        found += [Path(current) / f for f in files if f.endswith(".mochi")]
    return sorted(found)


def parse_imports(text: str, path: Path) -> list[PythonImport]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _IMPORT_RE.match(line)
        if not m:
            continue
        spec = m[2]
        where = Location(path, n, line.index('"') + 2)
        name_part, _, constraint = spec.partition("@")
        for prefix in ("git+", "path+", "index+"):
            if constraint.startswith(prefix):
                raise SourceError(where, f"{prefix[:-1]} sources in import specs are not supported by this version yet",
                                  "import by name and version from an index")
        try:
            req = Requirement(name_part)
            specifier = translate_constraint(constraint)
        except (InvalidRequirement, ValueError) as exc:
            raise SourceError(where, f"invalid import spec {spec!r}: {exc}",
                              'write import python "name@>=1.0" as alias') from None
        if req.specifier or req.marker or req.url:
            raise SourceError(where, f"put the version after '@' in {spec!r}", 'write "name@>=1.0"')
        alias = m[3] or canonicalize_name(req.name).replace("-", "_")
        out.append(PythonImport(name=canonicalize_name(req.name), specifier=specifier,
                                extras=tuple(sorted(canonicalize_name(e) for e in req.extras)),
                                alias=alias, where=where))
    return out


def scan_project(root: Path) -> list[PythonImport]:
    imports: list[PythonImport] = []
    for path in find_mochi_files(root):
        imports.extend(parse_imports(read_user_text(path, SourceError), path))
    return imports


def import_key(root: Path) -> list[list[str]] | str:
    """The project's `import python` lines as resolution sees them (name, constraint, extras), sorted.

    Comments, code and the place of a line do not count, so editing the program resolves nothing again. A line
    that does not parse gives a key of its own, so resolve runs and reports it with its place.
    """
    try:
        return [list(t) for t in sorted({(i.name, i.specifier, ",".join(i.extras)) for i in scan_project(root)})]
    except (SourceError, OSError, UnicodeDecodeError) as exc:
        return f"unreadable: {exc}"


def check_imports(imports: list[PythonImport], manifest: Manifest, pins: dict[str, str] | None = None) -> None:
    """Raise :class:`SourceError` for the first import that disagrees with the manifest or the pins."""
    for imp in imports:
        dep = manifest.dependency(imp.name)
        if dep is None:
            raise SourceError(imp.where, f"{imp.name!r} is imported but not declared in mochi.toml",
                              f'add it: mochi-py add {imp.name} (or write {imp.name} = "*" under '
                              "[python-dependencies])")
        missing = sorted(set(imp.extras) - set(dep.extras))
        if missing:
            raise SourceError(imp.where, f"extras {', '.join(missing)} of {imp.name!r} are not in mochi.toml",
                              f"add them to the 'extras' list of {imp.name} in mochi.toml")
        if pins is not None and imp.specifier and imp.name in pins:
            version = pins[imp.name]
            if not SpecifierSet(imp.specifier).contains(Version(version), prereleases=True):
                raise SourceError(imp.where, f"{imp.name} {version} (resolved from mochi.toml "
                                  f"{dep.specifier or 'any version'}) does not satisfy {imp.specifier}",
                                  "make the mochi.toml constraint and the import constraint agree")
