"""A PEP 691 (JSON) simple-index client with a PEP 503 (HTML) fallback, and wheel selection.

Hashes come from the index (PEP 700 `hashes`, or the `#sha256=` fragment in HTML). Wheels are
chosen with `packaging.tags` in the target's preference order, never by string matching, so
`cp3XY` and `abi3` wheels are read alike (R6).
"""

from __future__ import annotations

import configparser
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO, cast

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from ..context import offline_requested
from ..errors import FetchError, NotOnIndex, Offline

__all__ = ["IndexFile", "default_index_url", "fetch_project", "offline", "open_url", "select_wheel"]

_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
           "text/html;q=0.01")
_TIMEOUT = 30.0
_RETRIES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexFile:
    filename: str
    url: str
    sha256: str
    requires_python: str
    yanked: bool
    size: int | None
    metadata_sha256: str = ""
    """PEP 658/714: the SHA-256 of the core metadata served beside the file, when advertised."""
    provenance: str = ""
    """PEP 740: the URL of the file's provenance object (JSON `provenance`, HTML `data-provenance`), when listed."""


def default_index_url(environ: dict[str, str] | None = None) -> str:
    """The index the environment configures (uv, then pip), else pip's own default."""
    env = os.environ if environ is None else environ
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if env.get(var):
            return env[var].rstrip("/") + "/"
    configured = _pip_config_index(env)
    if configured:
        return configured.rstrip("/") + "/"
    try:
        from pip._internal.models.index import PyPI
        return str(PyPI.simple_url).rstrip("/") + "/"
    except ImportError:
        raise FetchError("no package index is configured and pip is not importable",
                         "set [python].indexes in mochi.toml or UV_DEFAULT_INDEX") from None


def _pip_config_index(env: Mapping[str, str]) -> str | None:
    """`index-url` from pip's configuration files, read the way pip orders them (later files win).

    Reading the files directly avoids importing pip's internals (85 ms) on every run.
    """
    if env.get("PIP_CONFIG_FILE") == os.devnull:
        return None
    home = Path(env.get("HOME", str(Path.home())))
    xdg_dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [*(Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs)), Path("/etc/pip.conf"),
             home / ".pip" / "pip.conf", Path(env.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf",
             Path(sys.prefix) / "pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    found = None
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                found = parser.get(section, "index-url").strip()
    return found or None


def open_url(url: str, accept: str | None = None) -> tuple[BinaryIO, str, str]:
    """Open *url* with bounded timeouts and retries on transient errors; returns (stream, content type, final url)."""
    if url.startswith("file://") and url.endswith("/"):
        url += "index.html"  # a static PEP 503 tree on disk: the directory's page is its index.html
    if offline() and not url.startswith("file://"):
        raise Offline(f"{url}: not fetched: offline (--offline or MOCHI_OFFLINE)",
                      "run once with the network to fill the caches (or restore MOCHI_CACHE_DIR), then retry")
    headers = {"User-Agent": "mochi-pybridge"}
    if accept:
        headers["Accept"] = accept
    last = ""
    for attempt in range(_RETRIES):
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT)
            return cast(BinaryIO, resp), resp.headers.get("Content-Type", ""), resp.geturl()
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                kind = NotOnIndex if exc.code in (404, 410) else FetchError
                raise kind(f"{url}: HTTP {exc.code} {exc.reason}", "check the package name and the index URL") from None
            last = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise FetchError(f"{url}: TLS failure: {exc.reason}",
                                 "check the index's certificate, or point SSL_CERT_FILE at your CA bundle") from None
            last = str(exc.reason)
        except (TimeoutError, ConnectionError) as exc:
            last = str(exc) or type(exc).__name__
        if attempt + 1 < _RETRIES:
            time.sleep(0.2 * (2 ** attempt))
    raise Offline(f"{url}: {last} (after {_RETRIES} attempts)",
                  "the index did not answer; check the URL and your network, then retry")


def offline() -> bool:
    """`--offline` (the CLI sets `MOCHI_OFFLINE`): every URL but `file://` is refused before it is opened."""
    return offline_requested(os.environ)


