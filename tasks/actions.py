"""doit actions: the thin I/O shell around each stage's pure core.

Every action is a module-level function taking plain, picklable arguments (so `-P process`
works under fork and forkserver), writes its outputs atomically, and returns a dict of saved
values or a ``TaskFailed`` carrying the user-facing message.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from .audit.capabilities import apply_db, cached_scan, load_db, needs_trio
from .build.compile import WrapperJob, build_wrappers
from .build.launcher import LauncherStats
from .build.site import SITE_DIR, install_site
from .build.wrapdir import publish_wrapper
from .cache import atomic_write
from .codegen.cached import cached_render
from .codegen.render import module_name, wrap_files
from .codegen.wrapdir import WRAP_DIR, wrapper_dir, wrapper_dir_name
from .console import say, warn
from .context import Context
from .errors import AttestationFailed, BridgeError, ResolveError, redact_text
from .fetch.attest import AttestedFile
from .fetch.download import build_from_source, fetch_from_index, fetch_locked
from .lock.attestations import lock_notes
from .lock.frozen import lock_differences, locked_file, manifest_disagreements, pins_from_lock
from .lock.gates import audit
from .lock.lockfile import (
    LockEntry,
    active_requirements,
    read_lock,
    relative_location,
    render_mochi_lock,
    render_pylock,
    requirement_closure,
    sticky_pins,
)
from .resolve.interpreter import target_tags
from .resolve.manifest import Manifest, load_manifest
from .resolve.resolver import resolve
from .resolve.sources import check_imports, scan_project
from .resolve.urls import manifest_index_urls, public_url, with_credentials
from .stubs.cached import cached_stub_ladder
from .stubs.ladder import StubSet, stub_source
from .surface.cached import cached_surface
from .surface.model import Surface, surface_options

__all__ = [
    "FROZEN_DRIFT",
    "act_capabilities",
    "act_check",
    "act_codegen",
    "act_compile",
    "act_fetch",
    "act_lock",
    "act_resolve",
    "act_site",
    "act_stubs",
    "act_surface",
    "from_lock",
    "lock_entries",
    "read_json",
    "staged_wrapper",
    "unknown_names_hint",
]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: object) -> None:
    # intermediates: rebuilt when doit finds them changed or missing, so no fsync (DESIGN §10's budgets)
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), durable=False)


def _deps_dir(ctx: Context, name: str) -> Path:
    return Path(ctx.root) / ".mochi" / "deps" / name


def staged_wrapper(ctx: Context, name: str) -> Path:
    """Where the wrapper of *name* is assembled before it replaces `python_wrap/<dir>/` (see build.wrapdir)."""
    return _deps_dir(ctx, name) / "wrap"


def _failed(exc: BridgeError) -> TaskFailed:
    return TaskFailed(redact_text(str(exc)))  # a message quoting an index URL never shows its password


def from_lock(ctx: Context, manifest: Manifest, locked: list[LockEntry]) -> bool:
    """Whether the pins come from mochi.lock: `--frozen`, or offline with a lock that still fits mochi.toml."""
    if ctx.frozen:
        return True
    return ctx.offline and not ctx.release and not manifest_disagreements(manifest, locked)


def unknown_names_hint(exc: ResolveError, ctx: Context, manifest: Manifest, *, adding: bool = False) -> ResolveError:
    """*exc*, led by a "did you mean" for each index dependency the indexes do not know (asked only now).

    *adding*: the manifest is `add`'s proposal, not the file, so no line of it is named.
    """
    from .fetch.names import unknown_projects
    names = [d.name for d in manifest.dependencies if d.source_kind == "index"]
    try:
        unknown = unknown_projects(names, list(ctx.indexes), Path(ctx.cache))
    except BridgeError:
        return exc
    if not unknown:
        return exc
    lines = []
    for name, close in unknown.items():
        dep = manifest.dependency(name)
        where = f"{dep.where}: " if dep and not adding else ""
        guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        lines.append(f"{where}no package named {name!r} on {', '.join(map(public_url, ctx.indexes))}{guess}")
    said = f"\n(the resolver said: {exc.message})" if ctx.verbosity > 0 else ""
    hint = ("check the spelling; mochi.toml was not changed" if adding else
            "fix the name in mochi.toml (`mochi-py remove NAME`, then `mochi-py add` the right one)")
    return ResolveError("\n".join(lines) + said, hint)


def act_resolve(ctx: Context) -> dict[str, Any] | TaskFailed:
    root = Path(ctx.root)
    try:
        manifest = load_manifest(root / "mochi.toml")
        imports = scan_project(root)
        check_imports(imports, manifest)
        locked = read_lock(root / "mochi.lock")
        if from_lock(ctx, manifest, locked):
            out = pins_from_lock(locked, root, manifest)
            check_imports(imports, manifest, {p["name"]: p["version"] for p in out})
            _write_json(root / ".mochi" / "resolve.json", {"resolver": "mochi.lock", "pins": out})
            say(ctx.verbosity, f"took {len(out)} pins from mochi.lock (no resolution)", 1)
            return {"pins": len(out), "resolver": "mochi.lock"}
        requested = {d.name: d.fingerprint for d in manifest.dependencies}
        try:
            pins, resolver = resolve(manifest, ctx.interpreter, ctx.python_version, ctx.marker_env,
                                     ctx.default_index, Path(ctx.cache), root / ".mochi" / "resolve",
                                     sticky_pins(locked, requested, frozenset(ctx.release)), offline=ctx.offline,
                                     on_fallback=lambda e: warn(ctx.verbosity, f"uv could not resolve; trying pip's "
                                                                f"resolver. uv said:\n{e}"))
        except ResolveError as exc:
            raise unknown_names_hint(exc, ctx, manifest) from None
        check_imports(imports, manifest, {p.name: p.version for p in pins})
    except BridgeError as exc:
        return _failed(exc)
    deps = {d.name: d for d in manifest.dependencies}
    same = {e.name: e for e in locked}
    out = []
    for p in pins:
        dep = deps.get(p.name)
        entry = same.get(p.name) if p.name in same and same[p.name].version == p.version else None
        out.append({**p.to_dict(), "extras": list(dep.extras) if dep else [],
                    "requested": dep.fingerprint if dep else "", "markers": dep.markers if dep else "",
                    # PEP 592: a yanked file may be used only when the version is pinned exactly
                    "allow_yanked": bool(dep and dep.specifier.startswith(("==", "===")) and "," not in dep.specifier),
                    "locked_sha256": entry.wheel_sha256 if entry and entry.source_kind == "index" else "",
                    "locked_stub_dist": entry.stub_distribution if entry else "",
                    "locked_file": locked_file(entry) if entry else {}})
    _write_json(root / ".mochi" / "resolve.json", {"resolver": resolver, "pins": out})
    say(ctx.verbosity, f"resolved {len(pins)} package{'' if len(pins) == 1 else 's'} with {resolver}")
    return {"pins": len(pins), "resolver": resolver}


def act_fetch(ctx: Context, pin: dict[str, Any]) -> dict[str, Any] | TaskFailed:
    target = ctx.target
    required, trusted = ctx.attestation_policy(pin["name"])
    try:
        locked = pin.get("locked_file") or {}
        fetched = None
        if locked and (ctx.frozen or ctx.offline):  # by the locked hash, no index page
            fetched = fetch_locked(pin["name"], pin["version"], locked, Path(ctx.cache), pin["source"], ctx.offline,
                                   manifest_index_urls(Path(ctx.root), ctx.indexes))
        if fetched is not None:
            pass
        elif pin["source"] == "index":
            # the pin records the index without credentials; the manifest's URL for it has them
            indexes = [with_credentials(pin["location"], manifest_index_urls(Path(ctx.root), ctx.indexes))
                       ] if pin["location"] else list(ctx.indexes)
            fetched = fetch_from_index(pin["name"], pin["version"], indexes, target_tags(target), target.version_str,
                                       Path(ctx.cache), allow_yanked=pin["allow_yanked"],
                                       expected_sha256=pin["locked_sha256"], attestations_required=required,
                                       trusted_publisher=trusted)
        else:
            if pin["name"] in ctx.require_attestations:  # named explicitly; `true` means every index package
                raise AttestationFailed(f"{pin['name']}: [python].require-attestations names it, but it comes from "
                                        f"a {pin['source']} source, which has no index provenance to verify",
                                        "take it out of require-attestations: you build it from a source you chose")
            fetched = build_from_source(pin["name"], pin["version"], pin["source"], pin["location"], pin["commit"],
                                        ctx.interpreter, ctx.default_index, Path(ctx.cache), ctx.offline)
    except BridgeError as exc:
        return _failed(exc)
    _write_json(_deps_dir(ctx, pin["name"]) / "fetch.json", fetched.to_dict())
    return {"filename": fetched.filename, "bytes": fetched.size}


def _stub_documents(ctx: Context, pin: dict[str, Any], materialize: bool) -> StubSet:
    out = _deps_dir(ctx, pin["name"])
    fetched = read_json(out / "fetch.json")
    pins = read_json(Path(ctx.root) / ".mochi" / "resolve.json")["pins"]
    edges = {p["name"]: active_requirements(read_json(_deps_dir(ctx, p["name"]) / "fetch.json")["requires_dist"],
                                            p["extras"], ctx.python_version)
             for p in pins if (_deps_dir(ctx, p["name"]) / "fetch.json").is_file()}
    needs = [read_json(_deps_dir(ctx, n) / "fetch.json") for n in requirement_closure(pin["name"], edges)]
    return cached_stub_ladder(Path(ctx.cache), Path(fetched["path"]), fetched["blake3"], out / "stubs",
                              fetched["version"], stub_source(ctx), ctx.stubgen_fallback, ctx.stubgen_inspect,
                              pin.get("locked_stub_dist", ""), ctx.stubgen_aggressive, materialize=materialize,
                              dependencies=tuple(Path(f["path"]) for f in needs),
                              dependency_digests=tuple(f["blake3"] for f in needs))


def act_stubs(ctx: Context, pin: dict[str, Any]) -> dict[str, Any] | TaskFailed:
    try:
        # documents from the cache are written out only if the surface stage misses too and needs them
        stubs = _stub_documents(ctx, pin, materialize=False)
    except BridgeError as exc:
        return _failed(exc)
    _write_json(_deps_dir(ctx, pin["name"]) / "stubs.json", stubs.to_dict())
    return {"provenance": stubs.provenance}


def act_surface(ctx: Context, name: str) -> dict[str, Any] | TaskFailed:
    out = _deps_dir(ctx, name)
    stubs = read_json(out / "stubs.json")
    fetched = read_json(out / "fetch.json")

    def documents() -> Path:
        if not (out / "stubs").is_dir():  # the stub stage took them from the cache without writing them
            pin = next(p for p in read_json(Path(ctx.root) / ".mochi" / "resolve.json")["pins"] if p["name"] == name)
            _stub_documents(ctx, pin, materialize=True)
        return out / "stubs"

    try:
        data = cached_surface(Path(ctx.cache), documents, stubs["sha256"], stubs["modules"], name,
                              fetched["version"], stubs["provenance"],
                              surface_options(ctx, read_json(out / "capabilities.json")["trio"]),
                              stubs.get("problems", {}))
    except BridgeError as exc:
        return _failed(exc)
    atomic_write(out / "surface.json", data, durable=False)
    surface = json.loads(data)
    return {"translated": len(surface["functions"]), "skipped": len(surface["skipped"])}


def act_codegen(ctx: Context, name: str) -> dict[str, Any]:
    out = _deps_dir(ctx, name)
    files = cached_render(Path(ctx.cache), (out / "surface.json").read_bytes(), ctx.abi_floor, ctx.strict_returns,
                          ctx.async_mode)
    if "\tWrapperTooLarge\t" in files.skipped:
        warn(ctx.verbosity, f"{name}: nothing bound: its generated C wrapper is over the size cap "
             f"(MOCHI_MAX_WRAPPER_C_BYTES); see {WRAP_DIR}/{wrapper_dir_name(name)}/SKIPPED.txt")
    wrap = staged_wrapper(ctx, name)  # published into python_wrap/ by compile, with the module, as a whole
    atomic_write(out / f"{module_name(name)}.c", files.c_source.encode(), durable=False)
    written = wrap_files(name, files)
    for rel, text in written.items():
        atomic_write(wrap / rel, text, durable=False)
    _clear_extras(wrap, {*written, f"{module_name(name)}.abi3.so"})
    _write_json(out / "codegen.json", {"wrapper-sha256": files.wrapper_sha256,
                                       "files": {rel: hashlib.sha256(b).hexdigest() for rel, b in written.items()}})
    return {"wrapper_sha256": files.wrapper_sha256}


def _clear_extras(wrap: Path, keep: set[str]) -> None:
    """python_wrap/<dist>/ holds what the lock writes there and nothing else (a dropped file, a stale
    bytecode cache would run beside it)."""
    import shutil
    for child in wrap.iterdir():
        if child.name in keep and child.is_file() and not child.is_symlink():
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def act_compile(ctx: Context, names: list[str]) -> dict[str, Any] | TaskFailed:
    root = Path(ctx.root)
    jobs = [WrapperJob(dist=n, module=module_name(n), c_source=_deps_dir(ctx, n) / f"{module_name(n)}.c",
                       dest_dir=staged_wrapper(ctx, n)) for n in names]
    stats: list[LauncherStats] = []
    started = time.monotonic()
    try:
        results = build_wrappers(jobs, ctx.interpreter, ctx.abi_floor, Path(ctx.build_dir),
                                 Path(ctx.cache), ctx.compiler_cache, (root,), stats)
        for n in names:  # every module built: only now does python_wrap/ change, one whole directory each
            publish_wrapper(staged_wrapper(ctx, n), wrapper_dir(root, n))
    except BridgeError as exc:
        return _failed(exc)
    _write_json(root / ".mochi" / "compile.json", results)
    # what the compile step cost and what the launcher saved (the lock's summary and bench/fleet.py read it)
    _write_json(root / ".mochi" / "compiler-cache.json",
                {**(stats[0].to_dict() if stats else {}), "seconds": round(time.monotonic() - started, 3)})
    return {"compiled": sum(r["cached"] == "no" for r in results.values()),
            "cache_hits": sum(r["cached"] == "yes" for r in results.values())}


def act_site(ctx: Context, names: list[str]) -> dict[str, Any] | TaskFailed:
    root = Path(ctx.root)
    fetched = [read_json(_deps_dir(ctx, n) / "fetch.json") for n in names]
    wheels = [Path(f["path"]) for f in fetched]
    try:
        install_site(wheels, ctx.interpreter, ctx.python_version, root / "python_wrap" / SITE_DIR,
                     Path(ctx.cache), [f["blake3"] for f in fetched])
    except BridgeError as exc:
        return _failed(exc)
    return {"installed": len(wheels)}


def act_capabilities(ctx: Context, pin: dict[str, Any]) -> dict[str, Any] | TaskFailed:
    out = _deps_dir(ctx, pin["name"])
    fetched = read_json(out / "fetch.json")
    try:
        findings, imports = cached_scan(Path(ctx.cache), Path(fetched["path"]), fetched["blake3"])
        caps, status = apply_db(pin["name"], pin["version"], findings, load_db())
    except BridgeError as exc:
        return _failed(exc)
    _write_json(out / "capabilities.json", {"capabilities": sorted(caps), "free_threaded": status,
                                            "trio": needs_trio(imports),  # R12, read by the surface stage
                                            "findings": [f.to_dict() for f in findings]})
    return {"capabilities": caps}


def act_check(ctx: Context) -> dict[str, Any] | TaskFailed:
    from .lock.check import check_project, format_drifts
    try:
        drifts, checked = check_project(ctx)
    except BridgeError as exc:
        return _failed(exc)
    if drifts:
        return TaskFailed(f"mochi.lock drifted ({len(drifts)} finding(s)):\n{format_drifts(drifts)}")
    print(f"mochi.lock holds: {checked} package(s) checked")
    return {"checked": checked}


def lock_entries(ctx: Context) -> tuple[list[LockEntry], dict[str, Counter[str]]]:
    """The lock entries the stage outputs under `.mochi/` describe, and each direct dependency's skip reasons."""
    root = Path(ctx.root)
    entries = []
    reasons: dict[str, Counter[str]] = {}
    for pin in read_json(root / ".mochi" / "resolve.json")["pins"]:
        d = _deps_dir(ctx, pin["name"])
        fetched = read_json(d / "fetch.json")
        stubs = read_json(d / "stubs.json") if pin["direct"] else {}
        surface = read_json(d / "surface.json") if pin["direct"] else {}
        codegen = read_json(d / "codegen.json") if pin["direct"] else {}
        caps = read_json(d / "capabilities.json")
        counts = Surface.from_dict(surface).counts() if surface else (0, 0, 0)
        reasons[pin["name"]] = Counter(sk["reason"] for sk in surface.get("skipped", []))
        location = relative_location(pin["location"], root) if pin["source"] == "path" else (
            fetched["index"] or pin["location"])
        entries.append(LockEntry(
            name=pin["name"], version=pin["version"], direct=pin["direct"], requested=pin["requested"],
            source_kind=pin["source"], source_location=location, commit=pin["commit"],
            wheel_filename=fetched["filename"], wheel_url=fetched["url"], wheel_size=fetched["size"],
            wheel_blake3=fetched["blake3"], wheel_sha256=fetched["sha256"],
            pypi_simple_sha256=fetched["simple_sha256"], stub_provenance=stubs.get("provenance", ""),
            stub_sha256=stubs.get("sha256", ""), stub_distribution=stubs.get("stub_dist", ""),
            capabilities=tuple(sorted(caps["capabilities"])),  # a set: mochi.lock writes it sorted
            capabilities_declared=tuple(ctx.capabilities_declared or ()),
            wrapper_sha256=codegen.get("wrapper-sha256", ""),
            extras=tuple(pin["extras"]), markers=pin["markers"],
            dependencies=tuple(active_requirements(fetched["requires_dist"], pin["extras"],
                                                   ctx.python_version)),
            translated=counts[0], skipped=counts[1],
            attestations=tuple(AttestedFile(**a) for a in fetched.get("attestations", []))))
    return entries, reasons


