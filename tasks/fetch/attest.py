"""Fetch stage: PEP 740 provenance of the files a lock uses, verified offline (R10).

For a pinned index package the lock looks at the wheel it installs and at the release's sdist.
When the index lists a provenance URL for one of them (JSON `provenance`, HTML `data-provenance`),
the provenance object is fetched and every attestation in it is verified with `pypi-attestations`
against sigstore's trust root on this machine (`offline=True`: nothing but the index is asked):
the certificate chain and transparency-log proof, the signer's identity against the publisher the
user trusts for that package (else the one the provenance names), and the attested file name and
SHA-256 against the file. The SHA-256 is the one the index lists, which the downloaded wheel must
then hash to before it is cached, so a verified attestation covers the installed bytes; the sdist is
never downloaded, so its check proves what the index lists for it.

What it proves: who built and uploaded the file (a CI identity), not that the code is safe.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ..cache import atomic_write
from ..errors import AttestationFailed, BridgeError, FetchError
from ..resolve.publishers import PublisherSpec, parse_publisher, publisher_from_claims
from .index import IndexFile, open_url

if TYPE_CHECKING:
    from pypi_attestations import Attestation

__all__ = ["AttestedFile", "attest_release", "checked_files", "fetch_provenance", "provenance_path",
           "refresh_trust_root", "verify_provenance"]

_MAX_PROVENANCE = 1 << 20  # a provenance object is a few KiB; more is not one
_ACCEPT = "application/vnd.pypi.integrity.v1+json, application/json;q=0.9"
_ISSUER, _BUILD_SIGNER, _BUILD_CONFIG = "1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.9", "1.3.6.1.4.1.57264.1.18"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestedFile:
    """One file whose provenance verified: what `mochi.lock` records per file."""

    file: str
    sha256: str
    publisher: str
    """The identity every attestation verified against (`attestation-publisher`)."""
    provenance_sha256: str
    """SHA-256 of the provenance object as the index served it."""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def checked_files(files: Iterable[IndexFile], name: str, wheel: str) -> list[IndexFile]:
    """The files of the pinned release whose provenance the lock checks: the wheel it installs, then the sdist(s)."""
    want = canonicalize_name(name)
    try:
        version = parse_wheel_filename(wheel)[1]
    except InvalidWheelFilename:
        return []
    chosen, sdists = [], []
    for f in files:
        if f.filename == wheel:
            chosen.append(f)
            continue
        try:
            sname, sver = parse_sdist_filename(f.filename)
        except InvalidSdistFilename:
            continue
        if canonicalize_name(sname) == want and sver == version:
            sdists.append(f)
    return chosen[:1] + sorted(sdists, key=lambda f: f.filename)


def provenance_path(cache: Path, sha256: str) -> Path:
    """Where a verified provenance object is kept, by its SHA-256 (for `check` without the index)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BridgeError(f"refusing provenance cache path for digest {sha256!r}")
    return cache / "provenance" / sha256


def attest_release(name: str, version: str, files: list[IndexFile], wheel: str, *, required: bool, trusted: str,
                   cache: Path | None = None) -> tuple[AttestedFile, ...]:
    """Verify the provenance the index lists for *wheel* and the release's sdist; enforce the package's policy.

    *trusted* is the publisher `[python].trusted-publishers` names for *name* (canonical text, or
    empty); *required* says whether `[python].require-attestations` covers it. Verified provenance
    objects are kept in *cache* only once every check passed.

    :raises AttestationFailed: a listed provenance is unreadable or does not verify, or the package is
        required and its wheel has no provenance or no trusted publisher.
    """
    spec = parse_publisher(trusted) if trusted else None
    records: list[AttestedFile] = []
    raws: list[bytes] = []
    for f in checked_files(files, name, wheel):
        if not f.provenance:
            continue
        raw = fetch_provenance(f)
        records.append(verify_provenance(f.filename, f.sha256, raw, spec))
        raws.append(raw)
    on_wheel = next((r for r in records if r.file == wheel), None)
    if required and on_wheel is None:
        others = "".join(f"; the release's {r.file} is attested by {r.publisher}, its wheel is not" for r in records)
        raise AttestationFailed(
            f"{name} {version}: [python].require-attestations requires PEP 740 provenance for {wheel}, the file "
            f"the lock installs, but the index lists none{others}",
            f"ask the publisher to attest every upload, use an index that serves provenance (simple API 1.3), or "
            f"take {name} out of require-attestations to accept it unattested")
    if required and spec is None and on_wheel is not None:
        raise AttestationFailed(
            f"{name} {version}: [python].require-attestations requires a trusted publisher, and "
            f"[python].trusted-publishers names none for it; its provenance claims {on_wheel.publisher} "
            "(every attestation verifies against that identity)",
            f'if {on_wheel.publisher} is who should publish {name}, add it under [python] in mochi.toml: '
            f'trusted-publishers = {{ "{name}" = "{on_wheel.publisher}" }}')
    if cache is not None:
        for raw in raws:
            atomic_write(provenance_path(cache, hashlib.sha256(raw).hexdigest()), raw)
    return tuple(records)


