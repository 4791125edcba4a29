"""Upload through Trusted Publishing only (R7, A6): audience, a fresh OIDC token, mint, upload.

Each attempt asks the CI for a **new** OIDC token (the index accepts each one once, by its `jti`),
exchanges it at the index's mint endpoint for a short-lived upload token, and uploads the files not
yet on the index to its legacy upload endpoint as `__token__`. A transient failure (the identity
service or the index down, an expired token) waits 1, 2, 4, 8 s (`MOCHI_PUBLISH_BACKOFF` scales the
first wait) and tries again, five attempts in all. Publisher mismatch (403), token replay (409) and
an existing file (400) end the run at once with what to do. Every file the index confirmed is
recorded in `.mochi/publish/uploaded.json` as it lands, so a rerun uploads only what is missing and
a failed run never reports a file it did not see confirmed. No token is printed or stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.metadata import parse_email
from packaging.utils import parse_wheel_filename

from .. import __version__
from ..cache import atomic_write
from ..errors import PublishError
from .oidc import OPENER, Provider, Transient, detect_provider, shown_claims

__all__ = ["ATTEMPTS", "Dist", "form_fields", "pending", "upload_all"]

ATTEMPTS = 5
_UA = f"mochi-pybridge/{__version__}"
# Repeatable core-metadata fields and the form field each goes to (the legacy upload API's names).
_MULTI = {"classifiers": "classifiers", "requires_dist": "requires_dist", "provides_extra": "provides_extra",
          "license_files": "license_file", "platforms": "platform", "supported_platforms": "supported_platform",
          "requires_external": "requires_external", "provides_dist": "provides_dist",
          "obsoletes_dist": "obsoletes_dist", "dynamic": "dynamic"}


@dataclass(frozen=True, slots=True)
class Dist:
    path: Path
    sha256: str
    metadata: str
    """The file's core metadata (PKG-INFO or METADATA) as text."""
    attestations: tuple[dict[str, Any], ...] = ()


def form_fields(dist: Dist) -> list[tuple[str, str]]:
    """The upload form of *dist*: protocol fields, digests, and its metadata in the legacy API's spelling."""
    raw, _ = parse_email(dist.metadata)
    name = dist.path.name
    if name.endswith(".whl"):
        filetype, pyversion = "bdist_wheel", ".".join(sorted({t.interpreter for t in parse_wheel_filename(name)[3]}))
    else:
        filetype, pyversion = "sdist", "source"
    data = dist.path.read_bytes()
    fields = [(":action", "file_upload"), ("protocol_version", "1"), ("filetype", filetype),
              ("pyversion", pyversion), ("sha256_digest", dist.sha256),
              ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest())]
    raw_items: dict[str, Any] = dict(raw)
    for key, value in sorted(raw_items.items()):
        if key == "project_urls":
            fields += [("project_urls", f"{label}, {url}") for label, url in value.items()]
        elif key == "keywords":
            fields.append(("keywords", ",".join(value)))
        elif key in _MULTI:
            fields += [(_MULTI[key], str(v)) for v in value]
        elif isinstance(value, str):
            fields.append((key, value))
    if dist.attestations:
        fields.append(("attestations", json.dumps(list(dist.attestations))))
    return fields


