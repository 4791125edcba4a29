"""The codegen stage through the cross-project cache: the generated sources are determined by the
`surface.json` bytes, the ABI floor, `strict-return-types`, the async mode and the tool; a second
project with the same inputs reads the verified files back instead of rendering them again.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from blake3 import blake3

from ..cache import StageEntry, stage_key, stage_lookup, stage_store
from ..context import limit
from .render import GeneratedFiles

__all__ = ["cached_render", "codegen_key"]


def codegen_key(surface_json: bytes, abi_floor: tuple[int, int], strict_returns: bool, async_mode: str) -> str:
    return stage_key("codegen", {"surface": blake3(surface_json).hexdigest(), "floor": list(abi_floor),
                                 "strict": strict_returns, "async": async_mode, "c-cap": limit("wrapper-c-bytes")})


def cached_render(cache: Path, surface_json: bytes, abi_floor: tuple[int, int], strict_returns: bool,
                  async_mode: str = "per-call", store: bool = True) -> GeneratedFiles:
    """:func:`~tasks.codegen.render.render_all` of the surface *surface_json*, from the cache when it
    holds an intact entry (stored there unless *store* is false)."""
    key = codegen_key(surface_json, abi_floor, strict_returns, async_mode)
    names = [f.name for f in fields(GeneratedFiles)]
    entry = stage_lookup(cache, "codegen", key, remove_corrupt=store)
    if entry is not None and sorted(entry.files) == sorted(names):
        try:
            return GeneratedFiles(**{n: entry.files[n].decode("utf-8") for n in names})
        except UnicodeDecodeError:
            pass
    from ..surface.model import Surface
    from .render import render_all
    files = render_all(Surface.from_dict(json.loads(surface_json)), abi_floor, strict_returns, async_mode)
    if store:
        stage_store(cache, "codegen", key, StageEntry(files={n: getattr(files, n).encode() for n in names}))
    return files
