"""`python_wrap/<dist>/`: which directory a distribution's wrapper lives in.

Next to the wrappers, `python_wrap/site-packages/` holds the installed locked wheels (build.site); a distribution
of that name must not share it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SITE_DIR", "WRAP_DIR", "wrapper_dir", "wrapper_dir_name"]

WRAP_DIR = "python_wrap"
SITE_DIR = "site-packages"
"""The installed locked wheels, `python_wrap/site-packages/` (the wrapper runtime adds `../site-packages`)."""


def wrapper_dir_name(dist: str) -> str:
    """The directory of *dist* (canonical) under `python_wrap/`. A distribution named like the installed-packages
    directory (`site-packages`) gets `_site-packages`: a leading `_` is never in a canonical name, so nothing else
    can take it."""
    return f"_{dist}" if dist == SITE_DIR else dist


def wrapper_dir(root: Path, dist: str) -> Path:
    return root / WRAP_DIR / wrapper_dir_name(dist)
