"""PEP 740 attestations: each file signed by the CI's identity (sigstore, keyless) before it is uploaded.

The signer is a boundary: :class:`SigstoreSigner` asks the CI for an OIDC token with the audience
`sigstore`, gets a short-lived certificate from the public Fulcio and logs the signature in Rekor
(`pypi-attestations` builds the PyPI publish statement). Whatever signs, :func:`attest` checks that
each attestation is a PEP 740 attestation object whose statement names exactly that file and its
SHA-256, and keeps it beside the file as `dist/<file>.publish.attestation` (twine's naming).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Protocol

from ..cache import atomic_write
from ..errors import PublishError
from .oidc import Provider

__all__ = ["Signer", "SigstoreSigner", "attest", "attestation_path", "check_attestation", "make_signer"]


class Signer(Protocol):
    def sign(self, dist: Path) -> dict[str, Any]:
        """A PEP 740 attestation object (JSON-able) for the file at *dist*."""
        ...


class SigstoreSigner:
    """Keyless signing with the CI's ambient identity (needs the public sigstore services).

    One OIDC token and one short-lived certificate sign every file of the release (GitLab gives a job a
    single token per audience).
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._stack = contextlib.ExitStack()
        self._signer: Any = None

    def close(self) -> None:
        self._stack.close()

    def sign(self, dist: Path) -> dict[str, Any]:
        from pypi_attestations import Attestation, AttestationError, Distribution
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityToken
        from sigstore.sign import SigningContext
        try:
            if self._signer is None:
                identity = IdentityToken(self.provider.token("sigstore"))
                context = SigningContext.from_trust_config(ClientTrustConfig.production())
                self._signer = self._stack.enter_context(context.signer(identity, cache=True))
            attestation = Attestation.sign(self._signer, Distribution.from_file(dist))
        except (SigstoreError, AttestationError) as exc:
            raise PublishError(f"{dist.name} could not be signed with sigstore: {exc}",
                               "the CI job needs an OIDC token with the audience 'sigstore'; set "
                               "[python.publish].attestations = false to publish without attestations") from None
        data: dict[str, Any] = json.loads(attestation.model_dump_json())
        return data


def make_signer(provider: Provider) -> Signer:
    """The signer of a real release (tests replace this boundary with an offline signer)."""
    return SigstoreSigner(provider)


def attestation_path(dist: Path) -> Path:
    return dist.with_name(f"{dist.name}.publish.attestation")


def check_attestation(data: object, dist: Path, sha256: str) -> None:
    """*data* is a PEP 740 attestation whose in-toto statement is about *dist*, with its SHA-256.

    :raises PublishError: it is malformed or about another file (nothing is uploaded with it).
    """
    from pydantic import ValidationError
    from pypi_attestations import Attestation, AttestationType
    try:
        statement = Attestation.model_validate(data).statement
    except (ValidationError, ValueError) as exc:
        raise PublishError(f"the attestation of {dist.name} is not a PEP 740 attestation: {exc}",
                           "report this as a bug") from None
    subjects = [(s.get("name"), s.get("digest", {}).get("sha256")) for s in statement.get("subject", [])]
    if subjects != [(dist.name, sha256)] or statement.get("predicateType") != AttestationType.PYPI_PUBLISH_V1.value:
        raise PublishError(f"the attestation of {dist.name} attests {subjects} "
                           f"({statement.get('predicateType')}), not this file",
                           "rebuild and sign again: mochi-py publish")


def attest(dists: list[tuple[Path, str]], signer: Signer) -> dict[str, str]:
    """Sign each (file, sha256), check the result, write it beside the file; {file name: attestation path}."""
    out = {}
    try:
        for dist, sha in dists:
            data = signer.sign(dist)
            check_attestation(data, dist, sha)
            path = attestation_path(dist)
            atomic_write(path, (json.dumps(data, sort_keys=True) + "\n").encode())
            out[dist.name] = str(path)
    finally:
        close = getattr(signer, "close", None)
        if callable(close):
            close()
    return out
