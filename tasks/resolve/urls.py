"""Checks on data an index or a lock supplies, before any of it is used (issue 14: both can be hostile),
and the credentials an index URL may carry.

Every value that ends up in a path, a URL that is opened, or a cache key goes through these: a
digest must be lowercase hex of its length, a file name a single path component, a URL one of the
schemes the tool opens. Credentials (`https://user:pass@host/simple/`) stay in memory: they are
sent to the host they were given for, and :func:`public_url` takes them out of every URL that is
written (mochi.lock, pylock.toml, `.mochi/`, the cache) or printed.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from ..errors import redact_text

__all__ = ["auth_header", "is_hex", "manifest_index_urls", "public_url", "redact_text", "safe_filename", "url_problem",
           "with_credentials"]

_HEX = {64: re.compile(r"^[0-9a-f]{64}$")}


def is_hex(value: object, length: int = 64) -> bool:
    """*value* is a lowercase hex string of *length* characters (a SHA-256 or BLAKE3 digest)."""
    pattern = _HEX.setdefault(length, re.compile(rf"^[0-9a-f]{{{length}}}$"))
    return isinstance(value, str) and pattern.match(value) is not None


def safe_filename(value: object) -> bool:
    """*value* is one path component: no separator, no `..`, no leading dot, no control character."""
    return (isinstance(value, str) and bool(value) and "/" not in value and "\\" not in value
            and not value.startswith(".") and value not in (".", "..") and value.isprintable() and len(value) < 256)


def url_problem(value: object, allow_file: bool = True) -> str:
    """Why *value* is not a URL the tool may open (empty when it is): http or https with a host, or a
    `file://` URL where *allow_file* (an index on disk may point at files on disk; a remote one may not)."""
    if not isinstance(value, str) or not value:
        return "not a URL"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "a URL with whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "not a URL"
    if parts.scheme in ("http", "https"):
        return "" if parts.hostname else "a URL without a host"
    if parts.scheme == "file":
        return "" if allow_file else "a file:// URL from a remote index"
    return f"a {parts.scheme or 'relative'} URL (only http, https and file are opened)"


def public_url(url: str) -> str:
    """*url* without the `user:password@` of its authority: the form written to files and output."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int | None]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def with_credentials(url: str, indexes: Iterable[str]) -> str:
    """*url*, with the credentials of the first of *indexes* on the same scheme, host and port when it
    carries none itself (a lock records URLs without them; the manifest's index URL has them)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if "@" in parts.netloc:
            return url
        for index in indexes:
            ip = urllib.parse.urlsplit(index)
            if "@" in ip.netloc and _origin(ip) == _origin(parts):
                return urllib.parse.urlunsplit(parts._replace(netloc=ip.netloc.rpartition("@")[0] + "@"
                                                              + parts.netloc))
    except ValueError:
        pass
    return url


def manifest_index_urls(root: Path, indexes: Iterable[str]) -> tuple[str, ...]:
    """*indexes* and every index URL the manifest at *root* names (explicit and per-dependency ones too):
    where the credentials for a locked URL are looked up."""
    from ..errors import BridgeError
    from .manifest import load_manifest
    try:
        manifest = load_manifest(root / "mochi.toml")
    except BridgeError:
        return tuple(indexes)
    return (*indexes, *(i.url for i in manifest.python.indexes), *(d.index for d in manifest.dependencies if d.index))


def auth_header(url: str) -> tuple[str, str | None]:
    """(*url* without credentials, the `Authorization: Basic` value they make, or None)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    return public_url(url), "Basic " + base64.b64encode(token).decode("ascii")
