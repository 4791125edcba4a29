"""A misbehaving index on 127.0.0.1 for the hostile tests: any route can serve raw JSON, endless or
trickled bytes, and the whole server can demand HTTP basic auth (it records what each request sent)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Route = Callable[[BaseHTTPRequestHandler], None]


def send(handler: BaseHTTPRequestHandler, body: bytes, ctype: str = "application/octet-stream", code: int = 200,
         length: bool = True) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not getattr(handler, "head", False):
        handler.wfile.write(body)


def json_page(files: list[dict[str, Any]]) -> Route:
    """A PEP 691 project page listing *files* exactly as given (hostile values included)."""
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "x", "files": files}).encode()
    return lambda h: send(h, body, "application/vnd.pypi.simple.v1+json")


def endless(prefix: bytes, limit: int = 64 << 20) -> Route:
    """*prefix*, then zeros until the client hangs up (or *limit*), with no Content-Length: a size that lies."""
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        sent, chunk = 0, b"\0" * 65536
        try:
            h.wfile.write(prefix)
            while sent < limit:
                h.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
    return route


def trickle(data: bytes, every: float = 0.25) -> Route:
    """*data* one byte every *every* seconds (with a true Content-Length): slow enough to never time out a read."""
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            for i in range(len(data)):
                h.wfile.write(data[i:i + 1])
                h.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
    return route


def index_routes(wheels: list[Path]) -> dict[str, Route]:
    """A well-behaved PEP 691 index of *wheels* (project pages and files), as routes."""
    from packaging.utils import parse_wheel_filename
    routes: dict[str, Route] = {}
    projects: dict[str, list[dict[str, Any]]] = {}
    for wheel in wheels:
        data = wheel.read_bytes()
        name = str(parse_wheel_filename(wheel.name)[0])
        projects.setdefault(name, []).append({"filename": wheel.name, "url": f"../../files/{wheel.name}",
                                              "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                                              "requires-python": ">=3.8", "size": len(data)})
        routes[f"/files/{wheel.name}"] = lambda h, data=data: send(h, data)
    for name, files in projects.items():
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files,
                           "versions": sorted({f["filename"].split("-")[1] for f in files})}).encode()
        routes[f"/simple/{name}/"] = lambda h, body=body: send(h, body, "application/vnd.pypi.simple.v1+json")
    return routes


@dataclass
class AServer:
    routes: dict[str, Route] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    """(user, password) every request must present (HTTP basic), else 401."""
    seen: list[tuple[str, str]] = field(default_factory=list)
    """(path, Authorization header) of every request."""
    base: str = ""

    def start(self) -> AServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.head = True
                self.do_GET()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                given = self.headers.get("Authorization", "")
                server.seen.append((path, given))
                if server.auth is not None:
                    token = base64.b64encode(f"{server.auth[0]}:{server.auth[1]}".encode()).decode()
                    if given != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="hostile"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                route = server.routes.get(path)
                if route is None:
                    send(self, b"not found", "text/plain", 404)
                else:
                    route(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
