"""Parse `mochi.toml`'s `[package]` and `[python.publish]` tables (DESIGN §11) into frozen records.

Called by :mod:`.manifest`, with its locator, so every error names the file, line and column of the
offending value, says what is wrong and what to write instead, like the rest of the manifest.
Every key is optional here: `mochi-py publish` and its gates say which ones a release needs.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import Location, ManifestError
from .publishers import parse_publisher

__all__ = [
    "DEFAULT_COMPILE",
    "TAG_POLICIES",
    "PackageInfo",
    "PublishSettings",
    "check_license",
    "check_repository",
    "parse_package",
    "parse_publish",
]

PACKAGE_KEYS = ("name", "version", "description", "license", "license-files", "authors", "readme", "urls",
                "keywords", "classifiers")
PUBLISH_KEYS = ("name", "program", "compile", "script", "abi-tag-policy", "repository", "attestations",
                "trusted-publisher")
TAG_POLICIES = ("abi3", "abi3t", "both")
DEFAULT_COMPILE = ("mochi", "build", "--target=python", "{program}", "--out", "{out}")
_NAME_RE = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")


class _Locator(Protocol):
    path: Path

    def key(self, table: str | None, key: str) -> Location: ...
    def value(self, table: str | None, key: str) -> Location: ...
    def inner(self, table: str, key: str, inner: str, *, at_key: bool = False) -> Location: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishSettings:
    """`[python.publish]`: how `mochi-py publish` builds and uploads the package."""

    name: str | None = None
    """The distribution name on the index; default `[package].name`."""
    program: str | None = None
    """The program to publish, absolute; default the project's only `.mochi` file."""
    compile: tuple[str, ...] = DEFAULT_COMPILE
    """The Mochi Python-target compiler command; `{program}`, `{tree}` and `{out}` are filled in."""
    script: str | None = None
    """The console script's name; None: the distribution name; empty: no console script."""
    abi_tag_policy: str = "abi3"
    repository: str | None = None
    """The index's upload URL; None: the default index's."""
    attestations: bool = True
    trusted_publisher: str = ""
    """The publisher registered at the index, in `[python].trusted-publishers`' form (`github:<owner>/<repo>/
    <workflow file>[@<environment>]`, `gitlab:…`), shown beside the token's claims when the index refuses them."""
    where: tuple[tuple[str, Location], ...] = ()

    def location(self, key: str, default: Location) -> Location:
        return dict(self.where).get(key, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageInfo:
    """`[package]`: the project's name and version, and the metadata a published distribution carries."""

    name: str | None = None
    version: str | None = None
    description: str = ""
    license: str = ""
    """An SPDX license expression (PEP 639), in canonical form."""
    license_files: tuple[str, ...] = ()
    authors: tuple[tuple[str, str], ...] = ()
    """(name, email) pairs; either may be empty, not both."""
    readme: str | None = None
    """Absolute path of the long description."""
    urls: tuple[tuple[str, str], ...] = ()
    keywords: tuple[str, ...] = ()
    classifiers: tuple[str, ...] = ()
    where: tuple[tuple[str, Location], ...] = ()

    def location(self, key: str, default: Location) -> Location:
        return dict(self.where).get(key, default)


def _closest(key: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(choices)}"


def _text(value: object, where: Location, what: str, hint: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(where, f"{what} must be a non-empty string", hint)
    return value.strip()


def _strings(value: object, where: Location, what: str, hint: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ManifestError(where, f"{what} must be a list of non-empty strings", hint)
    return tuple(v.strip() for v in value)


def _dist_name(value: object, where: Location, what: str) -> str:
    name = _text(value, where, what)
    if not _NAME_RE.match(name):
        raise ManifestError(where, f"{what} {name!r} is not a valid distribution name",
                            "use letters, digits, '.', '-' and '_', starting and ending with a letter or digit")
    return name


def check_license(expression: str, where: Location) -> str:
    """*expression*, if it is an SPDX license expression (PEP 639) in canonical form.

    :raises ManifestError: naming the closest known identifier, or the canonical spelling.
    """
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
    try:
        canonical = str(canonicalize_license_expression(expression))
    except InvalidLicenseExpression as exc:
        hint = 'write an SPDX expression such as "MIT" or "Apache-2.0 OR MIT"'
        try:
            from packaging.licenses._spdx import LICENSES  # private, only for the suggestion
            words = [w for w in re.split(r"[\s()]+", expression) if w and w.upper() not in ("AND", "OR", "WITH")]
            unknown = [w for w in words if w.lower().rstrip("+") not in LICENSES]
            close = difflib.get_close_matches(unknown[0].lower(), list(LICENSES), n=1) if unknown else []
            if close:
                hint = f"did you mean {LICENSES[close[0]]['id']!r}? {hint}"
        except ImportError:
            pass
        raise ManifestError(where, f"license {expression!r} is not a valid SPDX license expression ({exc})",
                            hint) from None
    if canonical != expression:
        raise ManifestError(where, f"license {expression!r} is not in the canonical SPDX form",
                            f'write license = "{canonical}"')
    return canonical


def check_repository(url: str, where: Location) -> str:
    """An upload URL: https, or plain http only on the loopback interface (tests, a local index)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ManifestError(where, f"repository {url!r} is not an https URL",
                            "Trusted Publishing sends short-lived credentials: use https (plain http is accepted "
                            "only for 127.0.0.1 and localhost)")
    return url


def parse_package(table: object, loc: _Locator) -> PackageInfo:
    if not isinstance(table, Mapping):
        raise ManifestError(loc.key(None, "package"), "[package] must be a table")
    for key in table:
        if key not in PACKAGE_KEYS:
            raise ManifestError(loc.key("package", key), f"unknown [package] key {key!r}",
                                _closest(key, PACKAGE_KEYS))
    where = {key: loc.value("package", key) for key in table}
    base = loc.path.parent.resolve()
    out: dict[str, Any] = {}
    if "name" in table:
        out["name"] = _dist_name(table["name"], where["name"], "[package].name")
    if "version" in table:
        version = _text(table["version"], where["version"], "[package].version", 'write version = "1.0.0"')
        try:
            Version(version)
        except InvalidVersion:
            raise ManifestError(where["version"], f"version {version!r} is not a PEP 440 version",
                                'write a version such as "1.0.0" or "0.3.0rc1"') from None
        out["version"] = version
    if "description" in table:
        out["description"] = _text(table["description"], where["description"], "[package].description")
        if "\n" in out["description"]:
            raise ManifestError(where["description"], "[package].description must be one line (it is the summary)",
                                "put the long text in the README")
    if "license" in table:
        out["license"] = check_license(_text(table["license"], where["license"], "[package].license"),
                                       where["license"])
    if "license-files" in table:
        out["license_files"] = _strings(table["license-files"], where["license-files"], "[package].license-files",
                                        'write license-files = ["LICENSE"]')
    if "authors" in table:
        out["authors"] = _authors(table["authors"], where["authors"])
    if "readme" in table:
        rel = _text(table["readme"], where["readme"], "[package].readme")
        if not (base / rel).is_file():
            raise ManifestError(where["readme"], f"readme {rel!r} does not exist",
                                "point it at a file beside mochi.toml, such as README.md")
        out["readme"] = str((base / rel).resolve())
    if "urls" in table:
        urls = table["urls"]
        if not isinstance(urls, Mapping) or not urls or not all(
                isinstance(v, str) and re.match(r"^https?://\S+$", v) for v in urls.values()):
            raise ManifestError(where["urls"], "[package].urls must be a table of http(s) URLs",
                                'write urls = { Homepage = "https://example.org" }')
        out["urls"] = tuple((str(k), str(v)) for k, v in urls.items())
    for key in ("keywords", "classifiers"):
        if key in table:
            out[key] = _strings(table[key], where[key], f"[package].{key}", f'write {key} = ["..."]')
    return PackageInfo(**out, where=tuple(sorted(where.items())))


def _authors(raw: object, where: Location) -> tuple[tuple[str, str], ...]:
    hint = 'write authors = [{ name = "Ada", email = "ada@example.org" }]'
    if not isinstance(raw, list) or not raw:
        raise ManifestError(where, "[package].authors must be a non-empty list of tables", hint)
    out = []
    for i, item in enumerate(raw):
        if (not isinstance(item, Mapping) or not item or set(item) - {"name", "email"}
                or not all(isinstance(v, str) and v.strip() for v in item.values())):
            raise ManifestError(where, f"authors[{i}] takes a 'name' and an 'email' string", hint)
        email = str(item.get("email", "")).strip()
        if email and not re.fullmatch(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+", email):
            raise ManifestError(where, f"authors[{i}].email {email!r} is not an e-mail address", hint)
        out.append((str(item.get("name", "")).strip(), email))
    return tuple(out)


def parse_publish(python: Mapping[str, object], requires_python: object, loc: _Locator) -> PublishSettings:
    """`[python.publish]` (the table is read from the already parsed `[python]` table)."""
    if "publish" not in python:
        return PublishSettings()
    table = python["publish"]
    if not isinstance(table, Mapping):
        raise ManifestError(loc.value("python", "publish"), "[python.publish] must be a table")

    def at(key: str, *, at_key: bool = False) -> Location:
        return loc.inner("python", "publish", key, at_key=at_key)  # [python.publish] lines or an inline table

    for key in table:
        if key not in PUBLISH_KEYS:
            raise ManifestError(at(key, at_key=True), f"unknown [python.publish] key {key!r}",
                                _closest(key, PUBLISH_KEYS))
    where = {key: at(key) for key in table}
    base = loc.path.parent.resolve()
    out: dict[str, Any] = {}
    if "name" in table:
        out["name"] = _dist_name(table["name"], where["name"], "[python.publish].name")
    if "program" in table:
        rel = _text(table["program"], where["program"], "[python.publish].program")
        if not rel.endswith(".mochi") or not (base / rel).is_file():
            raise ManifestError(where["program"], f"program {rel!r} is not a .mochi file of the project",
                                'write program = "app.mochi" (relative to mochi.toml)')
        out["program"] = str((base / rel).resolve())
    if "compile" in table:
        out["compile"] = _compile(table["compile"], where["compile"])
    if "script" in table:
        out["script"] = _script(table["script"], where["script"])
    if "abi-tag-policy" in table:
        out["abi_tag_policy"] = _tag_policy(table["abi-tag-policy"], where["abi-tag-policy"], requires_python)
    if "repository" in table:
        url = _text(table["repository"], where["repository"], "[python.publish].repository")
        out["repository"] = check_repository(url, where["repository"])
    if "attestations" in table:
        if not isinstance(table["attestations"], bool):
            raise ManifestError(where["attestations"], "[python.publish].attestations must be true or false")
        out["attestations"] = table["attestations"]
    if "trusted-publisher" in table:
        out["trusted_publisher"] = _publisher(table["trusted-publisher"], where["trusted-publisher"])
    return PublishSettings(**out, where=tuple(sorted(where.items())))


def _compile(raw: object, where: Location) -> tuple[str, ...]:
    hint = 'write compile = ["mochi", "build", "--target=python", "{program}", "--out", "{out}"]'
    words = shlex.split(raw) if isinstance(raw, str) else raw
    cmd = _strings(words, where, "[python.publish].compile", hint)
    if not cmd:
        raise ManifestError(where, "[python.publish].compile is empty", hint)
    if not any("{out}" in part for part in cmd):
        raise ManifestError(where, "[python.publish].compile never names {out}, the directory the compiled package "
                            "goes to", "add your compiler's output option with \"{out}\", as in " + hint[6:])
    return cmd


def _script(raw: object, where: Location) -> str:
    if raw is False:
        return ""
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", raw):
        raise ManifestError(where, "[python.publish].script must be a command name or false",
                            'write script = "hello" (or false for no console script)')
    return raw


def _publisher(raw: object, where: Location) -> str:
    hint = 'write trusted-publisher = "github:<owner>/<repo>/<workflow file>[@<environment>]" (or "gitlab:…")'
    if not isinstance(raw, str):
        raise ManifestError(where, "trusted-publisher must be a string", hint)
    try:
        spec = parse_publisher(raw)
    except ValueError as exc:
        raise ManifestError(where, f"trusted-publisher: {exc}", hint) from None
    if spec.kind not in ("github", "gitlab"):
        raise ManifestError(where, f"trusted-publisher {raw!r}: mochi-py publish runs only from GitHub Actions and "
                            "GitLab CI/CD", hint)
    return str(spec)


def _floor(requires_python: object) -> tuple[int, int]:
    """The lowest 3.N *requires_python* allows (an unparsable one is reported by the [python] parser)."""
    lows: list[tuple[int, int]] = []
    for spec in SpecifierSet(str(requires_python)):
        if spec.operator in (">=", "==", "~=", ">"):
            major, minor = ([int(p) for p in re.findall(r"\d+", spec.version)[:2]] + [0, 0])[:2]
            lows.append((major, minor))
    return max(lows, default=(3, 0))


def _tag_policy(value: object, where: Location, requires_python: object) -> str:
    if value in ("abi2026", "legacy"):
        raise ManifestError(where, f"abi-tag-policy {value!r} is not offered: PEP 809 (abi2026) is a draft, so no "
                            "index or installer knows that tag", 'write abi-tag-policy = "abi3" (the default), or '
                            '"abi3t" / "both" for the free-threaded stable ABI of PEP 803')
    if value not in TAG_POLICIES:
        raise ManifestError(where, f"abi-tag-policy {value!r} is not one of {', '.join(TAG_POLICIES)}",
                            _closest(str(value), TAG_POLICIES))
    if value != "abi3" and _floor(requires_python) < (3, 15):
        raise ManifestError(where, f"abi-tag-policy {value!r} targets the free-threaded stable ABI (PEP 803), which "
                            f"starts at CPython 3.15, but requires-python {requires_python!r} reaches below it",
                            'set requires-python = ">=3.15" under [python], or use abi-tag-policy = "abi3"')
    return str(value)
