"""Parse `mochi.toml`: `[python-dependencies]` and `[python]` into frozen records (`[package]` and
`[python.publish]` through :mod:`.package`).

Every error names the file, line and column of the offending value and what to write instead.
Version constraints are PEP 440; the caret and tilde shorthands are translated the npm/Cargo way
(`^1.2` -> `>=1.2,<2`, `^0.27` -> `>=0.27,<0.28`, `~1.2` -> `>=1.2,<1.3`).

Over 500 lines on purpose: one validator per `[python]` key, and the position finder they all report
through, read best side by side; splitting them would scatter the table of keys.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from ..errors import Location, ManifestError
from .package import PackageInfo, PublishSettings, parse_package, parse_publish
from .publishers import PUBLISHER_FORMS, parse_publisher

__all__ = [
    "COMPILER_CACHES",
    "DEFAULT_REQUIRES_PYTHON",
    "Dependency",
    "Index",
    "Manifest",
    "PythonSettings",
    "load_manifest",
    "parse_manifest",
    "read_user_text",
    "translate_constraint",
    "unsupported_settings",
]

DEFAULT_REQUIRES_PYTHON = ">=3.12"
_PRIORITIES = ("primary", "supplemental", "explicit")
_PYTHON_KEYS = ("requires-python", "interpreter", "indexes", "strict-return-types", "async-mode", "runtime",
                "stubgen", "free-threaded", "require-attestations", "trusted-publishers", "monomorphise", "any",
                "capabilities", "publish", "compiler-cache")
COMPILER_CACHES = ("auto", "sccache", "ccache", "none")
_CAPABILITIES = ("net", "fs", "proc", "subprocess", "ctypes", "cextension", "monkey-patch", "startup-hook",
                 "bytecode")  # tasks.audit.capabilities.CAPABILITIES, in its order
_STUBGEN_KEYS = ("fallback", "aggressive", "inspect-mode")
_DEP_KEYS = ("version", "extras", "markers", "index", "path", "git", "branch", "rev", "tag", "editable")
_TOP_KEYS = ("python-dependencies", "python", "package", "dependencies", "capabilities")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """One `[python-dependencies]` entry."""

    name: str
    """Canonical (PEP 503) distribution name."""
    specifier: str
    """PEP 440 specifier set, shorthands translated; empty means any version."""
    extras: tuple[str, ...]
    markers: str = ""
    """PEP 508 environment marker; the dependency is left out where it is false."""
    index: str | None = None
    """URL of the only index this dependency may come from."""
    path: str | None = None
    """Local source directory or wheel, absolute."""
    git: str | None = None
    git_ref: tuple[str, str] | None = None
    """(`branch` | `rev` | `tag`, value) for a git source."""
    where: Location

    @property
    def source_kind(self) -> str:
        return "path" if self.path else "git" if self.git else "index"

    @property
    def requirement(self) -> str:
        """The PEP 508 requirement string handed to the resolver (sources go beside it)."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        marker = f"; {self.markers}" if self.markers else ""
        return f"{self.name}{extras}{self.specifier}{marker}"

    @property
    def fingerprint(self) -> str:
        """Everything the manifest says about this dependency: a change releases its sticky pin."""
        ref = f"{self.git_ref[0]}={self.git_ref[1]}" if self.git_ref else ""
        return " ".join(x for x in (self.requirement, self.index or "", self.path or "", self.git or "", ref) if x)


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    url: str
    priority: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonSettings:
    requires_python: str = DEFAULT_REQUIRES_PYTHON
    interpreter: str | None = None
    indexes: tuple[Index, ...] = ()
    strict_return_types: bool = True
    async_mode: str = "per-call"
    stubgen_fallback: str = "allow"
    stubgen_aggressive: bool = False
    stubgen_inspect: bool = True
    free_threaded: bool = False
    require_attestations: tuple[str, ...] = ()
    """Distributions that must carry verified PEP 740 attestations (`*` for all)."""
    trusted_publishers: tuple[tuple[str, str], ...] = ()
    """(distribution, publisher) pairs of `[python].trusted-publishers`, the publisher in canonical form."""
    monomorphise: tuple[tuple[str, str], ...] = ()
    any_mode: str = "handle"
    capabilities: tuple[str, ...] | None = None
    """The capabilities `[python.capabilities]` allows; None when the table is absent (audit only)."""
    compiler_cache: str = "auto"
    """The C compiler launcher for the wrapper build: `auto`, `sccache`, `ccache` or `none`."""
    where: tuple[tuple[str, Location], ...] = ()
    """Where each key was written, for messages about it later."""
    publish: PublishSettings = field(default_factory=PublishSettings)

    def location(self, key: str, default: Location) -> Location:
        return dict(self.where).get(key, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    path: Path
    dependencies: tuple[Dependency, ...]
    python: PythonSettings
    package: PackageInfo = field(default_factory=PackageInfo)

    def dependency(self, name: str) -> Dependency | None:
        canon = canonicalize_name(name)
        return next((d for d in self.dependencies if d.name == canon), None)


def translate_constraint(text: str) -> str:
    """Turn a user constraint into a PEP 440 specifier set string.

    :raises ValueError: when the result is not valid PEP 440.
    """
    text = text.strip()
    if text in ("", "*"):
        return ""
    if text[0] in "^~" and not text.startswith("~="):
        op, ver = text[0], text[1:].strip()
        if not _VERSION_RE.match(ver):
            raise ValueError(f"{op!r} needs a plain release number after it, got {ver!r}")
        parts = [int(p) for p in ver.split(".")]
        if op == "^":
            # Cargo/npm: the first non-zero component is the one that may not change.
            idx = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        else:
            idx = min(1, len(parts) - 1) if len(parts) > 1 else 0
        upper = [*parts[:idx], parts[idx] + 1]
        return f">={ver},<{'.'.join(map(str, upper))}"
    if _VERSION_RE.match(text):
        text = f"=={text}"
    SpecifierSet(text)  # validates; raises InvalidSpecifier (a ValueError)
    return ",".join(part.strip() for part in text.split(","))  # the user's order, not packaging's sorted one


def read_user_text(path: Path, error: type[ManifestError] = ManifestError) -> str:
    """A user's text file (`mochi.toml`, a `.mochi` program) as UTF-8; anything else is *error* at its place.

    A directory, an unreadable file or bytes that are not UTF-8 (a binary file) are messages, not tracebacks.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(Location(path, 1, 1), f"no {path.name} here", "run the command in a Mochi project directory"
                    ) from None
    except IsADirectoryError:
        raise error(Location(path, 1, 1), "is a directory, not a file", f"remove or rename it; {path.name} must "
                    "be a UTF-8 text file") from None
    except OSError as exc:
        raise error(Location(path, 1, 1), f"cannot be read: {exc.strerror or exc}",
                    "check the file's permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(Location(path, line, col), f"not UTF-8 text (byte 0x{data[exc.start]:02x}; a binary file?)",
                    "save the file as UTF-8") from None


def load_manifest(path: Path) -> Manifest:
    """Read and parse `mochi.toml` at *path*."""
    return parse_manifest(read_user_text(path), path)


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse manifest *text* (read from *path*, used in messages and to anchor relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(m[1]), int(m[2])) if m else (1, 1)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ManifestError(Location(path, line, col), f"invalid TOML: {msg}",
                            "fix the TOML syntax at that place") from None
    loc = _Locator(text, path)
    for key in data:
        if key not in _TOP_KEYS:
            raise ManifestError(loc.key(None, key), f"unknown top-level table {key!r}", _suggest(key, _TOP_KEYS))
    python = _parse_python(data.get("python", {}), loc)
    package = parse_package(data.get("package", {}), loc)
    deps_table = data.get("python-dependencies", {})
    if not isinstance(deps_table, Mapping):
        raise ManifestError(loc.key(None, "python-dependencies"), "[python-dependencies] must be a table")
    base = path.parent.resolve()
    deps = tuple(sorted((_parse_dep(name, value, loc, base) for name, value in deps_table.items()),
                        key=lambda d: d.name))
    seen: dict[str, str] = {}
    for raw in deps_table:
        canon = canonicalize_name(raw)
        if canon in seen:
            raise ManifestError(loc.key("python-dependencies", raw),
                                f"{raw!r} names the same distribution as {seen[canon]!r}",
                                "keep one entry per distribution")
        seen[canon] = raw
    return Manifest(path=path, dependencies=deps, python=python, package=package)


def _str(value: object, where: Location, what: str, hint: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(where, f"{what} must be a non-empty string", hint)
    return value.strip()


def _parse_dep(raw_name: str, value: object, loc: _Locator, base: Path) -> Dependency:
    table = "python-dependencies"
    where = loc.key(table, raw_name)
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", raw_name):
        raise ManifestError(where, f"{raw_name!r} is not a valid distribution name",
                            "use the name the package index lists (letters, digits, '.', '-', '_')")
    if isinstance(value, str):
        value = {"version": value}
        at = {"version": loc.value(table, raw_name)}
    elif isinstance(value, Mapping):
        at = {key: loc.inner(table, raw_name, key) for key in value}
        for key in value:
            if key not in _DEP_KEYS:
                raise ManifestError(loc.inner(table, raw_name, key, at_key=True), f"unknown dependency key {key!r}",
                                    _suggest(key, _DEP_KEYS))
    else:
        raise ManifestError(where, f"the value for {raw_name!r} must be a version string or a table",
                            f'write {raw_name} = ">=1.0" or {raw_name} = {{ version = ">=1.0" }}')
    constraint = value.get("version", "")
    if not isinstance(constraint, str):
        raise ManifestError(at["version"], "'version' must be a string such as \">=1.0\"")
    try:
        spec = translate_constraint(constraint)
    except (ValueError, InvalidSpecifier) as exc:
        raise ManifestError(at["version"], f"invalid version constraint {constraint!r} for {raw_name!r}: {exc}",
                            'use PEP 440 (">=1.2,<2", "~=1.4", "==1.2.3") or "^1.2" / "~1.2"') from None
    ex: object = value.get("extras", [])
    if not isinstance(ex, list) or not all(isinstance(e, str) and e for e in ex):
        raise ManifestError(at.get("extras", where), "'extras' must be a list of strings", 'write extras = ["name"]')
    markers = ""
    if "markers" in value:
        markers = _str(value["markers"], at["markers"], "'markers'")
        try:
            Marker(markers)
        except InvalidMarker as exc:
            raise ManifestError(at["markers"], f"invalid PEP 508 marker {markers!r}: {exc}",
                                "write a marker such as \"sys_platform == 'linux'\"") from None
    index, path, git, git_ref = _parse_source(raw_name, value, at, spec, base)
    return Dependency(name=canonicalize_name(raw_name), specifier=spec,
                      extras=tuple(sorted({canonicalize_name(e) for e in ex})), markers=markers, index=index,
                      path=path, git=git, git_ref=git_ref, where=where)


def _parse_source(raw_name: str, value: Mapping[str, Any], at: dict[str, Location], spec: str,
                  base: Path) -> tuple[str | None, str | None, str | None, tuple[str, str] | None]:
    """(index, path, git, git_ref) of a table-form dependency; at most one source kind."""
    sources = [k for k in ("index", "path", "git") if k in value]
    if len(sources) > 1:
        raise ManifestError(at[sources[1]], f"{raw_name!r} names both {sources[0]!r} and {sources[1]!r}",
                            "a dependency comes from one source: an index, a path or a git repository")
    refs = [k for k in ("branch", "rev", "tag") if k in value]
    if refs and "git" not in value:
        raise ManifestError(at[refs[0]], f"{refs[0]!r} needs a 'git' source", 'add git = "<repository URL>"')
    if len(refs) > 1:
        raise ManifestError(at[refs[1]], f"{raw_name!r} names both {refs[0]!r} and {refs[1]!r}", "keep one of them")
    if spec and ("path" in value or "git" in value):
        raise ManifestError(at["version"], f"a version constraint has no effect on a {sources[0]} source",
                            "remove 'version'; the source decides the version")
    if value.get("editable", False) is not False:
        raise ManifestError(at["editable"], "editable installs are not supported",
                            "remove 'editable': the bridge wraps a wheel built from the path")
    index: str | None = None
    path: str | None = None
    git: str | None = None
    git_ref: tuple[str, str] | None = None
    if "index" in value:
        index = _index_url(_str(value["index"], at["index"], "'index'"), at["index"])
    if "path" in value:
        rel = _str(value["path"], at["path"], "'path'")
        full = (base / rel).resolve()
        if not full.exists():
            raise ManifestError(at["path"], f"path {rel!r} does not exist (resolved to {full})",
                                "point it at a project directory or a wheel, relative to mochi.toml")
        path = str(full)
    if "git" in value:
        git = _str(value["git"], at["git"], "'git'")
        if not re.match(r"^(https?://|ssh://|git@|file://)", git):
            raise ManifestError(at["git"], f"git source {git!r} is not a URL git can clone",
                                "write an https://, ssh:// or file:// URL")
        if refs:
            git_ref = (refs[0], _str(value[refs[0]], at[refs[0]], f"'{refs[0]}'"))
    return index, path, git, git_ref


def _index_url(url: str, where: Location) -> str:
    if not re.match(r"^(https?|file)://", url):
        raise ManifestError(where, f"index URL {url!r} is not an http(s) or file URL",
                            "write the simple-index URL, such as https://host/simple/")
    return url.rstrip("/") + "/"


def _parse_python(table: object, loc: _Locator) -> PythonSettings:
    if not isinstance(table, Mapping):
        raise ManifestError(loc.key(None, "python"), "[python] must be a table")
    for key in table:
        if key not in _PYTHON_KEYS:
            raise ManifestError(loc.key("python", key), f"unknown [python] key {key!r}", _suggest(key, _PYTHON_KEYS))
    where = {key: loc.value("python", key) for key in table}
    req = table.get("requires-python", DEFAULT_REQUIRES_PYTHON)
    try:
        if not isinstance(req, str):
            raise InvalidSpecifier("not a string")
        SpecifierSet(req)
    except InvalidSpecifier:
        raise ManifestError(where["requires-python"], f"invalid requires-python {req!r}",
                            'write a PEP 440 specifier such as ">=3.12"') from None
    below = next((v for v in ("2.7.99", *(f"3.{m}.99" for m in range(11))) if SpecifierSet(req).contains(v)), None)
    if below is not None:  # the wrappers use the 3.11 limited API: a lower floor cannot compile
        raise ManifestError(where["requires-python"], f"requires-python {req!r} allows Python "
                            f"{below.rsplit('.', 1)[0]}, below 3.11, the oldest Python the wrappers support",
                            'write requires-python = ">=3.11" (or higher)')
    interp = table.get("interpreter")
    if interp is not None:
        interp = _str(interp, where["interpreter"], "'interpreter'", "write a path or a command name")
    bools = {}
    for key in ("strict-return-types", "free-threaded"):
        bools[key] = table.get(key, key == "strict-return-types")
        if not isinstance(bools[key], bool):
            raise ManifestError(where[key], f"{key!r} must be true or false")
    async_mode = _async_mode(table, where)
    fallback, aggressive, inspect = _stubgen(table, loc, where)
    attest = table.get("require-attestations", False)
    if isinstance(attest, bool):
        attestations: tuple[str, ...] = ("*",) if attest else ()
    elif isinstance(attest, list) and all(isinstance(a, str) and a for a in attest):
        attestations = tuple(sorted(canonicalize_name(a) for a in attest))
    else:
        raise ManifestError(where["require-attestations"], "'require-attestations' must be true, false or a list "
                            "of distribution names")
    any_mode = table.get("any", "handle")
    if any_mode not in ("refuse", "handle"):
        raise ManifestError(where["any"], f"'any' must be \"refuse\" or \"handle\", not {any_mode!r}")
    compiler_cache = table.get("compiler-cache", "auto")
    if compiler_cache not in COMPILER_CACHES:
        raise ManifestError(where["compiler-cache"], f"'compiler-cache' must be one of "
                            f"{', '.join(repr(c) for c in COMPILER_CACHES)}, not {compiler_cache!r}",
                            'write compiler-cache = "auto" (sccache when SCCACHE_* configures a remote cache)')
    return PythonSettings(requires_python=req, interpreter=interp, indexes=_parse_indexes(table, where),
                          strict_return_types=bools["strict-return-types"], async_mode=async_mode,
                          stubgen_fallback=fallback, stubgen_aggressive=aggressive, stubgen_inspect=inspect,
                          free_threaded=bools["free-threaded"], require_attestations=attestations,
                          trusted_publishers=_trusted_publishers(table, loc),
                          monomorphise=_monomorphise(table, where), any_mode=str(any_mode),
                          capabilities=_capabilities(table, loc), compiler_cache=str(compiler_cache),
                          where=tuple(sorted(where.items())), publish=parse_publish(table, req, loc))


def _trusted_publishers(table: Mapping[str, object], loc: _Locator) -> tuple[tuple[str, str], ...]:
    raw = table.get("trusted-publishers", {})
    forms = " | ".join(PUBLISHER_FORMS)
    if not isinstance(raw, Mapping):
        raise ManifestError(loc.value("python", "trusted-publishers"), "'trusted-publishers' must be a table of "
                            "distribution = publisher", f'write trusted-publishers = {{ name = {PUBLISHER_FORMS[0]} }}')
    out: dict[str, str] = {}
    for name, text in raw.items():
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
            raise ManifestError(loc.inner("python", "trusted-publishers", name, at_key=True),
                                f"{name!r} is not a valid distribution name", "use the name the package index lists")
        where = loc.inner("python", "trusted-publishers", name)
        if not isinstance(text, str):
            raise ManifestError(where, f"the trusted publisher of {name!r} must be a string", f"write one of {forms}")
        try:
            spec = parse_publisher(text)
        except ValueError as exc:
            raise ManifestError(where, f"invalid trusted publisher for {name!r}: {exc}", f"write one of {forms}"
                                ) from None
        if canonicalize_name(name) in out:
            raise ManifestError(where, f"{name!r} names a distribution listed twice in 'trusted-publishers'",
                                "keep one entry per distribution")
        out[canonicalize_name(name)] = str(spec)
    return tuple(sorted(out.items()))


def _async_mode(table: Mapping[str, object], where: dict[str, Location]) -> str:
    modes = ("per-call", "persistent")
    mode = table.get("async-mode")
    if "runtime" in table:
        runtime = table["runtime"]
        if not isinstance(runtime, Mapping) or set(runtime) - {"event-loop"}:
            raise ManifestError(where["runtime"], "'runtime' takes one key, 'event-loop'",
                                'write runtime = { event-loop = "per-call" }')
        alias = runtime.get("event-loop")
        if mode is not None and alias is not None and alias != mode:
            raise ManifestError(where["runtime"], f"runtime.event-loop {alias!r} contradicts async-mode {mode!r}",
                                "keep one of them (they are the same setting)")
        mode = mode if mode is not None else alias
        where.setdefault("async-mode", where["runtime"])
    mode = "per-call" if mode is None else mode
    if mode not in modes:
        raise ManifestError(where["async-mode"], f"async mode {mode!r} is not one of {', '.join(modes)}",
                            'write async-mode = "per-call" (the default) or "persistent"')
    return str(mode)


def _stubgen(table: Mapping[str, object], loc: _Locator, where: dict[str, Location]) -> tuple[str, bool, bool]:
    raw = table.get("stubgen", {})
    if not isinstance(raw, Mapping):
        raise ManifestError(where["stubgen"], "'stubgen' must be a table",
                            'write stubgen = { fallback = "allow", aggressive = false }')
    for key in raw:
        if key not in _STUBGEN_KEYS:
            raise ManifestError(loc.inner("python", "stubgen", key, at_key=True), f"unknown stubgen key {key!r}",
                                _suggest(key, _STUBGEN_KEYS))
    fallback = raw.get("fallback", "allow")
    if isinstance(fallback, bool):  # the notes' spelling: true/false
        fallback = "allow" if fallback else "deny"
    if fallback not in ("allow", "deny"):
        raise ManifestError(loc.inner("python", "stubgen", "fallback"), f"stubgen.fallback {fallback!r} is not "
                            "\"allow\" or \"deny\"", 'write fallback = "deny" to refuse untyped packages')
    flags = []
    for key, default in (("aggressive", False), ("inspect-mode", True)):
        v = raw.get(key, default)
        if not isinstance(v, bool):
            raise ManifestError(loc.inner("python", "stubgen", key), f"stubgen.{key} must be true or false")
        flags.append(v)
    return str(fallback), flags[0], flags[1]


def _capabilities(table: Mapping[str, object], loc: _Locator) -> tuple[str, ...] | None:
    if "capabilities" not in table:
        return None
    raw = table["capabilities"]
    if not isinstance(raw, Mapping):
        raise ManifestError(loc.value("python", "capabilities"), "[python.capabilities] must be a table of booleans",
                            "write [python.capabilities] with lines such as net = true")
    allowed = []
    for key, value in raw.items():
        # [python.capabilities] lines or an inline `capabilities = { ... }` under [python]: inner finds both
        if key not in _CAPABILITIES:
            raise ManifestError(loc.inner("python", "capabilities", key, at_key=True), f"unknown capability {key!r}",
                                _suggest(key, _CAPABILITIES))
        if not isinstance(value, bool):
            raise ManifestError(loc.inner("python", "capabilities", key), f"capability {key!r} must be true or false",
                                f"write {key} = true (allowed) or {key} = false")
        if value:
            allowed.append(key)
    return tuple(sorted(allowed, key=_CAPABILITIES.index))


def _monomorphise(table: Mapping[str, object], where: dict[str, Location]) -> tuple[tuple[str, str], ...]:
    raw = table.get("monomorphise", [])
    hint = 'write monomorphise = [{ item = "numpy.array", T = "float64" }]'
    if not isinstance(raw, list):
        raise ManifestError(where["monomorphise"], "'monomorphise' must be a list of tables", hint)
    out = []
    for i, entry in enumerate(raw):
        if (not isinstance(entry, Mapping) or set(entry) != {"item", "T"}
                or not all(isinstance(v, str) and v for v in entry.values())):
            raise ManifestError(where["monomorphise"], f"monomorphise[{i}] needs exactly 'item' and 'T' strings", hint)
        out.append((str(entry["item"]), str(entry["T"])))
    return tuple(out)


def _parse_indexes(table: Mapping[str, object], where: dict[str, Location]) -> tuple[Index, ...]:
    raw = table.get("indexes", [])
    at = where.get("indexes", Location(Path("mochi.toml"), 1, 1))
    if not isinstance(raw, list):
        raise ManifestError(at, "'indexes' must be a list of tables",
                            'write indexes = [{ url = "...", priority = "primary" }]')
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
            raise ManifestError(at, f"indexes[{i}] needs a 'url' string")
        url = str(item["url"])
        if not re.match(r"^(https?|file)://", url):
            raise ManifestError(at, f"indexes[{i}].url {url!r} is not an http(s) or file URL",
                                "write the simple-index URL, such as https://host/simple/")
        prio = item.get("priority", "primary")
        if prio not in _PRIORITIES:
            raise ManifestError(at, f"indexes[{i}].priority {prio!r} is not one of {', '.join(_PRIORITIES)}",
                                'write priority = "primary" (the default), "supplemental" or "explicit"')
        extra = set(item) - {"url", "priority"}
        if extra:
            raise ManifestError(at, f"indexes[{i}] has unknown key(s) {', '.join(sorted(extra))}",
                                "an index takes 'url' and 'priority'")
        out.append(Index(url=url.rstrip("/") + "/", priority=str(prio), name=f"index-{i}"))
    if out and not any(i.priority == "primary" for i in out):
        raise ManifestError(at, "'indexes' lists no primary index",
                            'mark the index most packages come from with priority = "primary"')
    return tuple(out)


# (key, what it asks for) of valid settings whose behaviour is not built yet: none at the moment.
_NOT_BUILT: tuple[tuple[str, str], ...] = ()


def unsupported_settings(manifest: Manifest) -> None:
    """Refuse valid settings whose behaviour this version does not have yet, rather than ignore them.

    :raises ManifestError: at the setting, naming what to do instead.
    """
    py = manifest.python
    written = dict(py.where)
    for key, what in _NOT_BUILT:
        if key in written:
            raise ManifestError(written[key], f"{what} ([python].{key}) are not supported by this version yet",
                                "remove the setting to use the default")


def _suggest(key: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(choices)}"


class _Locator:
    """Finds the line and column of a key or value in the manifest text (tomllib keeps no positions).

    A place it cannot find (a dotted key, an unusual layout) falls back to the header of the table holding it,
    else to 1:1: never to a line 0.
    """

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def key(self, table: str | None, key: str) -> Location:
        line, col, _ = self._find(table, key)
        return Location(self.path, line, col) if line else self._fallback(table)

    def value(self, table: str | None, key: str) -> Location:
        line, col, value_col = self._find(table, key)
        return Location(self.path, line, value_col or col) if line else self._fallback(table)

    def inner(self, table: str, key: str, inner: str, *, at_key: bool = False) -> Location:
        """An inline-table member (or a line of the `[table.key]` sub-table): its value, or with *at_key* its key."""
        line, col, _ = self._find(table, key)
        if line:
            m = re.search(rf"([{{,\s])(\"?{re.escape(inner)}\"?\s*=\s*)", self.lines[line - 1][col:])
            if m:
                return Location(self.path, line, col + (m.start(2) if at_key else m.end()) + 1)
        sub_line, sub_col, sub_val = self._find(f"{table}.{key}", inner)
        if sub_line:
            return Location(self.path, sub_line, sub_col if at_key else sub_val or sub_col)
        return Location(self.path, line, col) if line else self._fallback(f"{table}.{key}")

    def _fallback(self, table: str | None) -> Location:
        """The header line of *table* or of the nearest enclosing table written, else 1:1."""
        while table:
            for n, raw in enumerate(self.lines, 1):
                header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", raw)
                if header and header[1].replace('"', "").replace(" ", "") == table:
                    return Location(self.path, n, raw.index("[") + 1)
            table = table.rpartition(".")[0]
        return Location(self.path, 1, 1)

    def _find(self, table: str | None, key: str) -> tuple[int, int, int]:
        """(line, column, value column) of *key* in *table*, or zeros when it is not written that way."""
        current: str | None = None
        key_re = re.compile(rf"^(\s*)(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=\s*")
        for n, raw in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", raw)
            if header:
                current = header[1].replace('"', "").replace(" ", "")
                if table is None and current.split(".")[0] == key:
                    return n, raw.index("[") + 1, 0
                continue
            if current == table:
                m = key_re.match(raw)
                if m:
                    return n, len(m[1]) + 1, m.end() + 1
        return 0, 0, 0
