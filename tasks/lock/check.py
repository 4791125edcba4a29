"""`check`: prove `mochi.lock` still matches reality, writing nothing.

For every locked package it recomputes, from the cached wheel (re-downloaded or rebuilt into a
scratch directory when the cache lost it), `wheel-blake3` and `wheel-sha256`; asks the index again
for `pypi-simple-sha256` and re-verifies the PEP 740 provenance of the release's files
(`attestation-publisher`, `provenance-sha256`: `lock/attestations.py`); re-extracts the stubs for
`stub-provenance` and `stub-sha256`; and regenerates the wrapper sources for `wrapper-sha256`. It
also checks that the lock covers the manifest as written and that `pylock.toml` is the one the lock
renders. The files that run are verified too (`build/verify.py`): each `python_wrap/<dist>/` must hold
exactly the generated files as they render from the verified surface, the compiled module the lock's
build record names (built from those sources, by this compiler) and nothing else; and
`python_wrap/site-packages` exactly the files of the locked wheels' RECORDs (bytecode caches checked
against their sources by the target interpreter). The result is a list of per-package, per-field (or
per-file) drifts; an empty list means the lock holds.

Packages are checked concurrently (each asks the index once for its file). Work the cache already
holds is reused only where that proves the same thing: a cached wheel is re-hashed unless its file
is unchanged since the lock recorded its digests (same inode, size, mtime and ctime), and the stubs,
scan, surface and generated sources come from verified stage entries keyed by those digests and
the settings, exactly what recomputing them would produce. Nothing is written to the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..audit.capabilities import DbEntry, apply_db, cached_scan, load_db, needs_trio
from ..build.compile import compiler_identity, runtime_dir, wrapper_key
from ..build.site import SITE_DIR
from ..build.verify import pyc_problems, site_problems, tree_problems
from ..cache import digest_file, recorded_digests, wheel_path
from ..codegen.cached import cached_render
from ..codegen.render import GeneratedFiles, module_name, wrap_files
from ..codegen.wrapdir import WRAP_DIR, wrapper_dir, wrapper_dir_name
from ..context import Context
from ..errors import BridgeError, Offline
from ..fetch.download import build_from_source
from ..fetch.index import fetch_project, open_url
from ..fetch.wheel import read_metadata
from ..resolve.manifest import load_manifest
from ..resolve.urls import manifest_index_urls, with_credentials
from ..stubs.cached import cached_stub_ladder
from ..stubs.ladder import stub_source
from ..surface.cached import cached_surface
from ..surface.model import surface_options
from .attestations import attestation_drifts
from .lockfile import LockEntry, active_requirements, read_lock_checked, render_pylock, requirement_closure

_WORKERS = 8
"""Packages checked at once: the work is mostly waiting (the index, the disk), so more than the cores."""

__all__ = ["Drift", "check_project", "format_drifts"]


@dataclass(frozen=True, slots=True)
class Drift:
    package: str
    field: str
    locked: str
    actual: str
    unverified: bool = False
    """The field could not be recomputed (offline, or the index did not answer): not known to differ."""
    message: str = ""
    """For a file that runs (`field` is its path): what is wrong with it, said instead of locked/actual."""

    def __str__(self) -> str:
        if self.message:
            return f"{self.package}: {self.field}: {self.message}"
        if self.unverified:
            return f"{self.package}: {self.field}: not verified: {self.actual}"
        return f"{self.package}: {self.field}: locked {self.locked or '(none)'}, actual {self.actual or '(none)'}"


def format_drifts(drifts: list[Drift]) -> str:
    return "\n".join(str(d) for d in drifts)


def check_project(ctx: Context) -> tuple[list[Drift], int]:
    """(drifts, packages checked) for the project *ctx* describes."""
    root = Path(ctx.root)
    if not (root / "mochi.lock").is_file():
        raise BridgeError(f"{root / 'mochi.lock'} does not exist", "run `mochi-py lock` first")
    entries, problems = read_lock_checked(root / "mochi.lock")
    # a value the lock cannot hold (wrong type, malformed, unknown field) is a disagreement, and its entry is not used
    drifts: list[Drift] = [Drift(p.package, p.field, p.value, p.why) for p in problems]
    manifest = load_manifest(root / "mochi.toml")
    locked = {e.name: e for e in entries}
    for dep in manifest.dependencies:
        entry = locked.get(dep.name)
        if entry is None or not entry.direct:
            drifts.append(Drift(dep.name, "requested", "", dep.fingerprint))
        elif entry.requested != dep.fingerprint:
            drifts.append(Drift(dep.name, "requested", entry.requested, dep.fingerprint))
    wanted = {d.name for d in manifest.dependencies}
    drifts += [Drift(e.name, "requested", e.requested, "") for e in entries if e.direct and e.name not in wanted]
    edges = {e.name: e.dependencies for e in entries}
    wheels: list[Path | None] = []
    with tempfile.TemporaryDirectory(prefix="mochi-check-") as tmp, ThreadPoolExecutor(
            max_workers=max(1, min(_WORKERS, len(entries)))) as pool:
        for found, wheel in pool.map(lambda e: _check_entry(e, ctx, Path(tmp) / e.name,
                                                            [locked[n] for n in requirement_closure(e.name, edges)]),
                                     entries):
            drifts += found  # in lock order, whatever order they finished in
            wheels.append(wheel)
        if entries and all(w is not None for w in wheels):  # against wheels that verified, else that drift says it
            drifts += _site_drifts(root, [w for w in wheels if w is not None], ctx.interpreter)
    pylock = root / "pylock.toml"
    try:
        expected = render_pylock(entries, ctx.requires_python)
    except BridgeError as exc:
        expected = f"(cannot be rendered: {exc.message})"
    actual = pylock.read_text(encoding="utf-8", errors="replace") if pylock.is_file() else ""
    if actual != expected:
        drifts.append(Drift("pylock.toml", "content", "rendered from mochi.lock",
                            "missing" if not actual else "differs"))
    return drifts, len(entries)


def _compare(drifts: list[Drift], entry: LockEntry, field: str, locked: str, actual: str) -> None:
    if locked != actual:
        drifts.append(Drift(entry.name, field, locked, actual))


def _wheel_copy(entry: LockEntry, ctx: Context, scratch: Path) -> Path:
    """The locked wheel: the cached blob, or a fresh download or build in *scratch* (the cache is not written)."""
    cache = Path(ctx.cache)
    try:
        cached = wheel_path(cache, entry.wheel_blake3, entry.wheel_filename)
    except BridgeError:
        cached = None
    if cached is not None and cached.is_file():
        return cached
    scratch.mkdir(parents=True, exist_ok=True)
    if entry.source_kind == "index":
        stream, _, _ = open_url(with_credentials(entry.wheel_url, manifest_index_urls(Path(ctx.root), ctx.indexes)),
                                size=entry.wheel_size if entry.wheel_size > 0 else None)
        out = scratch / entry.wheel_filename
        with stream, out.open("wb") as fh:
            while chunk := stream.read(1 << 20):
                fh.write(chunk)
        return out
    location = str((Path(ctx.root) / entry.source_location).resolve()) if entry.source_kind == "path" else (
        entry.source_location)
    built = build_from_source(entry.name, entry.version, entry.source_kind, location, entry.commit,
                              ctx.interpreter, ctx.default_index, scratch / "cache", ctx.offline)
    return Path(built.path)


def _site_drifts(root: Path, wheels: list[Path], interpreter: str) -> list[Drift]:
    """`python_wrap/site-packages` against the locked wheels' RECORDs (the wheels verified by the caller)."""
    site = root / "python_wrap" / SITE_DIR
    problems = site_problems(site, wheels) + pyc_problems(site, interpreter, SITE_DIR)
    return [Drift("python_wrap", p.path, "", "", message=p.what) for p in problems]


