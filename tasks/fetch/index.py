"""A PEP 691 (JSON) simple-index client with a PEP 503 (HTML) fallback, and wheel selection.

Hashes come from the index (PEP 700 `hashes`, or the `#sha256=` fragment in HTML). Wheels are
chosen with `packaging.tags` in the target's preference order, never by string matching, so
`cp3XY` and `abi3` wheels are read alike (R6).
"""

from __future__ import annotations

import configparser
import http.client
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

from ..context import LIMITS, limit, offline_requested
from ..errors import FetchError, NotOnIndex, Offline
from ..resolve.urls import auth_header, is_hex, redact_text, safe_filename, url_problem, with_credentials

__all__ = ["Download", "IndexFile", "default_index_url", "fetch_project", "offline", "open_url", "select_wheel"]

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


class Download:
    """A response read within a byte cap and an overall deadline (issue 14: an index may lie about a
    size or trickle a byte every few seconds, and the per-read socket timeout never fires then).

    Reads return what one receive brings (`read1`), so the deadline is checked between receives; the
    socket's own timeout is never longer than the whole budget.
    """

    def __init__(self, raw: BinaryIO, url: str, cap: int, advertised: bool, seconds: float) -> None:
        self._raw = raw
        self._read1 = getattr(raw, "read1", raw.read)
        self.url = url
        self.cap = cap
        self.advertised = advertised
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.total = 0

    def read(self, n: int = -1, /) -> bytes:
        """Up to *n* bytes (all with a negative *n*), fewer only at the end of the stream."""
        parts, got = [], 0
        while n < 0 or got < n:
            chunk = self._receive(1 << 20 if n < 0 else min(n - got, 1 << 20))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _receive(self, n: int) -> bytes:
        self._in_time()
        try:
            data = self._read1(max(1, min(n, self.cap + 1 - self.total)))
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise FetchError(f"{self.url}: the download broke off after {self.total} bytes: "
                             f"{str(exc) or type(exc).__name__}", "retry; check the index and your network") from None
        self.total += len(data)
        if self.total > self.cap:
            raise FetchError(
                f"{self.url}: the server sent more than the {self.cap} bytes "
                + ("the index advertised for the file (PEP 700 size)" if self.advertised else
                   f"allowed for a download whose size the index does not give ({LIMITS['download-bytes'].env})"),
                "do not use this index" if self.advertised else
                f"raise {LIMITS['download-bytes'].env} if the file really is that large")
        if data:
            self._in_time()
        return data

    def _in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise FetchError(f"{self.url}: the download did not finish within {self.seconds:g} s ({self.total} "
                             f"bytes received)", f"the server is too slow; raise {LIMITS['download-seconds'].env} "
                             "if it is only slow, not stuck")

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_url(url: str, accept: str | None = None, size: int | None = None) -> tuple[Download, str, str]:
    """Open *url* with bounded timeouts and retries on transient errors; returns (stream, content type, final url).

    The stream stops at *size* bytes (the advertised size) or else at the download cap, and within the
    download time limit (:mod:`tasks.limits`). Credentials in *url* go out as a Basic `Authorization`
    header, never in a message; the final URL carries them again so relative links on the page keep them.
    """
    if url.startswith("file://") and url.endswith("/"):
        url += "index.html"  # a static PEP 503 tree on disk: the directory's page is its index.html
    plain, auth = auth_header(url)
    shown = redact_text(url)
    if offline() and not url.startswith("file://"):
        raise Offline(f"{shown}: not fetched: offline (--offline or MOCHI_OFFLINE)",
                      "run once with the network to fill the caches (or restore MOCHI_CACHE_DIR), then retry")
    if problem := url_problem(plain):
        raise FetchError(f"{shown}: refused: {problem}", "check the index URL")
    cap = size if size is not None else int(limit("download-bytes"))
    seconds = limit("download-seconds")
    headers = {"User-Agent": "mochi-pybridge"}
    if accept:
        headers["Accept"] = accept
    last = ""
    for attempt in range(_RETRIES):
        try:
            request = urllib.request.Request(plain, headers=headers)
            if auth:
                request.add_unredirected_header("Authorization", auth)  # never follows a redirect to another host
            resp = urllib.request.urlopen(request, timeout=min(_TIMEOUT, seconds))
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cap:
                resp.close()
                raise FetchError(f"{shown}: the server announces {length} bytes, over the {cap} "
                                 + ("the index advertised (PEP 700 size)" if size is not None else
                                    f"byte cap ({LIMITS['download-bytes'].env})"), "do not use this file")
            if problem := url_problem(resp.geturl(), allow_file=plain.startswith("file:")):
                resp.close()
                raise FetchError(f"{shown}: refused: redirected to {problem}", "check the index URL")
            # on the same host the page's relative links keep the credentials (a redirect elsewhere loses them)
            final = with_credentials(resp.geturl(), [url]) if auth else resp.geturl()
            return Download(cast(BinaryIO, resp), shown, cap, size is not None, seconds), \
                resp.headers.get("Content-Type", ""), final
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                kind = NotOnIndex if exc.code in (404, 410) else FetchError
                hint = ("check the credentials in the index URL" if exc.code in (401, 403) else
                        "check the package name and the index URL")
                raise kind(f"{shown}: HTTP {exc.code} {exc.reason}", hint) from None
            last = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise FetchError(f"{shown}: TLS failure: {exc.reason}",
                                 "check the index's certificate, or point SSL_CERT_FILE at your CA bundle") from None
            last = str(exc.reason)
        except (TimeoutError, ConnectionError) as exc:
            last = str(exc) or type(exc).__name__
        except (ValueError, http.client.HTTPException) as exc:  # a malformed URL or response
            raise FetchError(f"{shown}: {redact_text(str(exc)) or type(exc).__name__}", "check the index URL") from None
        if attempt + 1 < _RETRIES:
            time.sleep(0.2 * (2 ** attempt))
    raise Offline(f"{shown}: {last} (after {_RETRIES} attempts)",
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
    out: list[IndexFile] = []
    try:
        data = json.loads(body)
        files = data["files"]
        if not isinstance(files, list):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise FetchError(f"{redact_text(base)}: not a PEP 691 project page (malformed JSON or file entries)",
                         "check the index URL; the index answered something other than a project page") from None
    for f in files:
        if not isinstance(f, dict):
            continue
        hashes = f["hashes"] if isinstance(f.get("hashes"), dict) else {}
        yanked = f.get("yanked", False)
        meta = f.get("core-metadata", f.get("dist-info-metadata"))  # PEP 714 name, then the deprecated one
        size = f.get("size")
        requires = f.get("requires-python")
        file = _checked_file(base, f.get("filename"), f.get("url"), hashes.get("sha256"))
        if file is None:
            continue
        filename, url, sha256 = file
        out.append(IndexFile(filename=filename, url=url, sha256=sha256,
                             requires_python=requires if isinstance(requires, str) else "",
                             yanked=yanked is not False and yanked is not None,
                             size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
                             metadata_sha256=_hex_or_empty(meta.get("sha256")) if isinstance(meta, dict) else "",
                             provenance=_provenance_url(f.get("provenance"), base)))
    return out


def _hex_or_empty(value: object) -> str:
    """A SHA-256 the index published, lowercased; anything but 64 hex digits is treated as absent."""
    text = value.lower() if isinstance(value, str) else ""
    return text if is_hex(text) else ""


def _checked_file(base: str, filename: object, href: object, sha256: object) -> tuple[str, str, str] | None:
    """(filename, absolute URL, sha256 or "") of one listed file, or None when the entry is unusable: a
    file name that is not one path component, or a URL the tool does not open (a remote page may not
    point at `file://`)."""
    if not safe_filename(filename) or not isinstance(href, str):
        return None
    try:
        url = urllib.parse.urljoin(base, href)
    except ValueError:
        return None
    if url_problem(auth_header(url)[0] if "@" in url else url, allow_file=base.startswith("file:")):
        return None
    return str(filename), url, _hex_or_empty(sha256)


def _provenance_url(value: object, base: str) -> str:
    """PEP 740: a string URL (relative to the page) or null; anything else is ignored as absent."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        url = urllib.parse.urljoin(base, value)
    except ValueError:
        return ""
    return "" if url_problem(auth_header(url)[0], allow_file=base.startswith("file:")) else url


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
        url, _, frag = href.partition("#")
        algo, _, digest = frag.partition("=")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("?", 1)[0])
        file = _checked_file(base, filename, url, digest if algo == "sha256" else "")
        if file is None:
            continue
        meta = a.get("data-core-metadata") or a.get("data-dist-info-metadata") or ""
        out.append(IndexFile(filename=file[0], url=file[1], sha256=file[2],
                             requires_python=a.get("data-requires-python") or "",
                             yanked="data-yanked" in a, size=None,
                             metadata_sha256=_hex_or_empty(meta.partition("=")[2]) if meta.startswith("sha256=")
                             else "",
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
        raise FetchError(f"the index lists no valid sha256 (64 hex digits) for {best[1].filename}",
                         "use an index that publishes hashes (PEP 503 fragment or PEP 691 'hashes')")
    return best[1]
