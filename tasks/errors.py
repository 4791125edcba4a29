"""One exception hierarchy for every user-facing failure.

Each error says what went wrong, where, and what to do; :attr:`BridgeError.exit_code` follows
DESIGN §9 (1 = a check found drift, 2 = bad usage or input, including every failed lock).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AttestationFailed",
    "BridgeError",
    "CheckFailed",
    "FetchError",
    "GateFailed",
    "HashMismatch",
    "InterpreterNotFound",
    "Location",
    "ManifestError",
    "NotOnIndex",
    "Offline",
    "PublishError",
    "ResolveError",
    "SourceError",
    "StorageError",
    "SubprocessFailed",
    "UnsafeArchive",
    "redact_text",
    "storage_error",
]


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")


def redact_text(text: str) -> str:
    """*text* with the credentials of every URL in it masked (`https://***@host/`): a message that quotes a
    command or a URL never shows an index password."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)


class BridgeError(Exception):
    """Root of every error the tool reports to a user."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class Location:
    """A place in a user file, 1-based like compilers print it."""

    path: Path
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class ManifestError(BridgeError):
    """`mochi.toml` is malformed or holds a value the tool cannot use."""

    def __init__(self, where: Location, detail: str, hint: str = "") -> None:
        super().__init__(f"{where}: {detail}", hint)
        self.where = where
        self.detail = detail

    def __reduce__(self) -> tuple[type[ManifestError], tuple[Location, str, str]]:
        return (type(self), (self.where, self.detail, self.hint))


class SourceError(ManifestError):
    """An `import python` line in a `.mochi` file does not agree with the manifest."""


class InterpreterNotFound(BridgeError):
    """No interpreter satisfies `[python].requires-python`."""


class ResolveError(BridgeError):
    """The resolver could not produce a set of pins."""


class FetchError(BridgeError):
    """The index could not be read or did not offer a usable wheel."""


class NotOnIndex(FetchError):
    """The index answered that it has no such page (HTTP 404 or 410): a name it does not know."""


class Offline(FetchError):
    """The network was needed but is off (`--offline`) or did not answer: nothing could be verified."""


class HashMismatch(FetchError):
    """Downloaded bytes do not match the digest the index or the lock promised."""


class AttestationFailed(FetchError):
    """A file's PEP 740 provenance is missing where required, invalid, or signed by another identity."""


class UnsafeArchive(BridgeError):
    """A wheel holds a member the tool refuses to extract."""


class SubprocessFailed(BridgeError):
    """An external tool (uv, cmake, ninja, a compiler) exited non-zero."""

    def __init__(self, cmd: list[str], returncode: int, output: str, hint: str = "") -> None:
        tail = "\n".join(output.strip().splitlines()[-25:])
        # a command line may carry an index URL with credentials
        super().__init__(redact_text(f"command failed with exit code {returncode}: {' '.join(cmd)}\n{tail}"), hint)
        self.cmd = cmd
        self.returncode = returncode
        self.output = output

    def __reduce__(self) -> tuple[type[SubprocessFailed], tuple[list[str], int, str, str]]:
        return (type(self), (self.cmd, self.returncode, self.output, self.hint))


class CheckFailed(BridgeError):
    """The lock no longer matches reality (drift)."""

    exit_code = 1


class PublishError(BridgeError):
    """`mochi-py publish` could not build or upload the distribution."""


class GateFailed(BridgeError):
    """A pre-upload check of `mochi-py publish` failed: nothing was uploaded."""

    exit_code = 1


class StorageError(BridgeError):
    """A file or directory could not be written or read: a full disk, a read-only or unwritable place."""


def storage_error(exc: OSError) -> StorageError:
    """*exc* as a message that names the place and what to do, instead of a traceback."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = ("the disk is full: free space (`mochi-py clean --cache` empties the shared cache, MOCHI_CACHE_DIR "
                "moves it) and rerun")
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = ("make that place writable, or point MOCHI_CACHE_DIR at a writable directory if it is the shared "
                "cache")
    else:
        hint = "check that path and its permissions, then rerun"
    return StorageError(f"{where}{what}", hint)
