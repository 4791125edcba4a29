"""Resolve the manifest's requirements to exact pins with uv (DESIGN §4).

uv runs as a subprocess against the target interpreter with `--no-python-downloads` and
`--no-config`, so it never fetches an interpreter or reads a user's uv settings; its PEP 751
output is read with `packaging.pylock`. The pip fallback arrives with issue 3.
"""

from __future__ import annotations

import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from ._run import run
from .errors import ResolveError, SubprocessFailed
from .manifest import Manifest

__all__ = ["Pin", "find_uv", "resolve_with_uv"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    name: str
    version: str
    direct: bool


def find_uv() -> str:
    try:
        from uv import find_uv_bin
        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ResolveError("uv is not installed", "install mochi-pybridge with its dependencies "
                           "(pip install mochi-pybridge)") from None


def resolve_with_uv(manifest: Manifest, interpreter: str, index_url: str, cache_dir: Path) -> list[Pin]:
    """Pins for every package the manifest needs, direct and transitive, sorted by name."""
    reqs = "".join(f"{d.requirement}\n" for d in manifest.dependencies)
    with tempfile.TemporaryDirectory(prefix="mochi-resolve-") as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text(reqs, encoding="utf-8")
        out = Path(tmp) / "pylock.toml"
        cmd = [find_uv(), "pip", "compile", str(req_in), "--format", "pylock.toml", "-o", str(out),
               "--python", interpreter, "--no-python-downloads", "--no-config", "--default-index", index_url,
               "--only-binary", ":all:", "--quiet", "--no-header", "--cache-dir", str(cache_dir / "uv")]
        try:
            run(cmd, hint="uv could not resolve the requirements of mochi.toml; see its message above")
        except SubprocessFailed as exc:
            raise ResolveError(f"resolution failed for {', '.join(d.requirement for d in manifest.dependencies)}"
                               f":\n{exc.output.strip()}",
                               "check the constraints in mochi.toml and that the index serves them") from None
        try:
            lock = Pylock.from_dict(tomllib.loads(out.read_text(encoding="utf-8")))
        except (PylockValidationError, tomllib.TOMLDecodeError) as exc:
            raise ResolveError(f"uv wrote a pylock.toml that does not validate: {exc}") from None
    direct = {d.name for d in manifest.dependencies}
    pins = [Pin(name=canonicalize_name(p.name), version=str(p.version), direct=canonicalize_name(p.name) in direct)
            for p in lock.packages if p.version is not None]
    return sorted(pins, key=lambda p: p.name)
