"""Stub stage: the PEP 561 ladder of DESIGN §5, first hit wins, provenance recorded.

1. `py.typed`: a top-level package with the marker contributes its `.pyi` files and its annotated
   `.py` files where no `.pyi` sits beside them. A `partial` marker merges the next tier under it.
2. `<name>-stubs`: a stub-only distribution on the index, fetched and hashed like any wheel.
3. `typeshed`: the `types-*` distribution `mypy.stubinfo` names for the module; one whose
   `obsolete_since` the package has reached is passed over.

Whatever the tier, a module with a stub document over `MOCHI_MAX_STUB_BYTES` is skipped
(`StubTooLarge`) rather than parsed.
4. `stubgen`: generated in a sandbox (:mod:`tasks.stubs.stubgen`) from the wheel's own sources, unless
   `[python].stubgen.fallback = "deny"`, which makes an untyped package a hard error.

A stub distribution's version is chosen to match the package's `major.minor` when one does (the
typeshed and `-stubs` convention), else the newest; the choice is recorded and reused while the
package version stays the same.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from packaging import tags
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..context import LIMITS, Context, limit
from ..errors import AttestationFailed, BridgeError, FetchError, HashMismatch
from ..fetch.wheel import open_wheel, read_member, safe_members
from ..resolve.interpreter import target_tags

__all__ = ["DEPENDENCY_STUBS", "StubSet", "StubSource", "documents_match", "extract_stubs", "restore_stubs",
           "stub_digest", "stub_ladder", "stub_source", "top_level_names"]

DEPENDENCY_STUBS = "_mochi_deps"
"""The subdirectory of a stub set holding the typed documents of the distribution's dependencies, so classes
of theirs that the package hands out can be bound from their own stubs (DESIGN §6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StubSet:
    provenance: str
    """`py.typed`, `<name>-stubs`, `typeshed`, `stubgen`, or `none`."""
    modules: list[str]
    """Top-level import names of the distribution, sorted."""
    files: list[str]
    """Paths of the stub documents, relative to the stub directory, sorted."""
    sha256: str
    stub_dist: str = ""
    """`name==version` of the stub distribution used (tiers 2 and 3)."""
    stub_wheel_sha256: str = ""
    problems: dict[str, list[str]] = field(default_factory=dict)
    """module -> [skip reason, detail] for modules no tier could type."""
    unsandboxed: str = ""
    """stubgen tier: why no sandbox could import the package here, so its stubs were read from the sources."""
    stub_requirements: list[str] = field(default_factory=list)
    """`name version filename sha256` of each requirement of the stub distribution (scipy-stubs needs optype)
    whose typed documents were read beside the stubs; stub documents only, never installed or locked as
    runtime dependencies."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def top_level_names(names: list[str]) -> list[str]:
    """Import names a wheel provides at its root: packages (with `__init__`) and single modules."""
    tops: set[str] = set()
    for name in names:
        parts = PurePosixPath(name).parts
        if not parts or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1 and parts[0].endswith((".py", ".pyi")):
            tops.add(parts[0].rsplit(".", 1)[0])
        elif len(parts) == 2 and parts[1] in ("__init__.py", "__init__.pyi"):
            tops.add(parts[0])
    return sorted(t for t in tops if t.isidentifier())


def stub_digest(root: Path, files: list[str]) -> str:
    """SHA-256 over the sorted (path, content digest) pairs of the document set."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def _members(wheel: Path) -> dict[str, zipfile.ZipInfo]:
    with open_wheel(wheel) as zf:
        return {m.filename: m for m in safe_members(zf, wheel) if not m.is_dir()}


def _copy(wheel: Path, chosen: dict[str, str], dest: Path) -> None:
    """Write wheel member -> relative path pairs under *dest*."""
    with open_wheel(wheel) as zf:
        members = {m.filename: m for m in safe_members(zf, wheel)}
        for member, rel in sorted(chosen.items()):
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(read_member(zf, members[member], wheel))


def _inline(members: dict[str, zipfile.ZipInfo], tops: list[str]) -> tuple[dict[str, str], list[str]]:
    """(member -> path, typed tops) of the inline tier."""
    typed = [t for t in tops if f"{t}/py.typed" in members]
    chosen = {}
    for name in members:
        parts = PurePosixPath(name).parts
        shadowed = name.endswith(".py") and f"{name}i" in members  # a .pyi beside a .py is the authority (PEP 561)
        if parts[0] in typed and name.endswith((".py", ".pyi")) and not shadowed:
            chosen[name] = name
    return chosen, typed


def extract_stubs(wheel: Path, dest: Path) -> StubSet:
    """Tier 1 only: copy the inline typed documents of *wheel* into *dest* (replaced whole, atomically)."""
    members = _members(wheel)
    tops = top_level_names(list(members))
    chosen, typed = _inline(members, tops)
    return _publish(dest, lambda tmp: _copy(wheel, chosen, tmp), tops, "py.typed" if typed else "none")


def _dependency_documents(tmp: Path, dependencies: tuple[Path, ...]) -> None:
    """The inline typed documents (tier 1) of each dependency wheel, under `<tmp>/_mochi_deps/`."""
    for wheel in dependencies:
        members = _members(wheel)
        chosen, _ = _inline(members, top_level_names(list(members)))
        _copy(wheel, {m: rel for m, rel in chosen.items() if not (tmp / rel).exists()}, tmp / DEPENDENCY_STUBS)


def _publish(dest: Path, fill: Callable[[Path], None], modules: list[str], provenance: str,
             stub_dist: str = "", stub_wheel_sha256: str = "", problems: dict[str, list[str]] | None = None,
             dependencies: tuple[Path, ...] = (), unsandboxed: str = "",
             stub_requirements: list[str] | None = None) -> StubSet:
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    problems = dict(problems or {})
    try:
        fill(tmp)
        if provenance != "none":
            _dependency_documents(tmp, dependencies)
        problems.update(_drop_oversized(tmp, modules))
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()
                       and p.suffix in (".py", ".pyi"))
        digest = stub_digest(tmp, files)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StubSet(provenance=provenance, modules=modules, files=files, sha256=digest, stub_dist=stub_dist,
                   stub_wheel_sha256=stub_wheel_sha256, problems=problems, unsandboxed=unsandboxed,
                   stub_requirements=stub_requirements or [])


