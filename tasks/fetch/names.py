""""Did you mean": the names an index knows, for a package name it does not.

Asked only after a name failed: the project page answers 404, then the index's root page (PEP 691
`projects`, or the PEP 503 anchors) gives the candidates. The list is cached for a day under
`<cache>/index-names/`, so a second typo costs nothing; on a large public index the first one downloads
the whole name list (tens of MB).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from pathlib import Path

from packaging.utils import canonicalize_name

from ..cache import atomic_write
from ..errors import FetchError, NotOnIndex
from ..resolve.urls import public_url
from .index import _Anchors, fetch_project, open_url

__all__ = ["closest", "project_names", "unknown_projects"]

_ROOT_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_MAX_AGE = 24 * 3600


def project_names(index_url: str, cache: Path) -> list[str]:
    """Every project name the index lists at its root (cached a day)."""
    memo = cache / "index-names" / (hashlib.sha256(index_url.encode()).hexdigest()[:24] + ".json")
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
        if data["url"] == public_url(index_url) and time.time() - float(data["fetched"]) < _MAX_AGE:
            return list(data["names"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stream, ctype, _ = open_url(index_url, _ROOT_ACCEPT)
    with stream:
        body = stream.read()
    if "json" in ctype:
        names = [str(p["name"]) for p in json.loads(body).get("projects", []) if isinstance(p, dict) and "name" in p]
    else:
        parser = _Anchors()
        parser.feed(body.decode("utf-8", "replace"))
        names = [str(a.get("href") or "").rstrip("/").rsplit("/", 1)[-1] for a in parser.anchors if a.get("href")]
    names = sorted({canonicalize_name(n) for n in names if n})
    atomic_write(memo, json.dumps({"url": public_url(index_url), "fetched": time.time(), "names": names}).encode())
    return names


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates nearest to *name* (canonical forms compared)."""
    return difflib.get_close_matches(canonicalize_name(name), candidates, n=n, cutoff=0.75)


def unknown_projects(names: list[str], indexes: list[str], cache: Path) -> dict[str, list[str]]:
    """The *names* no index has, each with its closest known names; indexes that do not answer are skipped."""
    out: dict[str, list[str]] = {}
    for name in names:
        missing = 0
        for url in indexes:
            try:
                fetch_project(url, name)
            except NotOnIndex:
                missing += 1
            except FetchError:
                continue
            else:
                break
        if indexes and missing == len(indexes):
            suggestions: list[str] = []
            for url in indexes:
                try:
                    suggestions += closest(name, project_names(url, cache))
                except (FetchError, ValueError):
                    continue
            out[name] = sorted(set(suggestions), key=suggestions.index)[:3]
    return out
