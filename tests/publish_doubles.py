"""The only doubles of the publish tests: the CI's OIDC issuer and the index's token service.

Neither can run here (GitHub's and GitLab's token services, the index's Trusted Publishing), so a
loopback server stands in for both and checks what the real ones check: the token's signature,
audience, expiry and single use (its `jti`), its claims against the registered trusted publisher,
and, on upload, that the `__token__` credential is a minted token, unexpired, for that project.
Accepted uploads are forwarded byte for byte to a real `pypiserver` on 127.0.0.1, which stores and
serves them. Faults are injected per call so retries can be tested.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PyPIServer:
    """A real pypiserver (from PyPI) on 127.0.0.1, open for upload, serving *packages*."""

    def __init__(self, packages: Path) -> None:
        self.packages = packages
        packages.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        log = packages.parent / f"pypiserver-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
             "--disable-fallback", "--log-file", str(log), str(packages)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}simple/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pypiserver did not start")

    def files(self) -> list[str]:
        return sorted(p.name for p in self.packages.iterdir() if p.is_file())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@dataclass
class TrustedPublishing:
    """The loopback OIDC issuer (GitHub Actions' token service) and the index's mint endpoint and upload gate."""

    upstream: str
    """The real index (pypiserver) that stores accepted uploads."""
    audience: str = "pypi"
    project: str = "mochi-hello"
    publisher: dict[str, str] = field(default_factory=lambda: {"repository": "mochi/hello",
                                                                "workflow_ref": "mochi/hello/.github/workflows/"
                                                                                "release.yml@refs/tags/v0.1.0"})
    """The trusted publisher registered for *project*: claims a token must carry."""
    claims: dict[str, str] = field(default_factory=lambda: {"repository": "mochi/hello",
                                                             "workflow_ref": "mochi/hello/.github/workflows/"
                                                                             "release.yml@refs/tags/v0.1.0",
                                                             "ref": "refs/tags/v0.1.0", "environment": "pypi"})
    """The claims the issuer puts into the tokens it hands the CI job."""
    request_token: str = field(default_factory=lambda: secrets.token_hex(16))
    issuer_faults: list[object] = field(default_factory=list)
    """Per token request, in order: an HTTP status to fail with, or "expired" for a token already expired."""
    mint_faults: list[int | None] = field(default_factory=list)
    """Per mint request: an HTTP status to fail with, or None to answer normally."""
    upload_faults: dict[str, list[int]] = field(default_factory=dict)
    """file name -> HTTP statuses for its next upload attempts."""
    issued: list[dict[str, Any]] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)
    """jti of each OIDC token exchanged for an upload token."""
    uploads: list[dict[str, list[str]]] = field(default_factory=list)
    """The form fields (not the file) of each upload forwarded to the index."""
    requests: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    """Every credential handed out (OIDC tokens, upload tokens): none may show up in output or on disk."""

    def __post_init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._used: set[str] = set()
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    # -- the issuer -------------------------------------------------------------------------------------------
    def jwt(self, audience: str, ttl: float = 300, **extra: str) -> str:
        now = time.time()
        claims = {"iss": self.url.rstrip("/"), "sub": f"repo:{self.claims['repository']}:ref:{self.claims['ref']}",
                  "aud": audience, "iat": int(now), "nbf": int(now) - 5, "exp": int(now + ttl),
                  "jti": secrets.token_hex(8), **self.claims, **extra}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        self.issued.append(claims)
        self.secrets.append(f"{head}.{body}.{sig}")
        return self.secrets[-1]

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """What a relying party checks of an OIDC token: signature, audience, time, single use."""
        try:
            head, body, sig = token.split(".")
            want = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
            claims: dict[str, Any] = json.loads(_unb64(body))
        except ValueError:
            raise _Refusal(422, "invalid-token", "malformed token") from None
        if not hmac.compare_digest(sig, want):
            raise _Refusal(422, "invalid-token", "bad signature")
        if claims.get("aud") != audience:
            raise _Refusal(422, "invalid-token", f"audience {claims.get('aud')!r} is not {audience!r}")
        if not claims.get("nbf", 0) <= time.time() < claims.get("exp", 0):
            raise _Refusal(422, "invalid-token", "token expired")
        with self._lock:
            if claims["jti"] in self._used:
                raise _Refusal(409, "invalid-token", "token has already been used")
            self._used.add(claims["jti"])
        return claims

    def env(self) -> dict[str, str]:
        """The variables a GitHub Actions job with `id-token: write` has."""
        self.secrets.append(self.request_token)
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}oidc/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token, "GITHUB_ACTIONS": "true"}

    # -- the server -------------------------------------------------------------------------------------------
    def start(self) -> TrustedPublishing:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, data: object) -> None:
                self._send(code, json.dumps(data).encode())

            def do_GET(self) -> None:
                double.requests.append(f"GET {self.path}")
                url = urlsplit(self.path)
                if url.path == "/_/oidc/audience":
                    self._json(200, {"audience": double.audience})
                elif url.path == "/oidc/token":
                    if self.headers.get("Authorization") != f"bearer {double.request_token}":
                        self._json(401, {"message": "bad request token"})
                        return
                    fault = double.issuer_faults.pop(0) if double.issuer_faults else None
                    if isinstance(fault, int):
                        self._json(fault, {"message": "injected"})
                        return
                    aud = parse_qs(url.query).get("audience", [""])[0]
                    self._json(200, {"value": double.jwt(aud, ttl=-10 if fault == "expired" else 300)})
                else:
                    self._json(404, {"message": "not found"})

            def do_POST(self) -> None:
                double.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/_/oidc/mint-token":
                    self._mint(body)
                elif self.path == "/legacy/":
                    self._upload(body)
                else:
                    self._json(404, {"message": "not found"})

            def _mint(self, body: bytes) -> None:
                fault = double.mint_faults.pop(0) if double.mint_faults else None
                if fault is not None:
                    self._json(fault, {"message": "injected"})
                    return
                try:
                    claims = double.verify(json.loads(body)["token"], double.audience)
                except _Refusal as r:
                    self._json(r.status, {"message": "Token request failed",
                                          "errors": [{"code": r.code, "description": r.text}]})
                    return
                mismatch = {k: v for k, v in double.publisher.items() if claims.get(k) != v}
                if mismatch:
                    self._json(403, {"message": "Token request failed", "errors": [{
                        "code": "invalid-publisher", "description": "valid token, but no corresponding publisher"}]})
                    return
                token = f"pypi-{secrets.token_urlsafe(24)}"
                double._tokens[token] = (time.time() + 900, double.project)
                double.secrets.append(token)
                double.minted.append(claims["jti"])
                self._json(200, {"success": True, "token": token, "expires": int(time.time() + 900)})

            def _upload(self, body: bytes) -> None:
                auth = self.headers.get("Authorization", "")
                user, _, token = _unb64(auth.removeprefix("Basic ")).decode().partition(":") if auth else ("", "", "")
                fields = _form_fields(body, self.headers.get("Content-Type", ""))
                expires, project = double._tokens.get(token, (0.0, ""))
                name = (fields.get("name") or [""])[0]
                if user != "__token__" or time.time() >= expires or _norm(project) != _norm(name):
                    self._json(403, {"message": "Invalid or non-existent authentication information."})
                    return
                filename = (fields.get("content_filename") or [""])[0]
                faults = double.upload_faults.get(filename)
                if faults:
                    self._json(faults.pop(0), {"message": "injected"})
                    return
                req = urllib.request.Request(double.upstream, data=body, method="POST",
                                             headers={"Content-Type": self.headers["Content-Type"]})
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        code, answer = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    code, answer = exc.code, exc.read()
                if 200 <= code < 300:
                    double.uploads.append(fields)
                self._send(code, answer, "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def repository(self) -> str:
        return f"{self.url}legacy/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Refusal(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _form_fields(body: bytes, ctype: str) -> dict[str, list[str]]:
    """The text fields of a multipart form, and the upload's file name as `content_filename`."""
    boundary = ctype.split("boundary=", 1)[-1].encode()
    out: dict[str, list[str]] = {}
    for part in body.split(b"--" + boundary):
        head, _, value = part.partition(b"\r\n\r\n")
        m = re.search(rb'name="([^"]+)"(?:; filename="([^"]+)")?', head)
        if not m:
            continue
        if m[2]:
            out.setdefault("content_filename", []).append(m[2].decode())
            out.setdefault("content_sha256", []).append(hashlib.sha256(value[:-2]).hexdigest())
        else:
            out.setdefault(m[1].decode(), []).append(value[:-2].decode())
    return out


class OfflineSigner:
    """The signer boundary's double: asks the CI for a `sigstore` token like the real signer (checked by the
    issuer double), and returns a PEP 740 attestation object whose statement is the real PyPI publish
    statement about the file. It cannot get a Fulcio certificate or a Rekor entry; those stay stand-ins."""

    def __init__(self, provider: Any, issuer: TrustedPublishing) -> None:
        self.provider, self.issuer = provider, issuer
        self.signed: list[str] = []

    def sign(self, dist: Path) -> dict[str, Any]:
        from pypi_attestations import AttestationType
        if not self.signed:  # one identity token and certificate sign the whole release, as with sigstore
            self.issuer.verify(self.provider.token("sigstore"), "sigstore")
        statement = {"_type": "https://in-toto.io/Statement/v1",
                     "subject": [{"name": dist.name,
                                  "digest": {"sha256": hashlib.sha256(dist.read_bytes()).hexdigest()}}],
                     "predicateType": AttestationType.PYPI_PUBLISH_V1.value, "predicate": None}
        payload = json.dumps(statement, sort_keys=True).encode()
        self.signed.append(dist.name)
        return {"version": 1,
                "verification_material": {"certificate": base64.b64encode(b"offline double").decode(),
                                          "transparency_entries": [{"logIndex": "0", "kindVersion": {"kind": "dsse"}}]},
                "envelope": {"statement": base64.b64encode(payload).decode(),
                             "signature": base64.b64encode(hmac.new(b"k", payload, hashlib.sha256).digest()).decode()}}


def clean_pip_env(**extra: str) -> dict[str, str]:
    """pip with no configuration at all (this machine's pip.conf names local mirrors)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def copy_dists(paths: list[Path], into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, into / p.name)) for p in paths]