def _drop_oversized(tmp: Path, modules: list[str]) -> dict[str, list[str]]:
    """Take out every document of a module that has one over the stub-size cap (`MOCHI_MAX_STUB_BYTES`):
    the module is skipped whole, with the reason, rather than bound from part of its documents or
    parsed at any cost. An oversized dependency document is dropped alone (it only names classes)."""
    cap = int(limit("stub-bytes"))
    problems: dict[str, list[str]] = {}
    for path in sorted(p for p in tmp.rglob("*") if p.is_file() and p.suffix in (".py", ".pyi")):
        size = path.stat().st_size
        if size <= cap:
            continue
        rel = path.relative_to(tmp).as_posix()
        top = rel.split("/", 1)[0].removesuffix(".pyi").removesuffix(".py")
        if top == DEPENDENCY_STUBS or top not in modules:
            path.unlink()
            continue
        problems.setdefault(top, ["StubTooLarge", f"the stub document {rel} is {size} bytes, over the {cap}-byte "
                                  f"cap ({LIMITS['stub-bytes'].env}); the module is not bound"])
    for top in problems:
        shutil.rmtree(tmp / top, ignore_errors=True)
        for single in (tmp / f"{top}.pyi", tmp / f"{top}.py"):
            single.unlink(missing_ok=True)
    return problems


