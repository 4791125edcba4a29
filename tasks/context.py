"""The environment facts a lock is parameterised by, read once at the edge (no doit import here).

:func:`detect_context` reads the manifest, finds the target interpreter (through its memo), and
settles the index and cache; every task receives the resulting :class:`Context` as plain data.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .cache import cache_root
from .interp import abi_floor, detect_interpreter
from .manifest import load_manifest, unsupported_settings

__all__ = ["Context", "detect_context"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    root: str
    interpreter: str
    python_version: tuple[int, int, int]
    gil_disabled: bool
    abi_floor: tuple[int, int]
    requires_python: str
    marker_env: dict[str, str]
    default_index: str
    """The index used when the manifest names none (the environment's, else pip's default)."""
    indexes: tuple[str, ...]
    """Searchable (primary, then supplemental) index URLs, in priority order."""
    cache: str
    build_dir: str
    strict_returns: bool
    stubgen_fallback: str
    stubgen_inspect: bool
    stubgen_aggressive: bool = False
    capabilities_declared: tuple[str, ...] | None
    free_threaded: bool
    any_mode: str = "refuse"
    monomorphise: tuple[tuple[str, str], ...] = ()
    async_mode: str = "per-call"
    release: tuple[str, ...] = ()
    """Packages whose sticky pins `update` releases (`*` for all)."""
    elevation: str = "ignore"
    """`refuse` or `allow` a capability elevation against the existing lock (`update`); `ignore` otherwise."""

    def as_args(self) -> dict[str, Any]:
        return asdict(self)


def detect_context(root: Path, write_state: bool = True, release: tuple[str, ...] = (),
                   elevation: str = "ignore") -> Context:
    """Read the manifest and the environment once: the facts every task is parameterised by.

    With *write_state* false nothing is written (the interpreter memo is read but not refreshed).
    """
    root = root.resolve()
    manifest = load_manifest(root / "mochi.toml")
    unsupported_settings(manifest)
    py = manifest.python
    target = detect_interpreter(py.requires_python, py.interpreter, root / ".mochi" / "interpreter.json",
                                write_memo=write_state)
    searchable = [i.url for i in py.indexes if i.priority == "primary"] + [
        i.url for i in py.indexes if i.priority == "supplemental"]
    if searchable:
        default_index = searchable[0]
    else:
        from .index import default_index_url  # urllib and friends: imported only when needed
        default_index = default_index_url()
    floor = abi_floor(py.requires_python, target)
    build_key = hashlib.sha256(f"{target.executable}\0{floor}".encode()).hexdigest()[:12]
    return Context(root=str(root), interpreter=target.executable, python_version=target.version,
                   gil_disabled=target.gil_disabled, abi_floor=floor, requires_python=py.requires_python,
                   marker_env=target.env, default_index=default_index, indexes=tuple(searchable or [default_index]),
                   cache=str(cache_root()), build_dir=str(root / ".mochi" / "build" / build_key),
                   strict_returns=py.strict_return_types, stubgen_fallback=py.stubgen_fallback,
                   stubgen_inspect=py.stubgen_inspect, stubgen_aggressive=py.stubgen_aggressive,
                   capabilities_declared=py.capabilities,
                   free_threaded=py.free_threaded, any_mode=py.any_mode, monomorphise=py.monomorphise,
                   async_mode=py.async_mode, release=release, elevation=elevation)