def _multipart(fields: list[tuple[str, str]], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _base(repository: str) -> str:
    parts = urlsplit(repository)
    return f"{parts.scheme}://{parts.netloc}"


def _http(req: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    """(status, body) of *req*; a connection failure or a server error is :class:`Transient`."""
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if exc.code >= 500 or exc.code == 429:
            raise Transient(f"{req.full_url}: HTTP {exc.code}") from None
        return exc.code, body
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise Transient(f"{req.full_url}: {getattr(exc, 'reason', exc)}") from None


def _plain(body: bytes) -> str:
    """An index's error page as one line of text (pypiserver answers in HTML)."""
    text = re.sub(r"<(style|title|head)[^>]*>.*?</\1>", " ", body[:8000].decode(errors="replace"), flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()[:400]


def _errors(body: bytes) -> str:
    try:
        data = json.loads(body)
        return "; ".join(f"{e.get('code')}: {e.get('description')}" for e in data.get("errors", [])) or str(
            data.get("message", ""))
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace").strip()


def audience(repository: str) -> str:
    status, body = _http(urllib.request.Request(f"{_base(repository)}/_/oidc/audience",
                                                headers={"User-Agent": _UA}), 30)
    if status == 200:
        try:
            return str(json.loads(body)["audience"])
        except (ValueError, KeyError, TypeError):
            raise Transient(f"{_base(repository)}/_/oidc/audience sent no audience") from None
    what = {403: "has Trusted Publishing turned off", 404: "does not support Trusted Publishing"}.get(
        status, f"answered HTTP {status} when asked for its OIDC audience")
    raise PublishError(f"the index at {_base(repository)} {what}",
                       "publish to an index that supports Trusted Publishing (mochi-py has no token or password "
                       "option)")


def _mint(repository: str, oidc_token: str, configured: str, name: str) -> str:
    body = json.dumps({"token": oidc_token}).encode()
    req = urllib.request.Request(f"{_base(repository)}/_/oidc/mint-token", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": _UA})
    status, answer = _http(req, 30)
    if status == 200:
        try:
            data = json.loads(answer)
            if data.get("success") and data.get("token"):
                return str(data["token"])
        except (ValueError, AttributeError):
            pass
        raise Transient("the index's mint endpoint sent no upload token")
    reason = _errors(answer)
    if status == 403 or "invalid-publisher" in reason:
        mine = configured or "(none named: set [python.publish].trusted-publisher to compare)"
        raise PublishError(
            f"the index refused the OIDC token (HTTP {status}, publisher mismatch): no trusted publisher of {name} "
            f"matches it ({reason})\n  configured publisher (mochi.toml): {mine}\n"
            f"  the token's claims:               {shown_claims(oidc_token)}",
            f"register this repository, workflow and environment as a trusted publisher of {name} at the index, "
            "or run the release from the one registered there")
    if status == 409:
        raise PublishError(f"the index had already accepted this OIDC token (HTTP 409, replay: {reason}); each "
                           "token is accepted once", "re-run the CI job: it gets a new token")
    raise Transient(f"the index refused the OIDC token (HTTP {status}: {reason})")


def _upload(repository: str, token: str, dist: Dist) -> None:
    import base64
    payload, ctype = _multipart(form_fields(dist), dist.path.name, dist.path.read_bytes())
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    req = urllib.request.Request(repository, data=payload, method="POST",
                                 headers={"Content-Type": ctype, "Authorization": f"Basic {auth}",
                                          "User-Agent": _UA})
    status, body = _http(req, 600)
    if 200 <= status < 300:
        return
    text = _plain(body)
    if status in (400, 409) and "exists" in text.lower():
        raise FileExistsError(text)
    if status in (401, 403):
        raise Transient(f"the index refused the upload token (HTTP {status})")
    raise PublishError(f"the index refused {dist.path.name} (HTTP {status}): {text}",
                       "fix what the index reports; the files it already accepted stay recorded")


def _load(record: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def pending(record: Path, repository: str, dists: list[Dist]) -> list[Dist]:
    """The files the record does not show on *repository* with these exact bytes."""
    done = _load(record).get(repository, {})
    return [d for d in dists if done.get(d.path.name) != d.sha256]


def _remember(record: Path, repository: str, dist: Dist) -> None:
    data = _load(record)
    data.setdefault(repository, {})[dist.path.name] = dist.sha256
    atomic_write(record, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _backoff() -> float:
    try:
        return max(0.0, float(os.environ.get("MOCHI_PUBLISH_BACKOFF", "1")))
    except ValueError:
        return 1.0


def upload_all(repository: str, name: str, version_at: str, dists: list[Dist], record: Path,
               configured: str = "", provider: Provider | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Upload every file of *dists* that is not yet on *repository*; the names uploaded now.

    :raises PublishError: no CI identity, a permanent refusal, or five failed attempts; the message lists what
        the index confirmed and what it did not.
    """
    todo = pending(record, repository, dists)
    if not todo:
        print(f"nothing new to upload: {', '.join(d.path.name for d in dists)} already on {repository} "
              f"(recorded in {record})")
        return []
    provider = provider or detect_provider()
    done: list[str] = []
    delay, last = _backoff(), ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            aud = audience(repository)
            token = _mint(repository, provider.token(aud), configured, name)
            for dist in list(todo):
                try:
                    _upload(repository, token, dist)
                except FileExistsError as exc:
                    raise PublishError(
                        f"the index already has a file named {dist.path.name} (HTTP 400/409 file exists: {exc}); "
                        f"an index takes each file name once" + (f"; uploaded now: {', '.join(done)}" if done else ""),
                        f"if it is this same build, nothing is left to do; otherwise raise [package].version "
                        f"({version_at}) and publish again") from None
                _remember(record, repository, dist)
                todo.remove(dist)
                done.append(dist.path.name)
                print(f"uploaded {dist.path.name} to {repository}")
            return done
        except Transient as exc:
            last = str(exc)
            if attempt < ATTEMPTS:
                print(f"attempt {attempt} of {ATTEMPTS} failed: {last}; retrying in {delay:g} s with a new OIDC token")
                sleep(delay)
                delay *= 2
    raise PublishError(
        f"the upload failed {ATTEMPTS} times (last: {last}); confirmed by the index: "
        f"{', '.join(done) or 'nothing'}; not uploaded: {', '.join(d.path.name for d in todo)}",
        "the identity service or the index is unavailable; run the release again later: files already "
        "confirmed are not sent again")
