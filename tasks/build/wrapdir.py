"""How a wrapper gets into `python_wrap/<dist>/` (codegen.wrapdir names it): whole.

A distribution's wrapper is assembled in `.mochi/deps/<dist>/wrap/` (codegen writes the shim, the externs and
SKIPPED.txt there; compile adds the module) and only then published: copied into a fresh directory beside the
old one and swapped in with two renames, so a failed or killed lock never leaves a wrapper half-written, or a
new shim next to an old module.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..cache import user_mode

__all__ = ["publish_wrapper", "swap_in"]


def publish_wrapper(staged: Path, dest: Path) -> None:
    """Replace *dest* by the files of *staged* (hardlinked where the file system allows, else copied)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed mid-swap
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        tmp.chmod(user_mode(directory=True))
        for f in sorted(staged.iterdir()):
            if f.is_file():
                try:
                    os.link(f, tmp / f.name)
                except OSError:
                    shutil.copy2(f, tmp / f.name)
        swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished directory *tmp* where *dest* is, with two renames (the old tree goes last)."""
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
