"""What one `mochi-py publish` run builds and where it uploads, settled once from the manifest and the
environment facts (pure data, picklable, no secrets: tokens are read from the CI only when needed)."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from ..codegen.program import mochi_module_name
from ..context import Context
from ..errors import BridgeError, Location, ManifestError
from ..resolve.manifest import load_manifest
from ..resolve.package import check_repository
from ..resolve.sources import find_mochi_files

__all__ = ["SECRET_VARIABLES", "PublishOptions", "PublishPlan", "make_plan", "scrubbed_env"]

# What a CI hands a job to prove who it is: never passed to a subprocess the publish runs (the compiler,
# the build, the program run by the import gate), so none of them can read or leak it.
SECRET_VARIABLES = re.compile(r"^(ACTIONS_ID_TOKEN_REQUEST_(URL|TOKEN)|ACTIONS_RUNTIME_TOKEN|GITHUB_TOKEN|"
                              r"CI_JOB_JWT(_V2)?|CI_JOB_TOKEN|SIGSTORE_ID_TOKEN|[A-Z0-9_]*_ID_TOKEN)$")


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment without any OIDC credential or CI token, plus *extra*."""
    return {**{k: v for k, v in os.environ.items() if not SECRET_VARIABLES.match(k)}, **(extra or {})}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOptions:
    """The command line's choices (`mochi-py publish`, or `doit publish` variables)."""

    dry_run: bool = False
    repository: str | None = None
    from_dir: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishPlan:
    root: str
    manifest: str
    name: str
    version: str
    module: str
    """The Mochi module name of the program (`mochi_user_<module>` is the Python package)."""
    program: str
    compile: tuple[str, ...]
    script: str
    """The console script's name; empty for none."""
    policy: str
    repository: str
    attestations: bool
    trusted_publisher: str
    from_dir: str | None
    dry_run: bool
    floor: tuple[int, int]
    requires_python: str
    description: str
    license: str
    license_files: tuple[str, ...]
    authors: tuple[tuple[str, str], ...]
    readme: str | None
    urls: tuple[tuple[str, str], ...]
    keywords: tuple[str, ...]
    classifiers: tuple[str, ...]
    capabilities_declared: tuple[str, ...] | None
    indexes: tuple[str, ...]
    interpreter: str
    cache: str
    where: tuple[tuple[str, Location], ...]
    """Where each `[package]` / `[python.publish]` key was written, for the gates' fixes."""

    @property
    def package(self) -> str:
        return f"mochi_user_{self.module}"

    @property
    def sidecar(self) -> str:
        return f"mochi_user_{self.module}_externs"

    @property
    def state(self) -> Path:
        return Path(self.root) / ".mochi" / "publish"

    @property
    def dist_dir(self) -> Path:
        return Path(self.root) / "dist"

    @property
    def file_stem(self) -> str:
        """`<name>-<version>` as distribution file names spell it (PEP 625, PEP 427)."""
        return f"{re.sub(r'[-_.]+', '_', self.name).lower()}-{Version(self.version)}"

    @property
    def sdist_name(self) -> str:
        return f"{self.file_stem}.tar.gz"

    def at(self, key: str) -> str:
        """`mochi.toml:L:C` of *key* (`package.license`, `publish.script`), or just the file when unwritten."""
        return str(dict(self.where).get(key, self.manifest))

    def build_config(self) -> dict[str, Any]:
        """Everything but the per-run choices: what the sdist and the wheel are made from."""
        data = asdict(self)
        for key in ("dry_run", "repository", "from_dir", "where", "cache", "attestations", "trusted_publisher"):
            data.pop(key)
        return data


def _fail(manifest: Path, key: str, what: str, hint: str) -> ManifestError:
    """An error about a missing *key*: placed at its table's header when there is one."""
    table = key.partition("]")[0] + "]"
    lines = manifest.read_text(encoding="utf-8").splitlines() if manifest.is_file() else []
    line = next((n for n, text in enumerate(lines, 1) if text.strip().startswith(table)), 1)
    return ManifestError(Location(manifest, line, 1), f"{key}: {what}", hint)


