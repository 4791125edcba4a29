"""Detect the environment once, at the edge: the one place that reads it (no doit import here).

:func:`detect_context` reads the manifest, finds the target interpreter (through its memo), and
settles the index and cache; every task receives the resulting :class:`~tasks.context.Context`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .build.launcher import choose_launcher
from .cache import cache_root
from .context import Context, offline_requested
from .resolve.interpreter import abi_floor, detect_interpreter
from .resolve.manifest import load_manifest, unsupported_settings

__all__ = ["detect_context"]


def detect_context(root: Path, write_state: bool = True, release: tuple[str, ...] = (),
                   elevation: str = "ignore", *, frozen: bool = False, verbosity: int = 0) -> Context:
    """Read the manifest and the environment once: the facts every task is parameterised by.

    With *write_state* false nothing is written (the interpreter memo is read but not refreshed).
    """
    root = root.resolve()
    manifest = load_manifest(root / "mochi.toml")
    unsupported_settings(manifest)
    py = manifest.python
    cache = cache_root()
    target = detect_interpreter(py.requires_python, py.interpreter, root / ".mochi" / "interpreter.json",
                                write_memo=write_state, shared=cache / "interpreters")
    searchable = [i.url for i in py.indexes if i.priority == "primary"] + [
        i.url for i in py.indexes if i.priority == "supplemental"]
    if searchable:
        default_index = searchable[0]
    else:
        from .fetch.index import default_index_url  # urllib and friends: imported only when needed
        default_index = default_index_url()
    floor = abi_floor(py.requires_python, target)
    build_key = hashlib.sha256(f"{target.executable}\0{floor}".encode()).hexdigest()[:12]
    return Context(root=str(root), interpreter=target.executable, python_version=target.version,
                   gil_disabled=target.gil_disabled, abi_floor=floor, requires_python=py.requires_python,
                   marker_env=target.env, default_index=default_index, indexes=tuple(searchable or [default_index]),
                   cache=str(cache), build_dir=str(root / ".mochi" / "build" / build_key),
                   strict_returns=py.strict_return_types, stubgen_fallback=py.stubgen_fallback,
                   stubgen_inspect=py.stubgen_inspect, stubgen_aggressive=py.stubgen_aggressive,
                   capabilities_declared=py.capabilities,
                   free_threaded=py.free_threaded, any_mode=py.any_mode, monomorphise=py.monomorphise,
                   async_mode=py.async_mode, release=release, elevation=elevation,
                   require_attestations=py.require_attestations, trusted_publishers=py.trusted_publishers,
                   frozen=frozen, offline=offline_requested(os.environ),
                   compiler_cache=choose_launcher(py.compiler_cache, dict(os.environ)),
                   verbosity=verbosity)