def fetch_provenance(f: IndexFile) -> bytes:
    """The provenance object the index lists for *f*, read with a size bound."""
    try:
        stream, _, _ = open_url(f.provenance, _ACCEPT)
        with stream:
            raw = stream.read(_MAX_PROVENANCE + 1)
    except FetchError as exc:
        raise AttestationFailed(f"{f.filename}: the index lists provenance at {f.provenance}, but it could not be "
                                f"read: {exc.message}", "retry; if it persists, the index serves broken provenance"
                                ) from None
    if len(raw) > _MAX_PROVENANCE:
        raise AttestationFailed(f"{f.filename}: the provenance at {f.provenance} is larger than "
                                f"{_MAX_PROVENANCE} bytes", "the index does not serve PEP 740 provenance there")
    return raw


def _quiet_sigstore() -> None:
    # offline mode logs a warning on every verifier it builds; the lock says itself what it checked
    logging.getLogger("sigstore").setLevel(logging.ERROR)


def verify_provenance(filename: str, sha256: str, raw: bytes, trusted: PublisherSpec | None) -> AttestedFile:
    """Verify every attestation of provenance *raw* for the file *filename* with SHA-256 *sha256*.

    Against *trusted* when given, else against the publisher each bundle names (the index's claim,
    which the signature must then bear out).

    :raises AttestationFailed: naming the file, the expected and the actual identity.
    """
    _quiet_sigstore()
    from pydantic import ValidationError
    from pypi_attestations import Distribution, Provenance

    try:
        prov = Provenance.model_validate_json(raw)
    except ValidationError as exc:
        raise AttestationFailed(f"{filename}: the index's provenance is not a PEP 740 provenance object "
                                f"({exc.error_count()} error(s), first: {exc.errors()[0]['msg']})",
                                "the index serves broken provenance; do not use this file") from None
    if not sha256:
        raise AttestationFailed(f"{filename}: the index lists provenance but no sha256 to check it against",
                                "use an index that publishes hashes")
    try:
        dist = Distribution(name=filename, digest=sha256)
    except ValidationError:
        raise AttestationFailed(f"{filename}: not a distribution file name an attestation can cover") from None
    bundles = prov.attestation_bundles
    if not bundles or not all(b.attestations for b in bundles):
        raise AttestationFailed(f"{filename}: the index's provenance holds no attestation",
                                "the index serves broken provenance; do not use this file")
    verified: set[str] = set()
    for bundle in bundles:
        claimed = publisher_from_claims(bundle.publisher.model_dump())
        expected = trusted or claimed
        if expected is None:
            raise AttestationFailed(f"{filename}: its provenance names a publisher of kind {bundle.publisher.kind!r}, "
                                    "which this version cannot check", "report this as a bug")
        if expected.environment and (claimed is None or claimed.environment != expected.environment):
            got = repr(claimed.environment) if claimed and claimed.environment else "none"
            raise AttestationFailed(
                f"{filename}: the trusted publisher {expected} names environment {expected.environment!r}, the "
                f"index records {got} for this file (the environment is the index's word, not signed)",
                "drop @<environment> from the trusted publisher, or do not use this file")
        total = len(bundle.attestations)
        for i, att in enumerate(bundle.attestations, 1):
            _verify_one(att, dist, expected, claimed, f"{filename}: attestation {i} of {total}",
                        "the trusted publisher" if trusted else "the publisher the index names,")
        verified.add(str(expected))
    return AttestedFile(file=filename, sha256=sha256, publisher=", ".join(sorted(verified)),
                        provenance_sha256=hashlib.sha256(raw).hexdigest())