def fetch_project(index_url: str, name: str) -> list[IndexFile]:
    """All files the index lists for project *name*."""
    page = urllib.parse.urljoin(index_url, canonicalize_name(name) + "/")
    stream, ctype, final = open_url(page, _ACCEPT)
    with stream:
        body = stream.read()
    if "json" in ctype:
        return _parse_json(body, final)
    return _parse_html(body.decode("utf-8", "replace"), final)


def _parse_json(body: bytes, base: str) -> list[IndexFile]:
    out = []
    try:
        data = json.loads(body)
        for f in data["files"]:
            hashes = f.get("hashes") or {}
            yanked = f.get("yanked", False)
            meta = f.get("core-metadata", f.get("dist-info-metadata"))  # PEP 714 name, then the deprecated one
            out.append(IndexFile(filename=f["filename"], url=urllib.parse.urljoin(base, f["url"]),
                                 sha256=str(hashes.get("sha256", "")), requires_python=f.get("requires-python") or "",
                                 yanked=yanked is not False and yanked is not None, size=f.get("size"),
                                 metadata_sha256=str(meta.get("sha256", "")) if isinstance(meta, dict) else "",
                                 provenance=_provenance_url(f.get("provenance"), base)))
    except (ValueError, KeyError, TypeError, AttributeError):  # malformed JSON or entries of the wrong shape
        raise FetchError(f"{base}: not a PEP 691 project page (malformed JSON or file entries)",
                         "check the index URL; the index answered something other than a project page") from None
    return out


def _provenance_url(value: object, base: str) -> str:
    """PEP 740: a string URL (relative to the page) or null; anything else is ignored as absent."""
    return urllib.parse.urljoin(base, value) if isinstance(value, str) and value else ""


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def _parse_html(body: str, base: str) -> list[IndexFile]:
    parser = _Anchors()
    parser.feed(body)
    out = []
    for a in parser.anchors:
        href = a.get("href")
        if not href:
            continue
        url, _, frag = urllib.parse.urljoin(base, href).partition("#")
        algo, _, digest = frag.partition("=")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        meta = a.get("data-core-metadata") or a.get("data-dist-info-metadata") or ""
        out.append(IndexFile(filename=filename, url=url, sha256=digest if algo == "sha256" else "",
                             requires_python=a.get("data-requires-python") or "",
                             yanked="data-yanked" in a, size=None,
                             metadata_sha256=meta.partition("=")[2] if meta.startswith("sha256=") else "",
                             provenance=_provenance_url(a.get("data-provenance"), base)))
    return out


def select_wheel(files: list[IndexFile], name: str, version: str, accepted: list[tags.Tag],
                 python_version: str, allow_yanked: bool = False) -> IndexFile:
    """The best wheel of *name* == *version* for the *accepted* tags (best first).

    Yanked files are skipped unless *allow_yanked* (the manifest pins the version with `==`, PEP 592).

    :raises FetchError: when no wheel fits, naming what the index has.
    """
    rank = {t: i for i, t in enumerate(accepted)}
    want = Version(version)
    best: tuple[int, IndexFile] | None = None
    seen = []
    for f in files:
        if not f.filename.endswith(".whl"):
            continue
        try:
            wname, wver, _, wtags = parse_wheel_filename(f.filename)
        except InvalidWheelFilename:
            continue
        if wname != canonicalize_name(name) or wver != want:
            continue
        seen.append(f.filename + (" (yanked)" if f.yanked else ""))
        if f.yanked and not allow_yanked:
            continue
        if f.requires_python:
            try:
                if not SpecifierSet(f.requires_python).contains(python_version, prereleases=True):
                    continue
            except InvalidSpecifier:
                continue
        score = min((rank[t] for t in wtags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, f)
    if best is None:
        have = ", ".join(seen) if seen else "no wheels"
        raise FetchError(f"no wheel of {name} {version} fits Python {python_version} on this platform (index has: "
                         f"{have})", "pick a version that ships a compatible wheel")
    if not best[1].sha256:
        raise FetchError(f"the index lists no sha256 for {best[1].filename}",
                         "use an index that publishes hashes (PEP 503 fragment or PEP 691 'hashes')")
    return best[1]
