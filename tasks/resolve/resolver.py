"""Resolve the manifest to exact pins: uv in project mode first, pip's resolver as the fallback (R9).

uv runs against a private `pyproject.toml` the bridge writes in a scratch directory (users never
write one): the manifest's requirements, `[tool.uv.sources]` for path, git and per-dependency
indexes, `[[tool.uv.index]]` in priority order, `environments` narrowed to the target's platform
and `requires-python` to its minor. uv is called with `--no-python-downloads`. `--no-config` would
also drop that private `[tool.uv]` table, so the same isolation is had another way: no `UV_*`
variables and empty user and system configuration directories (:func:`isolated_env`).
Pins are sticky: every package already in `mochi.lock` is constrained to its locked version unless
the manifest entry that brought it in changed; when those constraints cannot all hold, resolution
is retried without them. A dependency cycle is refused, naming the cycle.

Nothing is built while resolving (no build backend of an index package ever runs at lock time): uv
resolves with `no-build` and pip with `--only-binary :all:`, so a dependency that ships no usable
wheel fails, named. Path and git sources must declare their metadata statically (`[project]` with
`version` and `dependencies` not dynamic); their wheels are built by the fetch stage, from the
source the manifest names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import ResolveError, SubprocessFailed
from ..run import run
from .manifest import Dependency, Index, Manifest
from .urls import public_url, redact_text

__all__ = [
    "Pin",
    "Unsatisfiable",
    "find_cycle",
    "find_uv",
    "isolated_env",
    "pip_command",
    "render_uv_project",
    "resolve",
    "resolve_with_pip",
    "resolve_with_uv",
]

ROOT_NAME = "mochi-pybridge-resolution-root"


class Unsatisfiable(ResolveError):
    """uv resolved and found that no set of versions satisfies the requirements (not uv failing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    name: str
    version: str
    direct: bool
    source: str
    """`index`, `path` or `git`."""
    location: str
    """The index URL (empty when the index is not known), the absolute path, or the git URL."""
    commit: str = ""
    """For git sources: the commit the reference resolved to."""
    dependencies: tuple[str, ...] = ()
    """Names of the pinned packages this one requires (for cycle detection)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_uv() -> str:
    """The uv binary: `$MOCHI_UV` if set (tests point it nowhere to force the fallback), else uv's package."""
    override = os.environ.get("MOCHI_UV")
    if override is not None:
        if not Path(override).is_file():
            raise ResolveError(f"uv is not available at MOCHI_UV={override!r}")
        return override
    try:
        from uv import find_uv_bin
        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ResolveError("uv is not installed", "install mochi-pybridge with its dependencies") from None


def _indexes(manifest: Manifest, default_index: str) -> list[Index]:
    declared = list(manifest.python.indexes) or [Index(url=default_index, priority="primary", name="default")]
    known = {i.url for i in declared}
    for dep in manifest.dependencies:
        if dep.index and dep.index not in known:
            declared.append(Index(url=dep.index, priority="explicit", name=f"dep-{dep.name}"))
            known.add(dep.index)
    return declared


def render_uv_project(manifest: Manifest, python_version: tuple[int, int, int], env: Mapping[str, str],
                      default_index: str, sticky: Mapping[str, str]) -> str:
    """The private pyproject.toml uv resolves (pure)."""
    doc = tomlkit.document()
    project = tomlkit.table()
    project.add("name", ROOT_NAME)
    project.add("version", "0")
    project.add("requires-python", f"=={python_version[0]}.{python_version[1]}.*")
    project.add("dependencies", sorted(d.requirement for d in manifest.dependencies))
    doc.add("project", project)
    uv = tomlkit.table()
    uv.add("no-build", True)  # never run an sdist's build backend to learn its metadata
    uv.add("environments", [f"sys_platform == '{env['sys_platform']}' and "
                            f"platform_machine == '{env['platform_machine']}'"])
    if sticky:
        uv.add("constraint-dependencies", [f"{n}=={v}" for n, v in sorted(sticky.items())])
    indexes = _indexes(manifest, default_index)
    ordered = ([i for i in indexes if i.priority == "primary"] + [i for i in indexes if i.priority == "supplemental"]
               + [i for i in indexes if i.priority == "explicit"])
    searchable = [i for i in ordered if i.priority != "explicit"]
    aot = tomlkit.aot()
    for idx in ordered:
        t = tomlkit.table()
        t.add("name", idx.name)
        t.add("url", public_url(idx.url))  # credentials go to uv through the environment (:func:`uv_credentials`)
        if idx.priority == "explicit":
            t.add("explicit", True)
        elif idx is searchable[-1]:
            t.add("default", True)  # uv searches the default index last: the lowest-priority searchable one
        aot.append(t)
    uv.add("index", aot)
    sources = tomlkit.table()
    by_url = {i.url: i.name for i in indexes}
    for dep in manifest.dependencies:
        src = _source(dep, by_url)
        if src is not None:
            sources.add(dep.name, src)
    if sources:
        uv.add("sources", sources)
    tool = tomlkit.table(is_super_table=True)
    tool.add("uv", uv)
    doc.add("tool", tool)
    return tomlkit.dumps(doc)


def _source(dep: Dependency, by_url: Mapping[str, str]) -> tomlkit.items.InlineTable | None:
    src = tomlkit.inline_table()
    if dep.index:
        src.add("index", by_url[dep.index])
    elif dep.path:
        src.add("path", dep.path)
    elif dep.git:
        src.add("git", dep.git)
        if dep.git_ref:
            src.add(dep.git_ref[0], dep.git_ref[1])
    else:
        return None
    return src


def resolve(manifest: Manifest, interpreter: str, python_version: tuple[int, int, int], env: Mapping[str, str],
            default_index: str, cache: Path, work: Path, sticky: Mapping[str, str], *, offline: bool = False,
            on_fallback: Callable[[ResolveError], None] | None = None) -> tuple[list[Pin], str]:
    """Pins and the name of the resolver that made them: uv, or pip when uv is missing or fails.

    *on_fallback* hears uv's error before pip is tried, so the reason is never lost. With *offline*, uv
    resolves from its cache alone and pip (which needs the index) is not tried.
    """
    try:
        pins = _sticky_attempts(lambda s: resolve_with_uv(manifest, interpreter, python_version, env, default_index,
                                                          cache, work, s, offline=offline), sticky)
        used = "uv"
    except Unsatisfiable:
        raise
    except ResolveError as uv_error:
        if offline:
            raise ResolveError(f"{uv_error.message}\n(offline: uv had only its cache; pip's resolver needs the "
                               "index, so it was not tried)", "run once with the network, or restore "
                               "MOCHI_CACHE_DIR from a machine that locked this project") from None
        if on_fallback is not None:
            on_fallback(uv_error)
        try:
            pins = _sticky_attempts(lambda s: resolve_with_pip(manifest, interpreter, python_version,
                                                               default_index, work, s), sticky)
        except ResolveError as pip_error:
            if on_fallback is not None:  # uv's reason was shown already
                raise ResolveError(f"{pip_error.message}\n(uv failed first, as shown above)", uv_error.hint) from None
            raise ResolveError(f"{uv_error.message}\n(the pip fallback failed too: {pip_error.message})",
                               uv_error.hint) from None
        used = "pip"
    cycle = find_cycle({p.name: p.dependencies for p in pins})
    if cycle:
        raise ResolveError(f"dependency cycle: {' -> '.join(cycle)}",
                           "a Mochi project cannot lock packages that require each other; drop one of them")
    return pins, used


def _sticky_attempts(attempt: Callable[[Mapping[str, str]], list[Pin]], sticky: Mapping[str, str]) -> list[Pin]:
    try:
        return attempt(sticky)
    except ResolveError:
        if not sticky:
            raise
    # The locked pins cannot all hold with the changed manifest: resolve afresh.
    return attempt({})


def uv_credentials(manifest: Manifest, default_index: str) -> dict[str, str]:
    """`UV_INDEX_<NAME>_USERNAME` / `_PASSWORD` for each index whose URL carries credentials: uv gets them
    without their being written into the private pyproject.toml, and so into uv.lock or the lock."""
    out = {}
    for idx in _indexes(manifest, default_index):
        parts = urllib.parse.urlsplit(idx.url)
        if "@" not in parts.netloc:
            continue
        user, _, password = parts.netloc.rpartition("@")[0].partition(":")
        var = re.sub(r"[^A-Z0-9]", "_", idx.name.upper())
        out[f"UV_INDEX_{var}_USERNAME"] = urllib.parse.unquote(user)
        if password:
            out[f"UV_INDEX_{var}_PASSWORD"] = urllib.parse.unquote(password)
    return out


def isolated_env(scratch: Path) -> dict[str, str]:
    """The environment uv runs in: no `UV_*` settings, no user or system uv.toml."""
    empty = scratch / "no-config"
    empty.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(XDG_CONFIG_HOME=str(empty), XDG_CONFIG_DIRS=str(empty), UV_PYTHON_DOWNLOADS="never")
    return env


def resolve_with_uv(manifest: Manifest, interpreter: str, python_version: tuple[int, int, int],
                    env: Mapping[str, str], default_index: str, cache: Path, work: Path,
                    sticky: Mapping[str, str], offline: bool = False) -> list[Pin]:
    uv = find_uv()
    work.mkdir(parents=True, exist_ok=True)
    # A scratch project outside the user's tree: uv must not discover the user's pyproject or uv.toml.
    with tempfile.TemporaryDirectory(prefix="mochi-resolve-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        text = render_uv_project(manifest, python_version, env, default_index, sticky)
        (project / "pyproject.toml").write_text(text, encoding="utf-8")
        (work / "pyproject.toml").write_text(text, encoding="utf-8")  # kept for inspection
        common = ["--project", str(project), "--python", interpreter, "--no-python-downloads",
                  "--cache-dir", str(cache / "uv"), "--quiet", *(["--offline"] if offline else [])]
        uv_env = {**isolated_env(Path(tmp)), **uv_credentials(manifest, default_index)}
        try:
            run([uv, "lock", "--no-build", *common], env=uv_env, timeout=600)
            lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
            # Without a marker or an extra anywhere, every locked package is needed: no export to ask
            pylock = run([uv, "export", "--format", "pylock.toml", "--frozen", "--no-header", *common],
                         env=uv_env) if _conditional(lock) else None
        except SubprocessFailed as exc:
            # uv answered (no set of versions fits): pip would only say the same, slower. Anything else is uv
            # failing (a TLS error, a crash): that is what the pip fallback is for (R9).
            kind = Unsatisfiable if "No solution found" in exc.output else ResolveError
            raise kind(
                f"resolution failed for {', '.join(d.requirement for d in manifest.dependencies)}:\n"
                f"{_no_wheel_lead(exc.output)}{redact_text(exc.output.strip())}",
                "check the constraints in mochi.toml and that the index serves them") from None
    return _pins_from_uv(lock, tomllib.loads(pylock) if pylock is not None else None, manifest, env)


_NO_WHEEL = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==|>=|<=|>|<|!=|~=)?[^\s,]* has no usable wheels")
_NO_BUILD = re.compile(r"Building source distributions for `?([A-Za-z0-9][A-Za-z0-9._-]*)`? is disabled")


def _no_wheel_lead(output: str) -> str:
    """A first line naming the packages uv passed over for lack of a wheel, and why (pure)."""
    names = sorted({canonicalize_name(m) for m in _NO_WHEEL.findall(output)})
    built = sorted({canonicalize_name(m) for m in _NO_BUILD.findall(output)})
    lead = ""
    if names:
        lead += (f"{', '.join(names)}: no wheel fits the target (only a source distribution, or wheels for other "
                 "platforms); mochi-pybridge never builds a source distribution while locking\n")
    if built:
        lead += (f"{', '.join(built)}: its metadata would have to be built (a dynamic `version` or "
                 "`dependencies`?); nothing is built while resolving, so a path or git source must declare them "
                 "statically in [project]\n")
    return lead


def _conditional(lock: dict[str, Any]) -> bool:
    """Whether which locked packages the target needs depends on markers or extras (then `uv export`,
    which evaluates them, decides)."""
    if "resolution-markers" in lock:
        return True
    for pkg in lock.get("package", []):
        if "resolution-markers" in pkg or pkg.get("optional-dependencies"):
            return True
        edges = [*pkg.get("dependencies", []), *(d for group in pkg.get("dev-dependencies", {}).values()
                                                 for d in group)]
        if any("marker" in d or "extra" in d for d in edges):
            return True
    return False


def _pins_from_uv(lock: dict[str, Any], pylock: dict[str, Any] | None, manifest: Manifest,
                  env: Mapping[str, str]) -> list[Pin]:
    # uv's export evaluates which packages the target needs; it omits the version of source-tree packages.
    # Without one (nothing conditional), the target needs every package of the lock.
    wanted: dict[tuple[str, str], bool] = {}
    if pylock is None:
        wanted = {(canonicalize_name(p["name"]), str(p.get("version", ""))): True for p in lock.get("package", [])}
        pylock = {}
    for pkg in pylock.get("packages", []):
        marker = pkg.get("marker")
        wanted[(canonicalize_name(pkg["name"]), str(pkg.get("version", "")))] = (
            marker is None or Marker(marker).evaluate(dict(env)))
    direct = {d.name for d in manifest.dependencies}
    pins = []
    for pkg in lock.get("package", []):
        name = canonicalize_name(pkg["name"])
        source = pkg.get("source", {})
        if name == ROOT_NAME or "virtual" in source or not (
                wanted.get((name, pkg["version"])) or wanted.get((name, ""))):
            continue
        deps = [d["name"] for d in pkg.get("dependencies", [])]
        for extra_deps in pkg.get("optional-dependencies", {}).values():
            deps += [d["name"] for d in extra_deps]
        if "registry" in source:
            kind, location, commit = "index", str(source["registry"]).rstrip("/") + "/", ""
        elif "git" in source:
            url, _, commit = str(source["git"]).partition("#")
            kind, location = "git", url.split("?", 1)[0]
        else:
            kind, location, commit = "path", str(source.get("path") or source.get("directory") or ""), ""
        pins.append(Pin(name=name, version=str(pkg["version"]), direct=name in direct, source=kind,
                        location=location, commit=commit,
                        dependencies=tuple(sorted({canonicalize_name(d) for d in deps}))))
    return _unique(pins)


def _unique(pins: list[Pin]) -> list[Pin]:
    seen: dict[str, Pin] = {}
    for pin in pins:
        if pin.name in seen and seen[pin.name].version != pin.version:
            raise ResolveError(f"{pin.name} resolved to two versions ({seen[pin.name].version}, {pin.version}) for "
                               "one target", "narrow the constraints so one version fits")
        seen[pin.name] = pin
    return sorted(seen.values(), key=lambda p: p.name)


def pip_command(interpreter: str, python_version: tuple[int, int, int]) -> list[str]:
    """pip of the target interpreter when it has one, else this tool's pip told the target's version."""
    probe = subprocess.run([interpreter, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [interpreter, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python-version", f"{python_version[0]}.{python_version[1]}"]


def resolve_with_pip(manifest: Manifest, interpreter: str, python_version: tuple[int, int, int],
                     default_index: str, work: Path, sticky: Mapping[str, str]) -> list[Pin]:
    """The same pins through `pip install --dry-run --report` (slower; no per-dependency indexes)."""
    for dep in manifest.dependencies:
        if dep.index:
            raise ResolveError(f"{dep.name}: a per-dependency index needs uv; pip cannot pin a package to an index",
                               "install uv (it is a dependency of mochi-pybridge)")
    indexes = _indexes(manifest, default_index)
    primary = [i for i in indexes if i.priority == "primary"]
    extra = [i for i in indexes if i.priority == "supplemental"] + primary[1:]
    reqs = []
    for dep in manifest.dependencies:
        extras = f"[{','.join(dep.extras)}]" if dep.extras else ""
        marker = f" ; {dep.markers}" if dep.markers else ""
        if dep.path:
            reqs.append(f"{dep.name}{extras} @ {Path(dep.path).as_uri()}{marker}")
        elif dep.git:
            ref = f"@{dep.git_ref[1]}" if dep.git_ref else ""
            reqs.append(f"{dep.name}{extras} @ git+{dep.git}{ref}{marker}")
        else:
            reqs.append(dep.requirement)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="pip-") as tmp:
        report = Path(tmp) / "report.json"
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(sticky.items())), encoding="utf-8")
        cmd = [*pip_command(interpreter, python_version), "install", "--isolated", "--dry-run",
               "--ignore-installed", "--quiet", "--report", str(report), "--only-binary", ":all:",
               "--index-url", primary[0].url, *(a for i in extra for a in ("--extra-index-url", i.url)),
               "-c", str(constraints), *reqs]
        if shutil.which("git") is None and any(d.git for d in manifest.dependencies):
            raise ResolveError("git sources need the git command", "install git")
        try:
            run(cmd, env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, timeout=600)
        except SubprocessFailed as exc:
            raise ResolveError(f"pip could not resolve {', '.join(reqs)} (wheels only: source distributions are "
                               f"never built):\n{redact_text(_without_traceback(exc.output))}",
                               "check the constraints in mochi.toml and that the index serves them") from None
        data = json.loads(report.read_text(encoding="utf-8"))
    return _pins_from_pip(data, manifest, indexes)


def _without_traceback(output: str) -> str:
    """pip's output with any traceback of its own cut to the exception it ends with (a malformed index page
    crashes pip's parser): the user needs what went wrong, not pip's internals."""
    lines = output.strip().splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            inside = True
            continue
        if inside and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        inside = False
        out.append(line)
    return "\n".join(out)


def _pins_from_pip(report: dict[str, Any], manifest: Manifest, indexes: list[Index]) -> list[Pin]:
    direct = {d.name for d in manifest.dependencies}
    by_name = {d.name: d for d in manifest.dependencies}
    installed = {canonicalize_name(item["metadata"]["name"]): item for item in report.get("install", [])}
    pins = []
    for name, item in installed.items():
        meta, info = item["metadata"], item.get("download_info", {})
        deps = {canonicalize_name(Requirement(r).name) for r in meta.get("requires_dist", [])} & set(installed)
        dep = by_name.get(name)
        if "vcs_info" in info:
            kind, location, commit = "git", dep.git if dep and dep.git else info["url"], info["vcs_info"]["commit_id"]
        elif dep is not None and dep.path:
            kind, location, commit = "path", dep.path, ""
        else:
            searchable = [i for i in indexes if i.priority != "explicit"]
            kind, location, commit = "index", public_url(searchable[0].url) if len(searchable) == 1 else "", ""
        pins.append(Pin(name=name, version=str(meta["version"]), direct=name in direct, source=kind, location=location,
                        commit=commit, dependencies=tuple(sorted(deps))))
    return _unique(pins)


def find_cycle(edges: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as a path that starts and ends at the same package, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None
