"""Edits to the user's `mochi.toml` that keep its formatting and comments (tomlkit)."""

from __future__ import annotations

import re
from pathlib import Path

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..cache import atomic_write
from ..errors import BridgeError, Location, ManifestError
from .manifest import load_manifest, parse_manifest, translate_constraint

__all__ = ["add_dependency"]


def add_dependency(manifest_path: Path, spec: str) -> str:
    """Add or change `NAME[@CONSTRAINT]` under `[python-dependencies]`; returns the written line.

    The new text is parsed as a manifest before it replaces the old one, so a bad constraint
    changes nothing.
    """
    name_part, _, constraint = spec.partition("@")
    try:
        req = Requirement(name_part)
        if req.specifier or req.marker or req.url:
            raise InvalidRequirement("put the constraint after '@'")
        translate_constraint(constraint)
    except (InvalidRequirement, ValueError) as exc:
        raise BridgeError(f"invalid requirement {spec!r}: {exc}", 'write NAME or NAME@CONSTRAINT, e.g. "httpx@^0.27"'
                          ) from None
    load_manifest(manifest_path)  # the current file must be valid before it is edited
    text = manifest_path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    deps = doc.get("python-dependencies")
    if deps is None:
        deps = tomlkit.table()
        doc.add("python-dependencies", deps)
    existing = next((k for k in deps if canonicalize_name(k) == canonicalize_name(req.name)), None)
    key = existing or req.name
    value: object = constraint or "*"
    if req.extras:
        table = tomlkit.inline_table()
        table.update({"version": constraint or "*", "extras": sorted(req.extras)})
        value = table
    elif existing is not None and isinstance(deps[existing], dict):
        table = deps[existing]
        table["version"] = constraint or "*"
        value = table
    deps[key] = value
    new_text = tomlkit.dumps(doc)
    try:
        parse_manifest(new_text, manifest_path)
    except ManifestError as exc:
        raise ManifestError(Location(manifest_path, exc.where.line, exc.where.col), exc.detail, exc.hint) from None
    atomic_write(manifest_path, new_text.encode())
    line = next((ln for ln in new_text.splitlines() if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", ln)), key)
    return line.strip()