def _wrap_drifts(entry: LockEntry, ctx: Context, files: GeneratedFiles) -> list[Drift]:
    """`python_wrap/<dist>/`: the generated files as they render from the verified surface, the compiled
    module as the lock's build record says (built from these very sources), no other file."""
    root = Path(ctx.root)
    wrap = wrapper_dir(root, entry.name)
    prefix = f"{WRAP_DIR}/{wrapper_dir_name(entry.name)}"
    expected = {rel: hashlib.sha256(blob).hexdigest() for rel, blob in wrap_files(entry.name, files).items()}
    module = f"{module_name(entry.name)}.abi3.so"
    drifts = []
    try:
        built = json.loads((root / ".mochi" / "compile.json").read_text(encoding="utf-8"))[entry.name]
        expected[module] = str(built["sha256"])
        if built["file"] != module or built["key"] != wrapper_key(files.c_source, runtime_dir(), _compiler(),
                                                                  ctx.abi_floor):
            drifts.append(Drift(entry.name, f"{prefix}/{module}", "", "",
                                message="built from other sources or by another compiler than these"))
    except (OSError, ValueError, KeyError, TypeError):
        expected[module] = ""
        drifts.append(Drift(entry.name, f"{prefix}/{module}", "", "",
                            message="no build record (.mochi/compile.json) to verify it against, "
                            "as after a lock by an older version"))
    problems = tree_problems(wrap, {k: v for k, v in expected.items() if v}, prefix)
    problems += pyc_problems(wrap, ctx.interpreter, prefix)
    drifts += [Drift(entry.name, p.path, "", "", message=p.what) for p in problems
               if not (p.path == f"{prefix}/{module}" and not expected[module])]
    return drifts


