"""Stub stage: find the typed surface a wheel ships (PEP 561) and copy it out as a document set.

This tier reads inline types: a top-level package with a `py.typed` marker contributes its `.pyi`
files, and its annotated `.py` files where no `.pyi` sits beside them. The `-stubs`, typeshed and
stubgen tiers of DESIGN §5 come with issue 4; a wheel without a marker gets provenance `none` and
every item is reported as `NoStubs`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from .wheel import open_wheel, read_member, safe_members

__all__ = ["StubSet", "extract_stubs", "stub_digest", "top_level_names"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StubSet:
    provenance: str
    """`py.typed`, or `none` when the wheel ships no types."""
    modules: list[str]
    """Top-level import names of the distribution, sorted."""
    files: list[str]
    """Paths of the stub documents, relative to the stub directory, sorted."""
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def top_level_names(names: list[str]) -> list[str]:
    """Import names a wheel provides at its root: packages (with `__init__`) and single modules."""
    tops: set[str] = set()
    for name in names:
        parts = PurePosixPath(name).parts
        if not parts or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1 and parts[0].endswith((".py", ".pyi")):
            tops.add(parts[0].rsplit(".", 1)[0])
        elif len(parts) == 2 and parts[1] in ("__init__.py", "__init__.pyi"):
            tops.add(parts[0])
    return sorted(t for t in tops if t.isidentifier())


def stub_digest(root: Path, files: list[str]) -> str:
    """SHA-256 over the sorted (path, content digest) pairs of the document set."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def extract_stubs(wheel: Path, dest: Path) -> StubSet:
    """Copy the typed documents of *wheel* into *dest* (replaced whole, atomically)."""
    with open_wheel(wheel) as zf:
        members = {m.filename: m for m in safe_members(zf, wheel) if not m.is_dir()}
        tops = top_level_names(list(members))
        typed = [t for t in tops if f"{t}/py.typed" in members]
        chosen: dict[str, zipfile.ZipInfo] = {}
        for name, info in members.items():
            parts = PurePosixPath(name).parts
            if parts[0] not in typed or not name.endswith((".py", ".pyi")):
                continue
            if name.endswith(".py") and f"{name}i" in members:
                continue  # the .pyi beside it is the authority (PEP 561)
            chosen[name] = info
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        try:
            for name, info in sorted(chosen.items()):
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(read_member(zf, info, wheel))
            files = sorted(chosen)
            digest = stub_digest(tmp, files)
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return StubSet(provenance="py.typed" if typed else "none", modules=tops, files=files, sha256=digest)