def _default_readme(root: Path) -> str | None:
    for name in ("README.md", "README.rst", "README.txt", "README"):
        if (root / name).is_file():
            return str(root / name)
    return None


def _license_files(root: Path, patterns: tuple[str, ...]) -> tuple[str, ...]:
    """PEP 639 `license-files`, relative to the project; by default the usual LICENSE/COPYING/NOTICE files."""
    found: set[str] = set()
    for pattern in patterns or ("LICEN[CS]E*", "COPYING*", "NOTICE*"):
        matches = [p for p in root.glob(pattern) if p.is_file()]
        if patterns and not matches:
            raise _fail(root / "mochi.toml", "[package].license-files", f"{pattern!r} matches no file",
                        "list the license files beside mochi.toml, such as LICENSE")
        found.update(p.relative_to(root).as_posix() for p in matches)
    return tuple(sorted(found))


def _program(root: Path, manifest: Path, chosen: str | None) -> Path:
    if chosen:
        return Path(chosen)
    found = [p for p in find_mochi_files(root) if not _generated(p)]
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(root)) for p in found) or "none"
        raise _fail(manifest, "[python.publish].program", f"the project has {len(found)} .mochi program(s) "
                    f"({listed})", 'name the one to publish: program = "app.mochi" under [python.publish]')
    return found[0]


def _generated(path: Path) -> bool:
    """A `mochi-py build` tree's program (under build/): not a source of the project."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        return fh.readline().startswith("// generated by mochi-py build")


def make_plan(ctx: Context, options: PublishOptions) -> PublishPlan:
    """Read the manifest's `[package]` and `[python.publish]` for a publish of the project *ctx* describes.

    :raises ManifestError: a setting the release needs is missing (name, version, the program).
    """
    root = Path(ctx.root)
    manifest_path = root / "mochi.toml"
    manifest = load_manifest(manifest_path)
    pkg, pub = manifest.package, manifest.python.publish
    name = pub.name or pkg.name
    if not name:
        raise _fail(manifest_path, "[package].name", "a release needs a distribution name",
                    'add name = "my-program" under [package] (or name under [python.publish])')
    if not pkg.version:
        raise _fail(manifest_path, "[package].version", "a release needs a version",
                    'add version = "0.1.0" under [package]')
    if options.repository:
        try:
            repository = check_repository(options.repository, Location(Path("--repository"), 1, 1))
        except ManifestError as exc:
            raise BridgeError(f"--repository {options.repository}: {exc.detail.split(': ', 1)[-1]}",
                              exc.hint) from None
    elif pub.repository:
        repository = pub.repository
    else:
        from twine.utils import DEFAULT_REPOSITORY  # the default index's upload URL, as twine knows it
        repository = str(DEFAULT_REPOSITORY)
    if options.from_dir and not Path(options.from_dir).is_dir():
        raise BridgeError(f"--from {options.from_dir}: no such directory",
                          "pass the directory `mochi build --target=python` wrote (it holds src/)")
    program = _program(root, manifest_path, pub.program)
    where = [(f"package.{k}", v) for k, v in pkg.where] + [(f"publish.{k}", v) for k, v in pub.where]
    return PublishPlan(
        root=str(root), manifest=str(manifest_path), name=name, version=pkg.version,
        module=mochi_module_name(program), program=str(program), compile=pub.compile,
        script=name if pub.script is None else pub.script, policy=pub.abi_tag_policy, repository=repository,
        attestations=pub.attestations, trusted_publisher=pub.trusted_publisher,
        from_dir=str(Path(options.from_dir).resolve()) if options.from_dir else None, dry_run=options.dry_run,
        floor=ctx.abi_floor, requires_python=ctx.requires_python, description=pkg.description,
        license=pkg.license, license_files=_license_files(root, pkg.license_files), authors=pkg.authors,
        readme=pkg.readme or _default_readme(root),
        urls=pkg.urls, keywords=pkg.keywords, classifiers=pkg.classifiers,
        capabilities_declared=ctx.capabilities_declared, indexes=ctx.indexes, interpreter=ctx.interpreter,
        cache=ctx.cache, where=tuple(where))