def _check_entry(entry: LockEntry, ctx: Context, scratch: Path, needs: list[LockEntry]
                 ) -> tuple[list[Drift], Path | None]:
    """The entry's drifts, and its wheel when that verified (for the site-packages check)."""
    verified: list[Path] = []
    drifts = _entry_drifts(entry, ctx, scratch, needs, verified)
    return drifts, verified[0] if verified else None


def _entry_drifts(entry: LockEntry, ctx: Context, scratch: Path, needs: list[LockEntry], verified: list[Path]
                  ) -> list[Drift]:
    drifts: list[Drift] = []
    try:
        wheel = _wheel_copy(entry, ctx, scratch)
    except Offline as exc:
        return [Drift(entry.name, "wheel", entry.wheel_filename, f"not in the cache and {exc.message}", True)]
    except BridgeError as exc:
        return [Drift(entry.name, "wheel", entry.wheel_filename, f"unavailable: {exc.message}")]
    cache = Path(ctx.cache)
    digests = recorded_digests(cache, wheel) if wheel.is_relative_to(cache) else digest_file(wheel)
    _compare(drifts, entry, "wheel-blake3", entry.wheel_blake3, digests.blake3)
    _compare(drifts, entry, "wheel-sha256", entry.wheel_sha256, digests.sha256)
    wheel_ok = not drifts
    imports: set[str] = set()
    if wheel_ok:
        meta = read_metadata(wheel)
        _compare(drifts, entry, "version", entry.version, str(meta.version))
        _compare(drifts, entry, "dependencies", ", ".join(entry.dependencies), ", ".join(active_requirements(
            [str(r) for r in meta.requires_dist or []], list(entry.extras), ctx.python_version)))
        findings, imports = cached_scan(cache, wheel, digests.blake3, store=False)
        caps, _ = apply_db(entry.name, entry.version, findings, _db())
        verified.append(wheel)
        # a set: compared (and shown) sorted, whatever order the scan found them in
        _compare(drifts, entry, "capabilities", ",".join(sorted(entry.capabilities)), ",".join(sorted(caps)))
    if entry.source_kind == "index":
        listed = None
        try:
            index = with_credentials(entry.source_location, manifest_index_urls(Path(ctx.root), ctx.indexes))
            listed = fetch_project(index, entry.name)
            simple = next((f.sha256 for f in listed if f.filename == entry.wheel_filename), "")
            _compare(drifts, entry, "pypi-simple-sha256", entry.pypi_simple_sha256, simple)
        except Offline as exc:
            drifts.append(Drift(entry.name, "pypi-simple-sha256", entry.pypi_simple_sha256, exc.message, True))
        except BridgeError as exc:
            _compare(drifts, entry, "pypi-simple-sha256", entry.pypi_simple_sha256, f"unavailable: {exc.message}")
        drifts += [Drift(entry.name, *d) for d in attestation_drifts(entry, listed, ctx)]  # PEP 740, offline-capable
    if not entry.direct or not wheel_ok:
        return drifts  # stubs and wrapper derive from the wheel: from other bytes they prove nothing
    try:
        dependencies = tuple(_wheel_copy(e, ctx, scratch / "requirements" / e.name) for e in needs)
        stubs = cached_stub_ladder(cache, wheel, digests.blake3, scratch / "stubs", entry.version,
                                   stub_source(ctx, scratch / "stub-cache"), ctx.stubgen_fallback,
                                   ctx.stubgen_inspect, entry.stub_distribution, ctx.stubgen_aggressive, store=False,
                                   dependencies=dependencies, dependency_digests=tuple(e.wheel_blake3 for e in needs))
    except Offline as exc:
        return [*drifts, Drift(entry.name, "stub-provenance", entry.stub_provenance, exc.message, True)]
    except BridgeError as exc:
        return [*drifts, Drift(entry.name, "stub-provenance", entry.stub_provenance, f"unavailable: {exc.message}")]
    _compare(drifts, entry, "stub-provenance", entry.stub_provenance, stubs.provenance)
    _compare(drifts, entry, "stub-sha256", entry.stub_sha256, stubs.sha256)
    try:
        surface = cached_surface(cache, scratch / "stubs", stubs.sha256, stubs.modules, entry.name, entry.version,
                                 stubs.provenance, surface_options(ctx, needs_trio(imports)), stubs.problems,
                                 store=False)
    except BridgeError as exc:
        return [*drifts, Drift(entry.name, "wrapper-sha256", entry.wrapper_sha256, f"unavailable: {exc.message}")]
    files = cached_render(cache, surface, ctx.abi_floor, ctx.strict_returns, ctx.async_mode, store=False)
    if entry.wrapper_sha256 != files.wrapper_sha256:
        return [*drifts, Drift(entry.name, "wrapper-sha256", entry.wrapper_sha256, files.wrapper_sha256)]
    return drifts + _wrap_drifts(entry, ctx, files)


@functools.cache
def _db() -> list[DbEntry]:
    return load_db()


@functools.cache
def _compiler() -> str:
    return compiler_identity()
