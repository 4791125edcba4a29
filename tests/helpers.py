"""Test helpers: build real wheels from fixture directories and serve them from a real PEP 691 index."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

REPO = Path(__file__).resolve().parent.parent
PACKAGES = Path(__file__).resolve().parent / "packages"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out_dir: Path, name: str, version: str, files: dict[str, bytes], requires: tuple[str, ...] = (),
                tag: str = "py3-none-any", extra_members: list[zipfile.ZipInfo] | None = None,
                extras: tuple[str, ...] = ()) -> Path:
    """A real, deterministic wheel (METADATA, WHEEL, RECORD) holding *files*."""
    dist = f"{name.replace('-', '_')}-{version}"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n"
    meta += "".join(f"Provides-Extra: {e}\n" for e in extras)
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    all_files = {**files, f"{dist}.dist-info/METADATA": meta.encode(),
                 f"{dist}.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: mochi-tests\nRoot-Is-Purelib: true\n"
                                            f"Tag: {tag}\n".encode()}
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in sorted(all_files.items()))
    all_files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in sorted(all_files.items()):
            info = zipfile.ZipInfo(p, _EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, d)
        for info in extra_members or []:
            zf.writestr(info, b"x")
    return path


def package_files(name: str) -> dict[str, bytes]:
    root = PACKAGES / name
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@dataclass
class FixtureIndex:
    """A PEP 691/503 simple index on 127.0.0.1 serving the wheels it was given, byte for byte."""

    files: dict[str, bytes] = field(default_factory=dict)
    overrides: dict[str, bytes] = field(default_factory=dict)
    """filename -> bytes served instead of the listed ones (tampering)."""
    yanked: dict[str, str] = field(default_factory=dict)
    """filename -> yank reason (PEP 592)."""
    failures: dict[str, int] = field(default_factory=dict)
    """request path -> HTTP status served instead (error injection)."""
    provenance: dict[str, bytes] = field(default_factory=dict)
    """filename -> PEP 740 provenance object, listed per file (JSON `provenance`, HTML `data-provenance`) and
    served at the integrity API's path; a file may be an sdist."""
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def metadata(self, filename: str) -> bytes:
        """PEP 658: the wheel's METADATA, served beside it."""
        import io
        with zipfile.ZipFile(io.BytesIO(self.files[filename])) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return zf.read(name)

    def add(self, wheel: Path) -> None:
        self.files[wheel.name] = wheel.read_bytes()

    def start(self) -> None:
        index = self

        class Handler(BaseHTTPRequestHandler):
            # headers and body go out in separate writes: without TCP_NODELAY each response waits out
            # a delayed ACK (~40 ms), which makes a 50-package resolution look ten times slower than it is
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                self.head = head
                index.requests.append(self.path)
                if self.path in index.failures:
                    self._send(index.failures[self.path], "text/plain", b"injected failure")
                    return
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if len(parts) == 2 and parts[0] == "files" and parts[1].endswith(".metadata") \
                        and parts[1][: -len(".metadata")] in index.files:
                    self._send(200, "application/octet-stream", index.metadata(parts[1][: -len(".metadata")]))
                elif len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
                    self._send(200, "application/octet-stream", index.overrides.get(parts[1], index.files[parts[1]]))
                elif len(parts) == 2 and parts[0] == "simple":
                    self._project(canonicalize_name(parts[1]))
                elif len(parts) == 5 and parts[0] == "integrity" and parts[4] == "provenance" \
                        and parts[3] in index.provenance:
                    self._send(200, "application/vnd.pypi.integrity.v1+json", index.provenance[parts[3]])
                elif parts == ["simple"]:
                    self._root()
                else:
                    self._send(404, "text/plain", b"not found")

            def _root(self) -> None:
                """PEP 691/503 root: every project the index serves."""
                names = sorted({str(parse_wheel_filename(f)[0]) for f in index.files})
                if "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
                    body = json.dumps({"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]})
                    self._send(200, "application/vnd.pypi.simple.v1+json", body.encode())
                else:
                    links = "".join(f'<a href="{n}/">{n}</a>\n' for n in names)
                    self._send(200, "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode())

            def _project(self, name: str) -> None:
                mine = sorted(f for f in index.files if _dist_name(f)[0] == name)
                if not mine:
                    self._send(404, "text/plain", b"no such project")
                    return
                entries = []
                for f in mine:
                    entry = {"filename": f, "url": f"../../files/{f}",
                             "hashes": {"sha256": hashlib.sha256(index.files[f]).hexdigest()},
                             "requires-python": ">=3.8", "size": len(index.files[f]),
                             "yanked": index.yanked.get(f, False)}
                    if f.endswith(".whl"):
                        entry["core-metadata"] = {"sha256": hashlib.sha256(index.metadata(f)).hexdigest()}
                    if f in index.provenance:
                        entry["provenance"] = f"../../integrity/{name}/{_dist_name(f)[1]}/{f}/provenance"
                    entries.append(entry)
                if "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
                    body = json.dumps({"meta": {"api-version": "1.3" if index.provenance else "1.1"}, "name": name,
                                       "files": entries, "versions": sorted({_dist_name(f)[1] for f in mine})})
                    self._send(200, "application/vnd.pypi.simple.v1+json", body.encode())
                else:
                    links = "".join(f'<a href="{e["url"]}#sha256={e["hashes"]["sha256"]}" '
                                    f'data-requires-python="{html.escape(">=3.8")}"'
                                    + (f' data-yanked="{html.escape(str(e["yanked"]))}"' if e["yanked"] else "")
                                    + (f' data-provenance="{html.escape(str(e["provenance"]))}"'
                                       if "provenance" in e else "")
                                    + f'>{e["filename"]}</a>\n' for e in entries)
                    self._send(200, "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not self.head:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dist_name(filename: str) -> tuple[str, str]:
    """(canonical project name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return str(name), str(version)


def fixture_index(wheels: list[Path]) -> FixtureIndex:
    idx = FixtureIndex()
    for wheel in wheels:
        idx.add(wheel)
    idx.start()
    return idx


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file under *root* (for proving a command wrote nothing)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_project(root: Path, deps: str, index_url: str, python: str = "") -> Path:
    """A Mochi project at *root* depending on *deps* (manifest lines) from the index at *index_url*."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mochi.toml").write_text(f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\n'
                                     f'indexes = [{{ url = "{index_url}" }}]\n{python}')
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mochi-py ARGS` in a fresh process (the way a user runs it)."""
    return subprocess.run([sys.executable, "-m", "tasks", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)


def executed_tasks(output: str) -> set[str]:
    """Names of the tasks doit ran (`.  name`), as opposed to skipped (`-- name`)."""
    return {line[3:].strip() for line in output.splitlines() if line.startswith(".  ")}


def skipped_tasks(output: str) -> set[str]:
    return {line[3:].strip() for line in output.splitlines() if line.startswith("-- ")}
