"""The CI's OIDC identity (Trusted Publishing, R7/A6): where a fresh token comes from, and nothing else.

GitHub Actions hands a job a request URL and a request token (`permissions: id-token: write`); each
request returns a new token. GitLab CI/CD puts one token per audience in `<AUD>_ID_TOKEN` (`id_tokens:`
in the job); a job gets no second one. Anything else has no ambient identity: `mochi-py publish`
refuses, there is no password or API-token path (A6). Tokens are returned to the caller and never
printed, logged or written; :func:`claims` reads the unverified payload only to explain a refusal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from .. import __version__
from ..errors import PublishError

__all__ = ["NO_PROVIDER_HINT", "OPENER", "Provider", "Transient", "claims", "detect_provider", "shown_claims"]

NO_PROVIDER_HINT = (
    "run it in a CI job that can prove its identity and register that job as a trusted publisher of the project "
    "at the index: GitHub Actions with `permissions: id-token: write`, or GitLab CI/CD with "
    "`id_tokens: { PYPI_ID_TOKEN: { aud: pypi } }` (and SIGSTORE_ID_TOKEN with aud sigstore for attestations). "
    "Long-lived API tokens and passwords are not accepted; if the CI's identity service is down, release later")
_CLAIMS_SHOWN = ("iss", "sub", "repository", "repository_owner", "workflow_ref", "job_workflow_ref", "ref",
                 "environment", "project_path", "ci_config_ref_uri", "ref_path", "namespace_path")


class Transient(Exception):
    """A failure worth another attempt (the service is down, slow, or refused an expired token)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would replay the Authorization header to wherever a redirect points: never follow one."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)
"""The opener for every request that carries a credential (a 3xx answer is an error, not followed)."""


def _request(req: urllib.request.Request, what: str, timeout: float = 30) -> bytes:
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()[:500].decode(errors="replace")
        if exc.code >= 500 or exc.code == 429:
            raise Transient(f"{what}: HTTP {exc.code}") from None
        raise PublishError(f"{what}: HTTP {exc.code}: {body.strip()}", "check the CI job's OIDC settings") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise Transient(f"{what}: {getattr(exc, 'reason', exc)}") from None


@dataclass
class Provider:
    """One CI's OIDC token source; :meth:`token` reads the environment each time it is asked."""

    name: str
    environ: Mapping[str, str] = field(repr=False)
    _spent: set[str] = field(default_factory=set, repr=False)

    def token(self, audience: str) -> str:
        """A token for *audience* that the index has not seen (one per call on GitHub; once per job on GitLab).

        :raises Transient: the identity service did not answer.
        :raises PublishError: the job is not set up to get one.
        """
        if self.name == "GitHub Actions":
            url, bearer = self.environ["ACTIONS_ID_TOKEN_REQUEST_URL"], self.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
            req = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}audience={quote(audience)}",
                                         headers={"Authorization": f"bearer {bearer}",
                                                  "User-Agent": f"mochi-pybridge/{__version__}"})
            try:
                value = json.loads(_request(req, "the GitHub Actions OIDC token service"))["value"]
            except (ValueError, KeyError, TypeError):
                raise Transient("the GitHub Actions OIDC token service sent no token") from None
            return str(value)
        var = f"{re.sub(r'[^A-Z0-9]', '_', audience.upper())}_ID_TOKEN"
        value = self.environ.get(var, "")
        if not value:
            raise PublishError(f"GitLab CI/CD: the job has no {var} variable", f"add `id_tokens: {{ {var}: "
                               f"{{ aud: {audience} }} }}` to the job")
        if var in self._spent:
            raise PublishError(f"GitLab CI/CD gives a job one {var}, and it was used by an earlier attempt (the "
                               "index accepts each token once)", "retry the job to get a new token")
        self._spent.add(var)
        return value


def detect_provider(environ: Mapping[str, str] | None = None) -> Provider:
    """The CI's OIDC provider.

    :raises PublishError: there is none; the message says how to configure Trusted Publishing.
    """
    env = os.environ if environ is None else environ
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL") and env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        return Provider("GitHub Actions", env)
    if env.get("GITHUB_ACTIONS") == "true":
        raise PublishError("this GitHub Actions job cannot request an OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is "
                           "not set)", "give the job `permissions: id-token: write` (forks' pull requests never get "
                           "one)")
    if env.get("GITLAB_CI") == "true":
        return Provider("GitLab CI/CD", env)
    raise PublishError("mochi-py publish uploads only through Trusted Publishing, and no CI OIDC identity was found "
                       "(GitHub Actions or GitLab CI/CD)", NO_PROVIDER_HINT)


def claims(token: str) -> dict[str, object]:
    """The unverified payload of a JWT (only to explain a refusal; never the token itself)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shown_claims(token: str) -> str:
    data = claims(token)
    return ", ".join(f"{k}={data[k]}" for k in _CLAIMS_SHOWN if k in data) or "(the token carries no claims)"
