"""PEP 740 in the lock: what `lock` says about each package's publisher, what `report` lists, and
what `check` re-verifies (R10).

`check` asks the index for the release's files again and verifies their provenance offline, against
the trusted publisher of `mochi.toml`, else the publisher the lock recorded; when the index cannot be
reached it re-verifies the provenance objects the lock recorded from the cache (kept there by their
SHA-256), so the signatures are checked without any network.
"""

from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..errors import AttestationFailed, BridgeError
from ..fetch.attest import AttestedFile, checked_files, fetch_provenance, provenance_path, verify_provenance
from ..fetch.index import IndexFile
from ..resolve.publishers import parse_publisher
from .lockfile import LockEntry

__all__ = ["attestation_drifts", "attestation_lines", "lock_notes"]


def lock_notes(entries: list[LockEntry], ctx: Context) -> list[str]:
    """What the lock prints about provenance: missing (a warning), verified, and verified against the index's word."""
    missing, verified, untrusted = [], [], []
    for e in entries:
        if e.source_kind != "index":
            continue
        _, trusted = ctx.attestation_policy(e.name)
        wheel = e.wheel_attestation
        sdist = [a for a in e.attestations if a.file != e.wheel_filename]
        if wheel is None:
            also = f" (its sdist is attested by {sdist[0].publisher})" if sdist else ""
            missing.append(f"{e.name} {e.version}{also}")
        else:
            verified.append(f"{e.name} {e.version} by {wheel.publisher}")
        if not trusted and e.attestations:
            who = e.attestations[0].publisher
            untrusted.append(f"note: {e.name}: verified against {who}, the publisher its provenance names; to "
                             f'require it, add "{e.name}" = "{who}" to [python].trusted-publishers')
    out = []
    if verified:
        out.append(f"attested (PEP 740, verified offline): {', '.join(verified)}")
    out += untrusted
    if missing:
        out.append(f"warning: no PEP 740 provenance for the installed wheel of {', '.join(missing)}: who published "
                   "them is not verified (list them in [python].require-attestations to make this an error)")
    return out


def attestation_lines(entries: list[LockEntry]) -> list[str]:
    """`mochi-py report`: one line per locked package, who published it."""
    out = []
    for e in sorted(entries, key=lambda e: e.name):
        if e.source_kind != "index":
            out.append(f"{e.name} {e.version}: built from a {e.source_kind} source (no provenance)")
            continue
        files = [f"{a.file} by {a.publisher}" for a in sorted(e.attestations, key=lambda a: a.file != e.wheel_filename)]
        if e.wheel_attestation is None:
            files.insert(0, f"{e.wheel_filename} not attested")
        out.append(f"{e.name} {e.version}: " + "; ".join(files))
    return out


def attestation_drifts(entry: LockEntry, listed: list[IndexFile] | None, ctx: Context
                       ) -> list[tuple[str, str, str]]:
    """(field, locked, actual) for each way the release's provenance no longer matches the lock.

    *listed* is the index's file list for the package, or None when the index could not be asked.
    """
    required, trusted = ctx.attestation_policy(entry.name)
    locked = {a.file: a for a in entry.attestations}
    actual: dict[str, AttestedFile | str] = {}
    if listed is not None:
        for f in checked_files(listed, entry.name, entry.wheel_filename):
            expected = trusted or _recorded(locked.get(f.filename))
            if not f.provenance:
                continue
            try:
                actual[f.filename] = verify_provenance(f.filename, f.sha256, fetch_provenance(f),
                                                       parse_publisher(expected) if expected else None)
            except AttestationFailed as exc:
                actual[f.filename] = f"invalid: {exc.message}"
    else:
        for a in entry.attestations:
            actual[a.file] = _offline(a, Path(ctx.cache), trusted)
    out = []
    for file in sorted(set(locked) | set(actual)):
        was, now = locked.get(file), actual.get(file)
        was_pub = was.publisher if was else ""
        now_pub = now.publisher if isinstance(now, AttestedFile) else (now or "")
        if was_pub != now_pub:
            out.append((f"attestation-publisher ({file})", was_pub, now_pub))
        elif isinstance(now, AttestedFile) and was and was.provenance_sha256 != now.provenance_sha256:
            out.append((f"provenance-sha256 ({file})", was.provenance_sha256, now.provenance_sha256))
    wheel = entry.wheel_attestation
    if required and wheel is None:
        out.append((f"attestation-publisher ({entry.wheel_filename})", "", "required by [python].require-attestations"))
    elif required and not trusted and wheel is not None:
        out.append((f"attestation-publisher ({entry.wheel_filename})", wheel.publisher,
                    "required, but [python].trusted-publishers names no publisher for it"))
    return out


def _recorded(a: AttestedFile | None) -> str:
    """The publisher the lock recorded for a file, when it is one identity (it is then the one to hold)."""
    return a.publisher if a is not None and ", " not in a.publisher else ""


def _offline(a: AttestedFile, cache: Path, trusted: str) -> AttestedFile | str:
    """Re-verify a recorded attestation from the provenance object kept in the cache (no network)."""
    try:
        raw = provenance_path(cache, a.provenance_sha256).read_bytes()
    except (OSError, BridgeError):
        return "unavailable: the index cannot be reached and the cache holds no copy of the provenance"
    expected = trusted or _recorded(a)
    try:
        return verify_provenance(a.file, a.sha256, raw, parse_publisher(expected) if expected else None)
    except AttestationFailed as exc:
        return f"invalid: {exc.message}"
