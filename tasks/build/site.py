"""Install the locked wheels into `python_wrap/site-packages/`, so a wrapper finds the package it wraps.

Installation is a real one (uv, or pip when uv is unavailable, from the verified cached wheels only:
no index, no dependencies), into a fresh directory that then replaces the old one, so a failed
install never leaves a half-populated tree. Each wheel is hashed again right before it is installed
(a cached wheel swapped since the fetch is refused, never installed), and the installed tree must be
exactly what the wheels' RECORDs say (`verify.site_problems`) before it replaces the old one: uv
installs from its own cache of unpacked wheels, so when that does not verify the install is redone
without it, and fails if it still does not.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..cache import digest_file, user_mode
from ..codegen.wrapdir import SITE_DIR
from ..errors import BridgeError, HashMismatch
from ..run import run
from .verify import Problem, pyc_problems, site_problems
from .wrapdir import swap_in

__all__ = ["MARKER", "SITE_DIR", "install_site"]

MARKER = ".mochi-site.json"


def install_site(wheels: list[Path], interpreter: str, python_version: tuple[int, int, int], dest: Path,
                 cache: Path, blake3s: list[str] | None = None) -> None:
    """Install *wheels* (whose BLAKE3s, when given, are *blake3s*) as *dest*, verified, replacing it whole.

    :raises HashMismatch: a wheel's bytes are not the fetched ones; nothing was installed.
    :raises BridgeError: the installed tree does not match the wheels' RECORDs; the old tree was kept.
    """
    for wheel, want in zip(wheels, blake3s, strict=True) if blake3s is not None else ():
        got = digest_file(wheel).blake3
        if got != want:
            raise HashMismatch(f"{wheel}: the cached wheel has blake3 {got}, but {want} was fetched and verified",
                               "the cache was changed since; nothing was installed. Run `mochi-py lock` again: "
                               "the wheel is fetched anew")
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
                # unpacked afresh, outside uv's cache
                again = [*(("copy" if a == "hardlink" else a) for a in cmd[:cmd.index("--cache-dir")]), "--no-cache",
                         *files]
            except ResolveError:
                cmd = [*pip_command(interpreter, python_version), "install", "--isolated", "--target", str(tmp),
                       "--no-index", "--no-deps", "--quiet", *files]
                again = []
            run(cmd, hint=hint)
            problems = _problems(tmp, wheels, interpreter)
            if problems and again:  # uv's unpacked copy of a wheel was changed: unpack the wheels afresh
                shutil.rmtree(tmp)
                tmp.mkdir()
                run(again, hint=hint)
                problems = _problems(tmp, wheels, interpreter)
            if problems:
                raise BridgeError("the installed wheels are not what their RECORDs say:\n"
                                  + "\n".join(f"  {p}" for p in problems[:20]),
                                  "a wheel's RECORD does not match its files, or the installer's cache was changed; "
                                  "nothing was replaced. Clear the cache (`mochi-py clean --cache`) and lock again")
        # The marker is the task's target: it exists only once the whole tree is in place.
        (tmp / MARKER).write_text(json.dumps(sorted(Path(w).name for w in wheels)) + "\n", encoding="utf-8")
        swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _problems(tree: Path, wheels: list[Path], interpreter: str) -> list[Problem]:
    return site_problems(tree, wheels) + pyc_problems(tree, interpreter, "site-packages")
