"""Install the locked wheels into `python_wrap/site-packages/`, so a wrapper finds the package it wraps.

Installation is a real one (uv, from the verified cached wheels only: `--no-index --offline
--no-deps`), into a fresh directory that then replaces the old one, so a failed install never
leaves a half-populated tree.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ._run import run
from .resolve import find_uv

__all__ = ["SITE_DIR", "install_site"]

SITE_DIR = "site-packages"


def install_site(wheels: list[Path], interpreter: str, dest: Path, cache: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        if wheels:
            run([find_uv(), "pip", "install", "--target", str(tmp), "--python", interpreter, "--no-index",
                 "--offline", "--no-deps", "--no-config", "--no-python-downloads", "--quiet",
                 "--link-mode", "copy", "--cache-dir", str(cache / "uv"), *map(str, sorted(wheels))],
                hint="the locked wheels could not be installed next to the wrappers")
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