def documents_match(files: dict[str, bytes], stubs: StubSet) -> bool:
    """Whether *files* are the documents *stubs* describes (their paths and `stub-sha256`)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).hexdigest().encode() + b"\n")
    return sorted(files) == stubs.files and h.hexdigest() == stubs.sha256


def restore_stubs(dest: Path, files: dict[str, bytes], stubs: StubSet) -> StubSet | None:
    """Publish a cached document set at *dest* (replaced whole, atomically); None, with *dest* untouched,
    when the documents are not the set *stubs* describes (their paths and `stub-sha256`)."""
    if not documents_match(files, stubs):
        return None

    def fill(tmp: Path) -> None:
        for rel, data in files.items():
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)

    return _publish(dest, fill, stubs.modules, stubs.provenance, stubs.stub_dist, stubs.stub_wheel_sha256,
                    stubs.problems, unsandboxed=stubs.unsandboxed, stub_requirements=stubs.stub_requirements)


def _partial(wheel: Path, members: dict[str, zipfile.ZipInfo], typed: list[str]) -> bool:
    with open_wheel(wheel) as zf:
        return any("partial" in read_member(zf, members[f"{t}/py.typed"], wheel).decode("utf-8", "replace")
                   for t in typed)


def _pick_version(files: list[tuple[str, Version]], package_version: str, pinned: str) -> str | None:
    """The stub wheel to use: the pinned one, else the newest matching the package's major.minor, else newest."""
    if pinned and any(f == pinned for f, _ in files):
        return pinned
    try:
        base = Version(package_version).release[:2]
    except InvalidVersion:
        base = ()
    matching = [(v, f) for f, v in files if v.release[:2] == base]
    pool = matching or [(v, f) for f, v in files]
    return max(pool)[1] if pool else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StubSource:
    """Where tiers 2 and 3 may fetch from."""

    indexes: list[str]
    accepted: list[tags.Tag]
    python_version: str
    cache: Path


def stub_source(ctx: Context, cache: Path | None = None) -> StubSource:
    """Tiers 2 and 3 for the project *ctx* describes: its indexes and target, the shared cache or *cache*."""
    target = ctx.target
    return StubSource(indexes=list(ctx.indexes), accepted=target_tags(target), python_version=target.version_str,
                      cache=cache or Path(ctx.cache))


def _stub_wheel(project: str, package_version: str, source: StubSource, pinned: str) -> Path | None:
    """Fetch the chosen wheel of stub project *project* (None when the index has none).

    The stub wheel a lock recorded (*pinned*, a filename) is taken from the cache when it is there, without
    asking the index; offline, a pinned stub wheel the cache lacks is an error rather than a silent change
    of stub tier.
    """
    from ..cache import find_by_name
    from ..errors import Offline
    from ..fetch.download import fetch_from_index
    from ..fetch.index import fetch_project
    try:
        mine = bool(pinned) and parse_wheel_filename(pinned)[0] == canonicalize_name(project)
    except InvalidWheelFilename:
        mine = False
    if mine and (cached := find_by_name(source.cache, pinned)) is not None:
        return cached
    for url in source.indexes:
        try:
            listing = fetch_project(url, project)
        except Offline:
            if mine:
                raise
            continue
        except FetchError:
            continue
        wheels = []
        for f in listing:
            try:
                wname, wversion, _, _ = parse_wheel_filename(f.filename)
            except InvalidWheelFilename:
                continue
            if wname == canonicalize_name(project) and not f.yanked:
                wheels.append((f.filename, wversion))
        chosen = _pick_version(wheels, package_version, pinned)
        if chosen is None:
            continue
        fetched = fetch_from_index(project, str(parse_wheel_filename(chosen)[1]), [url], source.accepted,
                                   source.python_version, source.cache)
        return Path(fetched.path)
    return None


