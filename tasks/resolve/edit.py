"""Edits to the user's `mochi.toml` that keep its formatting and comments (tomlkit): `add` and `remove`.

`add` works the way uv's does: the new entries are resolved together with the existing ones before the file
is written, so a name the index does not have, or a constraint nothing satisfies, changes nothing. An entry
added without a constraint gets a caret on the version it resolved to (`tabulate` -> `"^0.9.0"`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..cache import atomic_write
from ..errors import BridgeError, Location, ManifestError
from .manifest import Manifest, load_manifest, parse_manifest, translate_constraint

__all__ = ["AddRequest", "add_dependencies", "caret", "parse_add_spec", "remove_dependencies"]

_TABLE = "python-dependencies"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddRequest:
    name: str
    """Canonical (PEP 503) name: `Rich` and `rich` are one distribution."""
    extras: tuple[str, ...]
    constraint: str | None
    """What followed `@`; None when nothing did (the resolved version decides)."""


def parse_add_spec(spec: str) -> AddRequest:
    """`NAME[extras][@CONSTRAINT]` as `add` takes it."""
    name_part, at, constraint = spec.partition("@")
    hint = 'write NAME or NAME@CONSTRAINT, e.g. "httpx" or "httpx@^0.27"'
    if at and not constraint.strip():
        raise BridgeError(f"invalid requirement {spec!r}: nothing after '@'",
                          f"{hint}; write {name_part}@* to accept any version")
    try:
        req = Requirement(name_part)
        if req.specifier or req.marker or req.url:
            raise InvalidRequirement("put the constraint after '@'")
        if at:
            translate_constraint(constraint)
    except (InvalidRequirement, ValueError) as exc:
        raise BridgeError(f"invalid requirement {spec!r}: {exc}", hint) from None
    return AddRequest(name=canonicalize_name(req.name), extras=tuple(sorted(canonicalize_name(e) for e in req.extras)),
                      constraint=constraint.strip() if at else None)


def caret(version: str) -> str:
    """The constraint `add` writes for a resolved *version*: a caret on its release (pre-releases: `>=`)."""
    v = Version(version)
    if v.is_prerelease or v.local:
        return f">={version}"
    return "^" + ".".join(str(p) for p in v.release)


def _deps_table(doc: tomlkit.TOMLDocument) -> tomlkit.items.Table:
    deps = doc.get(_TABLE)
    if deps is None:
        deps = tomlkit.table()
        doc.add(_TABLE, deps)
    return deps


def _existing_key(deps: tomlkit.items.Table, name: str) -> str | None:
    return next((str(k) for k in deps if canonicalize_name(str(k)) == name), None)


def _set(deps: tomlkit.items.Table, req: AddRequest, constraint: str) -> None:
    key = _existing_key(deps, req.name) or req.name
    current = deps.get(key)
    if isinstance(current, dict):
        current["version"] = constraint
        if req.extras:
            current["extras"] = sorted(set(current.get("extras", [])) | set(req.extras))
        return
    if req.extras:
        table = tomlkit.inline_table()
        table.update({"version": constraint, "extras": list(req.extras)})
        deps[key] = table
    else:
        deps[key] = constraint


def _validated(text: str, path: Path) -> Manifest:
    try:
        return parse_manifest(text, path)
    except ManifestError as exc:
        raise ManifestError(Location(path, exc.where.line, exc.where.col), exc.detail, exc.hint) from None


def _line(text: str, key: str) -> str:
    found = next((ln for ln in text.splitlines() if re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", ln)), key)
    return found.strip()


def add_dependencies(manifest_path: Path, specs: list[str],
                     resolve: Callable[[Manifest], dict[str, str]]) -> list[str]:
    """Add or change `NAME[@CONSTRAINT]` entries; returns the written lines (unchanged entries included).

    *resolve* maps the would-be manifest to `{name: version}` and raises when it cannot be resolved; the
    file is written only after it succeeded, so a failure leaves `mochi.toml` as it was.
    """
    requests = [parse_add_spec(s) for s in specs]
    load_manifest(manifest_path)  # the current file must be valid before it is edited
    text = manifest_path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    deps = _deps_table(doc)
    pending = []
    for req in requests:
        if req.constraint is not None:
            _set(deps, req, req.constraint)
        elif _existing_key(deps, req.name) is None:
            _set(deps, req, "*")  # resolved below, then narrowed to a caret on the version found
            pending.append(req)
        elif req.extras:
            current = deps[_existing_key(deps, req.name) or req.name]
            version = current.get("version", "*") if isinstance(current, dict) else str(current)
            _set(deps, req, version)
    versions = resolve(_validated(tomlkit.dumps(doc), manifest_path))
    for req in pending:
        _set(deps, req, caret(versions[req.name]))
    new_text = tomlkit.dumps(doc)
    _validated(new_text, manifest_path)
    if new_text != text:
        atomic_write(manifest_path, new_text.encode())
    return [_line(new_text, _existing_key(deps, r.name) or r.name) for r in requests]


def remove_dependencies(manifest_path: Path, names: list[str]) -> list[str]:
    """Remove `[python-dependencies]` entries; returns the keys removed. Every name must be there."""
    load_manifest(manifest_path)
    text = manifest_path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    deps = doc.get(_TABLE) or tomlkit.table()
    keys = [str(k) for k in deps]
    removed = []
    for raw in names:
        key = _existing_key(deps, canonicalize_name(raw))
        if key is None:
            close = difflib.get_close_matches(canonicalize_name(raw), [canonicalize_name(k) for k in keys], n=1)
            raise BridgeError(f"{raw!r} is not in [python-dependencies] of {manifest_path}",
                              f"did you mean {close[0]!r}?" if close else
                              f"the declared packages are: {', '.join(keys) or '(none)'}")
        del deps[key]
        removed.append(key)
    new_text = tomlkit.dumps(doc)
    _validated(new_text, manifest_path)
    atomic_write(manifest_path, new_text.encode())
    return removed
