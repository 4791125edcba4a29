"""Read wheels defensively: member names are checked before anything is extracted or parsed.

A member with an absolute path, a `..` component, a symlink mode, or more than
:data:`MAX_MEMBER_BYTES` uncompressed is refused with :class:`UnsafeArchive`, and so is a wheel whose
members add up to more than the unpacked-size cap (`MOCHI_MAX_WHEEL_UNPACKED_BYTES`, :mod:`tasks.limits`):
a zip bomb never gets as far as the disk. `zipfile` stops each member at its declared size, so the
declared sizes bound what is read.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from packaging.metadata import Metadata

from ..context import LIMITS, limit
from ..errors import UnsafeArchive

__all__ = ["MAX_MEMBER_BYTES", "open_wheel", "read_member", "read_metadata", "safe_members"]

MAX_MEMBER_BYTES = 256 << 20


def safe_members(zf: zipfile.ZipFile, wheel: Path) -> list[zipfile.ZipInfo]:
    """Every member of *zf*, after checking that each is safe to extract."""
    out: list[zipfile.ZipInfo] = []
    total, cap = 0, int(limit("wheel-unpacked-bytes"))
    for info in zf.infolist():
        name = info.filename
        pure = PurePosixPath(name)
        if pure.is_absolute() or name.startswith("\\") or (pure.parts and ":" in pure.parts[0]):
            raise UnsafeArchive(f"{wheel.name}: member {name!r} has an absolute path", "do not use this wheel")
        if ".." in pure.parts or "\\" in name:
            raise UnsafeArchive(f"{wheel.name}: member {name!r} escapes the wheel root", "do not use this wheel")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"{wheel.name}: member {name!r} is a symlink", "do not use this wheel")
        if info.file_size > MAX_MEMBER_BYTES:
            raise UnsafeArchive(f"{wheel.name}: member {name!r} is {info.file_size} bytes, over the "
                                f"{MAX_MEMBER_BYTES} byte cap", "do not use this wheel")
        total += info.file_size
        if total > cap:
            raise UnsafeArchive(f"{wheel.name}: its members unpack to more than {cap} bytes (the cap of "
                                f"{LIMITS['wheel-unpacked-bytes'].env}; {len(out) + 1} of {len(zf.infolist())} "
                                "members counted)", "do not use this wheel, or raise the cap if it is genuine")
        out.append(info)
    return out


def read_metadata(wheel: Path) -> Metadata:
    """The core metadata of *wheel* (`*.dist-info/METADATA`)."""
    with open_wheel(wheel) as zf:
        members = safe_members(zf, wheel)
        meta = [m for m in members if m.filename.count("/") == 1 and m.filename.endswith(".dist-info/METADATA")]
        if len(meta) != 1:
            raise UnsafeArchive(f"{wheel.name}: expected one .dist-info/METADATA, found {len(meta)}")
        return Metadata.from_email(read_member(zf, meta[0], wheel), validate=False)


def open_wheel(wheel: Path) -> zipfile.ZipFile:
    """*wheel* as a zip archive, or :class:`UnsafeArchive` when it is not one."""
    try:
        return zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"{wheel.name} is not a readable wheel: {exc}", "delete it from the cache and lock again"
                            ) from None


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, wheel: Path) -> bytes:
    """One member's bytes; a corrupt member (bad CRC, truncated data) is :class:`UnsafeArchive`."""
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UnsafeArchive(f"{wheel.name}: member {info.filename!r} is corrupt: {exc}",
                            "delete it from the cache and lock again") from None
