"""Install the locked wheels into `python_wrap/site-packages/`, so a wrapper finds the package it wraps.

Installation is a real one (uv, or pip when uv is unavailable, from the verified cached wheels only:
no index, no dependencies), into a fresh directory that then replaces the old one, so a failed
install never leaves a half-populated tree.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..cache import user_mode
from ..codegen.wrapdir import SITE_DIR
from ..run import run

__all__ = ["MARKER", "SITE_DIR", "install_site"]

MARKER = ".mochi-site.json"


def install_site(wheels: list[Path], interpreter: str, python_version: tuple[int, int, int], dest: Path,
                 cache: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed mid-install
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    tmp.chmod(user_mode(directory=True))  # mkdtemp makes 0700: the tree is the user's, readable as they choose
    from ..errors import ResolveError
    from ..resolve.resolver import find_uv, pip_command
    hint = "the locked wheels could not be installed next to the wrappers"
    try:
        if wheels:
            files = [str(w) for w in sorted(wheels)]
            try:
                # hardlinks from uv's cache, as uv links its own environments (a copy when the cache is
                # on another file system): installing creates directories, not file contents
                cmd = [find_uv(), "pip", "install", "--target", str(tmp), "--python", interpreter, "--no-index",
                       "--offline", "--no-deps", "--no-config", "--no-python-downloads", "--quiet",
                       "--link-mode", "hardlink", "--cache-dir", str(cache / "uv"), *files]
            except ResolveError:
                cmd = [*pip_command(interpreter, python_version), "install", "--isolated", "--target", str(tmp),
                       "--no-index", "--no-deps", "--quiet", *files]
            run(cmd, hint=hint)
        # The marker is the task's target: it exists only once the whole tree is in place.
        (tmp / MARKER).write_text(json.dumps(sorted(Path(w).name for w in wheels)) + "\n", encoding="utf-8")
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