# Skips a user should hear about at lock time, not only in SKIPPED.txt.
_NOTABLE_SKIPS = {"IncompatibleAsyncRuntime": "async item(s) skipped: the package runs its async code on trio (R12)",
                  "ImportTimeNetwork": "module(s) without stubs: importing them reached for the network"}


FROZEN_DRIFT = Path(".mochi") / "frozen-drift.json"
"""Written when a frozen run built something other than mochi.lock: the CLI exits 1 (drift), not 2."""


def act_lock(ctx: Context) -> dict[str, Any] | TaskFailed:
    root = Path(ctx.root)
    entries, reasons = lock_entries(ctx)
    (root / FROZEN_DRIFT).unlink(missing_ok=True)
    try:
        audit(ctx, entries)
        pylock = render_pylock(entries, ctx.requires_python)
    except BridgeError as exc:
        return _failed(exc)
    if ctx.frozen and (diffs := lock_differences(read_lock(root / "mochi.lock"), entries)):
        atomic_write(root / FROZEN_DRIFT, json.dumps(diffs).encode())
        return TaskFailed("--frozen: what the locked files build differs from mochi.lock (nothing was written):\n"
                          + "\n".join(f"  {d}" for d in diffs)
                          + "\n  hint: run `mochi-py lock` (without --frozen) and commit the new mochi.lock")
    # pylock first: a lock killed between the two writes leaves mochi.lock, the source of truth, as it was.
    if not (ctx.frozen and (root / "pylock.toml").is_file() and (root / "pylock.toml").read_text("utf-8") == pylock):
        atomic_write(root / "pylock.toml", pylock.encode())
    if not ctx.frozen:  # a frozen run reproduced the lock (checked above) and never rewrites it
        atomic_write(root / "mochi.lock", render_mochi_lock(entries, ctx.requires_python).encode())
    _prune_wrappers(root, {wrapper_dir_name(e.name) for e in entries if e.direct})
    for e in entries:
        if e.direct:
            say(ctx.verbosity, f"{e.name} {e.version}: {e.translated} translated, {e.skipped} skipped "
                f"({e.stub_provenance})")
            for reason, what in _NOTABLE_SKIPS.items():
                if count := reasons[e.name][reason]:
                    skipped = f"{WRAP_DIR}/{wrapper_dir_name(e.name)}/SKIPPED.txt"
                    say(ctx.verbosity, f"  {e.name}: {count} {what} ({reason}; see {skipped})")
            if why := read_json(_deps_dir(ctx, e.name) / "stubs.json").get("unsandboxed"):
                warn(ctx.verbosity, f"{e.name}: stubs read from its sources, the package was not imported: no "
                     f"sandbox for stubgen on this system ({why})")
    for line in lock_notes(entries, ctx):
        say(ctx.verbosity, line)
    union = sorted({c for e in entries for c in e.capabilities})
    if ctx.capabilities_declared is None and union:
        say(ctx.verbosity, f"capabilities {', '.join(union)} recorded, not enforced: declare them under "
            "[python.capabilities] in mochi.toml to enforce them")
    return {"packages": len(entries)}


def _prune_wrappers(root: Path, keep: set[str]) -> None:
    """python_wrap/ is the tool's, regenerated every lock: a package the lock no longer holds leaves it."""
    import shutil
    wrap = root / WRAP_DIR
    if not wrap.is_dir():
        return
    for child in wrap.iterdir():
        if child.is_dir() and child.name != SITE_DIR and child.name not in keep and (child / "shim.mochi").is_file():
            shutil.rmtree(child, ignore_errors=True)