def _verify_one(att: Attestation, dist: Any, expected: PublisherSpec, claimed: PublisherSpec | None,
                what: str, whose: str) -> None:
    subject = _subject(att)
    if subject is not None and _dist_key(subject[0]) != _dist_key(dist.name):
        raise AttestationFailed(
            f"{what} is for another file, {subject[0]}, not {dist.name} (signed by {_signer(att)})",
            "the index attaches another file's provenance to this one: do not use it, and report it to the index")
    if subject is not None and subject[1] != dist.digest:
        raise AttestationFailed(
            f"{what} covers sha256 {subject[1]}, but the index lists sha256 {dist.digest} for {dist.name}: the "
            f"bytes changed after {_signer(att)} attested them",
            "the index serves a file its publisher did not attest: do not use it, and report it to the index")
    try:
        att.verify(_library_publisher(expected), dist, offline=True)
    except Exception as exc:  # pypi-attestations and sigstore raise several types; each means "not verified"
        actual = _signer(att)
        claim = f"; the index claims {claimed}" if claimed is not None and claimed != expected else ""
        if _same_identity(actual, expected):
            raise AttestationFailed(f"{what} does not verify against {expected}: {exc}{claim}",
                                    "the signature or its proof is broken: do not use this file") from None
        try:
            parse_publisher(actual)
            hint = (f"if the project really moved its publishing to {actual}, change its entry in "
                    "[python].trusted-publishers; otherwise do not use this release")
        except ValueError:
            hint = "that identity is not a Trusted Publisher: do not use this release"
        raise AttestationFailed(f"{what} is signed by {actual}, not by {whose} {expected}{claim}: {exc}",
                                hint) from None


def _same_identity(actual: str, expected: PublisherSpec) -> bool:
    plain = PublisherSpec(kind=expected.kind, repository=expected.repository, workflow=expected.workflow,
                          email=expected.email, project_id=expected.project_id,
                          pipeline_definition_id=expected.pipeline_definition_id)
    return actual == str(plain)


def _dist_key(filename: str) -> tuple[object, ...]:
    """A distribution file name as the attestation rules compare it (normalised name, version, tags)."""
    try:
        return tuple(parse_wheel_filename(filename))
    except InvalidWheelFilename:
        pass
    try:
        return tuple(parse_sdist_filename(filename))
    except InvalidSdistFilename:
        return (filename,)


def _subject(att: Attestation) -> tuple[str, str] | None:
    """(name, sha256) the attestation's statement names, unverified; None when it cannot be read."""
    try:
        subjects = att.statement["subject"]
        return str(subjects[0]["name"]), str(subjects[0]["digest"]["sha256"])
    except Exception:
        return None


def _signer(att: Attestation) -> str:
    """The identity in the attestation's signing certificate, written as a trusted publisher where it is one."""
    try:
        from cryptography import x509
        claims = att.certificate_claims
        cert = x509.load_der_x509_certificate(att.verification_material.certificate)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = str(next(iter(sans)).value)
    except Exception:
        return "an unreadable certificate"
    issuer = claims.get(_ISSUER, "")
    config = claims.get(_BUILD_CONFIG, "").rpartition("@")[0]
    try:
        if issuer == "https://token.actions.githubusercontent.com" and "/.github/workflows/" in config:
            repo, _, workflow = config.removeprefix("https://github.com/").partition("/.github/workflows/")
            return str(parse_publisher(f"github:{repo}/{workflow}"))
        if issuer == "https://gitlab.com" and "//" in config.removeprefix("https://"):
            return str(parse_publisher("gitlab:" + config.removeprefix("https://gitlab.com/")))
        if issuer == "https://accounts.google.com":
            return str(parse_publisher(f"google:{san}"))
        signer = claims.get(_BUILD_SIGNER, "")
        if issuer == "https://oidc.circleci.com" and "/pipeline-definitions/" in signer:
            project, _, pipeline = signer.removeprefix("https://circleci.com/api/v2/projects/").partition(
                "/pipeline-definitions/")
            return str(parse_publisher(f"circleci:{project}/{pipeline}"))
    except ValueError:
        pass
    return f"{san} (issuer {issuer or 'unknown'})"


def _library_publisher(spec: PublisherSpec) -> Any:
    from pypi_attestations import CircleCIPublisher, GitHubPublisher, GitLabPublisher, GooglePublisher
    if spec.kind == "github":
        return GitHubPublisher(repository=spec.repository, workflow=spec.workflow,
                               environment=spec.environment or None)
    if spec.kind == "gitlab":
        return GitLabPublisher(repository=spec.repository, workflow_filepath=spec.workflow)
    if spec.kind == "google":
        return GooglePublisher(email=spec.email)
    return CircleCIPublisher(project_id=spec.project_id, pipeline_definition_id=spec.pipeline_definition_id)


def refresh_trust_root() -> None:
    """Update sigstore's trust root on this machine from its TUF repository (the one step that goes online).

    :raises FetchError: the repository could not be reached or did not verify.
    """
    _quiet_sigstore()
    from sigstore.verify import Verifier
    try:
        Verifier.production(offline=False)
    except Exception as exc:
        raise FetchError(f"could not refresh sigstore's trust root: {exc}",
                         "check the network, or run without --refresh-trust-root to verify with the trust root "
                         "already on this machine") from None