def _stub_package_files(wheel: Path, top: str) -> tuple[dict[str, str], str]:
    """(member -> path under `<top>/`, obsolete_since) of a `<top>-stubs` tree inside a stub wheel."""
    members = _members(wheel)
    prefix = f"{top}-stubs/"
    chosen = {m: top + "/" + m[len(prefix):] for m in members if m.startswith(prefix) and m.endswith(".pyi")}
    single = f"{top}-stubs.pyi"  # rare single-module stub distributions
    if single in members:
        chosen[single] = f"{top}.pyi"
    obsolete = ""
    meta = f"{prefix}METADATA.toml"
    if meta in members:
        with open_wheel(wheel) as zf:
            try:
                data = tomllib.loads(read_member(zf, members[meta], wheel).decode())
                obsolete = str(data.get("obsolete_since", data.get("obsolete-since", "")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                pass
    return chosen, obsolete


def stub_ladder(wheel: Path, dest: Path, package_version: str, source: StubSource, fallback: str, inspect: bool,
                pinned: str = "", aggressive: bool = False, dependencies: tuple[Path, ...] = ()) -> StubSet:
    """Walk the ladder for *wheel* and publish the winning document set at *dest*, with the inline typed
    documents of the *dependencies* wheels beside it (under `_mochi_deps/`).

    :raises BridgeError: `fallback == "deny"` and only stubgen could type the package.
    """
    members = _members(wheel)
    tops = top_level_names(list(members))
    chosen, typed = _inline(members, tops)
    if typed and not _partial(wheel, members, typed):
        return _publish(dest, lambda tmp: _copy(wheel, chosen, tmp), tops, "py.typed", dependencies=dependencies)
    pinned_file = pinned.partition(" ")[2]
    for top in tops:
        for tier, project in ((f"{top}-stubs", f"{top}-stubs"), ("typeshed", _typeshed_name(top))):
            if project is None:
                continue
            stub = _stub_wheel(project, package_version, source, pinned_file)
            if stub is None:
                continue
            files, obsolete = _stub_package_files(stub, top)
            if not files or (obsolete and typed and _at_least(package_version, obsolete)):
                continue  # typeshed's stubs are obsolete once the package ships its own types
            covered = set(files.values())  # PEP 561 partial: per module, the stub package wins
            inline = {m: p for m, p in chosen.items() if p.removesuffix(".py").removesuffix(".pyi") + ".pyi"
                      not in covered}

            def fill(tmp: Path, stub: Path = stub, files: dict[str, str] = files, inline: dict[str, str] = inline
                     ) -> None:
                _copy(stub, files, tmp)
                _copy(wheel, inline, tmp)  # a partial inline package fills what the stubs leave out

            digest = hashlib.sha256(stub.read_bytes()).hexdigest()
            extra = _stub_requirement_wheels(stub, source, {canonicalize_name(parse_wheel_filename(w.name)[0])
                                                            for w in (wheel, *dependencies)})
            return _publish(dest, fill, tops, tier if tier == "typeshed" else project,
                            stub_dist=f"{project} {stub.name}", stub_wheel_sha256=digest,
                            dependencies=(*dependencies, *(w for w, _ in extra)),
                            stub_requirements=[r for _, r in extra])
    if typed:
        return _publish(dest, lambda tmp: _copy(wheel, chosen, tmp), tops, "py.typed", dependencies=dependencies)
    if fallback == "deny":
        raise BridgeError(f"{wheel.name} ships no types, no stub distribution was found, and "
                          "[python].stubgen.fallback is \"deny\"",
                          "allow the stubgen fallback, or replace the dependency with a typed one")
    return _stubgen_tier(wheel, members, tops, dest, inspect, aggressive, dependencies)


_STUB_REQUIREMENT_DEPTH = 2
"""How far the requirements of a stub distribution are followed (scipy-stubs -> optype[numpy] ->
numpy-typing-compat): far enough for the aliases the stubs use, not a second resolver."""


def _stub_requirement_wheels(stub: Path, source: StubSource, present: set[str]) -> list[tuple[Path, str]]:
    """The wheels of what the stub distribution *stub* requires (and what they require, to a small depth),
    besides the distributions in *present*: (wheel, `name version filename sha256`) pairs.

    The stub distribution's annotations name these packages' types (scipy-stubs annotates with optype), yet
    they are requirements of the stubs, not of the package, so the resolver never saw them. Their typed
    documents are read beside the stubs; nothing is installed. A requirement the index cannot serve (offline,
    no matching wheel) is left out: its names then stay unresolved, as they were without it.
    """
    from ..fetch.wheel import read_metadata
    major, minor, micro = (int(x) for x in [*source.python_version.split("."), "0", "0"][:3])
    out: list[tuple[Path, str]] = []
    todo: list[tuple[Path, list[str], int]] = [(stub, [], 0)]
    while todo:
        wheel, extras, depth = todo.pop(0)
        if depth >= _STUB_REQUIREMENT_DEPTH:
            continue
        requires = [str(r) for r in read_metadata(wheel).requires_dist or []]
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if not _applies(req, extras, (major, minor, micro)):
                continue
            name = canonicalize_name(req.name)
            if name in present:
                continue
            present.add(name)
            fetched = _requirement_wheel(req, source)
            if fetched is not None:
                out.append((fetched[0], f"{name} {fetched[1]} {fetched[0].name} {fetched[2]}"))
                todo.append((fetched[0], sorted(req.extras), depth + 1))
    return out


def _applies(req: Requirement, extras: list[str], python: tuple[int, int, int]) -> bool:
    """Whether *req* applies to the target interpreter with *extras* enabled (PEP 508 markers)."""
    if req.marker is None:
        return True
    env = {k: str(v) for k, v in default_environment().items()}
    env.update(python_version=f"{python[0]}.{python[1]}", python_full_version=".".join(map(str, python)))
    return any(req.marker.evaluate({**env, "extra": e}) for e in (extras or [""]))


def _requirement_wheel(req: Requirement, source: StubSource) -> tuple[Path, str, str] | None:
    """(wheel, version, sha256) of the newest release of *req* (a `Requirement`) the index serves for the target,
    fetched and hash-verified into the cache like any wheel; None when there is none or the index is out of reach."""
    from ..fetch.download import fetch_from_index
    from ..fetch.index import fetch_project
    for url in source.indexes:
        try:
            listing = fetch_project(url, req.name)
        except FetchError:  # Offline is a FetchError too: leave the requirement out
            continue
        versions = set()
        for f in listing:
            try:
                wname, wversion, _, _ = parse_wheel_filename(f.filename)
            except InvalidWheelFilename:
                continue
            if wname == canonicalize_name(req.name) and not f.yanked and req.specifier.contains(wversion):
                versions.add(wversion)
        for v in sorted(versions, reverse=True)[:3]:  # the newest with a wheel for the target
            try:
                fetched = fetch_from_index(req.name, str(v), [url], source.accepted, source.python_version,
                                           source.cache)
            except (HashMismatch, AttestationFailed):
                raise  # bytes that are not what the index published are never passed over
            except FetchError:
                continue
            return Path(fetched.path), fetched.version, fetched.sha256
    return None


def _typeshed_name(top: str) -> str | None:
    from mypy import stubinfo
    return stubinfo.stub_distribution_name(top)


def _at_least(version: str, floor: str) -> bool:
    try:
        return Version(version) >= Version(re.split(r"[\s;]", floor.strip())[0])
    except InvalidVersion:
        return False


def _stubgen_tier(wheel: Path, members: dict[str, zipfile.ZipInfo], tops: list[str], dest: Path,
                  inspect: bool, aggressive: bool = False, dependencies: tuple[Path, ...] = ()) -> StubSet:
    from .stubgen import StubgenResult, run_stubgen
    with tempfile.TemporaryDirectory(prefix="mochi-src-") as tmp:
        src = Path(tmp) / "src"
        _copy(wheel, {m: m for m in members if PurePosixPath(m).parts[0] in tops}, src)
        out = Path(tmp) / "out"
        result = run_stubgen(src, tops, out, inspect, docstrings=aggressive)
        missing = [t for t in tops if t not in result.written]
        if missing and not result.network and not result.timed_out and not result.unsandboxed:
            # the import failed (its dependencies are not in the sandbox): read the sources instead
            parsed = run_stubgen(src, missing, out, inspect, docstrings=aggressive, parse_only=True)
            result = StubgenResult(written=[*result.written, *parsed.written], network=parsed.network,
                                   timed_out=parsed.timed_out, output=result.output + parsed.output,
                                   unsandboxed=parsed.unsandboxed)
        if aggressive:  # R1: docstring types and standard-library re-exports
            from .heuristics import apply
            apply(out, src)
        problems: dict[str, list[str]] = {}
        for top in tops:
            if result.network:
                problems[top] = ["ImportTimeNetwork", "the package reached for the network while it was imported "
                                 "for stub generation"]
            elif result.timed_out:
                problems[top] = ["NoStubs", "stub generation timed out (an import that does not finish?)"]
            elif top not in result.written:
                problems[top] = ["NoStubs", "stubgen produced no stub for the module"]
        good = [t for t in tops if t not in problems]

        def fill(target: Path) -> None:
            for top in good:
                for path in out.rglob("*.pyi"):
                    rel = path.relative_to(out).as_posix()
                    if rel == f"{top}.pyi" or rel.startswith(f"{top}/"):
                        (target / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, target / rel)

        return _publish(dest, fill, tops, "stubgen" if good else "none", problems=problems,
                        dependencies=dependencies, unsandboxed=result.unsandboxed)
