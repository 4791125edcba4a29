"""The surface stage through the cross-project cache: a surface is determined by its stub documents
(`stub-sha256` over their paths and contents, the modules, provenance and problems the stub stage
recorded), the distribution and version, the surface options (target and `[python]` settings) and
the tool; a second project with the same inputs reads the verified `surface.json` back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cache import StageEntry, stage_key, stage_lookup, stage_store

if TYPE_CHECKING:
    from .model import Surface, SurfaceOptions

__all__ = ["SURFACE_FILE", "cached_surface", "surface_json", "surface_key"]

SURFACE_FILE = "surface.json"


def surface_json(surface: Surface) -> bytes:
    """The canonical `surface.json` text of *surface* (what the codegen stage and its cache key read):
    the data of `Surface.to_dict()`, compact, so json's C encoder writes it (a surface is thousands of
    records; `asdict` and an indented dump were most of a stage that copies nothing)."""
    return (json.dumps(_plain(surface), sort_keys=True, separators=(",", ":")) + "\n").encode()


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(obj: object) -> object:
    """`dataclasses.asdict` for JSON: dataclasses to dicts, tuples to lists, leaves shared, not copied."""
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    cls = type(obj)
    names = _FIELDS.get(cls)
    if names is None and is_dataclass(obj):
        names = _FIELDS[cls] = tuple(f.name for f in fields(obj))
    if names is not None:
        return {n: _plain(getattr(obj, n)) for n in names}
    return obj


def surface_key(stub_sha256: str, modules: list[str], provenance: str, problems: dict[str, list[str]], dist: str,
                version: str, options: SurfaceOptions) -> str:
    return stage_key("surface", {"stubs": stub_sha256, "modules": modules, "provenance": provenance,
                                 "problems": problems, "dist": dist, "version": version, "options": asdict(options)})


def cached_surface(cache: Path, stub_dir: Path | Callable[[], Path], stub_sha256: str, modules: list[str], dist: str,
                   version: str, provenance: str, options: SurfaceOptions, problems: dict[str, list[str]],
                   store: bool = True) -> bytes:
    """`surface.json` of :func:`~tasks.surface.items.build_surface` for these inputs, from the cache when
    it holds an intact entry, else built from the documents at *stub_dir* (a directory, or what a call
    of it returns: the documents are needed only then) and stored unless *store* is false."""
    key = surface_key(stub_sha256, modules, provenance, problems, dist, version, options)
    entry = stage_lookup(cache, "surface", key, remove_corrupt=store)
    if entry is not None and SURFACE_FILE in entry.files:
        return entry.files[SURFACE_FILE]
    from .items import build_surface  # the type table is loaded only when a surface is really built
    documents = stub_dir if isinstance(stub_dir, Path) else stub_dir()
    data = surface_json(build_surface(documents, modules, dist, version, provenance, options, problems))
    if store:
        stage_store(cache, "surface", key, StageEntry(files={SURFACE_FILE: data}))
    return data
