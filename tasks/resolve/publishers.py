"""The trusted-publisher vocabulary of `[python].trusted-publishers` (PEP 740 consumers, R10).

A publisher is written as one string, and the same text is what `mochi.lock` records as
`attestation-publisher`:

- `github:<owner>/<repo>/<workflow file>[@<environment>]`
- `gitlab:<namespace>/<project>/<ci file path>`; a namespace with subgroups, or any doubt, is
  written with GitLab's own separator: `gitlab:<group>/<sub>/<project>//<ci file path>`
- `google:<service account email>`
- `circleci:<project id>/<pipeline definition id>`

Pure string work: the signature checks that use these live in `tasks.fetch.attest`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PUBLISHER_FORMS", "PublisherSpec", "parse_publisher", "publisher_claims", "publisher_from_claims"]

PUBLISHER_FORMS = ('"github:<owner>/<repo>/<workflow file>[@<environment>]"',
                   '"gitlab:<namespace>/<project>/<ci file path>"', '"google:<email>"',
                   '"circleci:<project id>/<pipeline definition id>"')
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherSpec:
    kind: str
    """`github`, `gitlab`, `google` or `circleci`."""
    repository: str = ""
    """GitHub `owner/repo`, GitLab `namespace/project` (subgroups included)."""
    workflow: str = ""
    """GitHub workflow file name, GitLab CI file path."""
    environment: str = ""
    email: str = ""
    project_id: str = ""
    pipeline_definition_id: str = ""

    def __str__(self) -> str:
        if self.kind == "github":
            return f"github:{self.repository}/{self.workflow}" + (f"@{self.environment}" if self.environment else "")
        if self.kind == "gitlab":
            sep = "/" if self.repository.count("/") == 1 else "//"
            return f"gitlab:{self.repository}{sep}{self.workflow}"
        if self.kind == "google":
            return f"google:{self.email}"
        return f"circleci:{self.project_id}/{self.pipeline_definition_id}"


def parse_publisher(text: str) -> PublisherSpec:
    """The publisher *text* names.

    :raises ValueError: with what is wrong, when *text* is none of the forms.
    """
    kind, sep, rest = text.strip().partition(":")
    if not sep or kind not in ("github", "gitlab", "google", "circleci"):
        raise ValueError(f"{text!r} does not start with github:, gitlab:, google: or circleci:")
    if kind == "github":
        rest, at, env = rest.partition("@")
        parts = rest.split("/")
        if len(parts) != 3 or not all(_SEGMENT.match(p) for p in parts) or (at and not env.strip()):
            raise ValueError(f"{text!r} is not github:<owner>/<repo>/<workflow file>[@<environment>]")
        return PublisherSpec(kind=kind, repository=f"{parts[0]}/{parts[1]}", workflow=parts[2],
                             environment=env.strip())
    if kind == "gitlab":
        if "//" in rest:
            repo, _, path = rest.partition("//")
        else:
            first = rest.split("/", 2)
            repo, path = ("/".join(first[:2]), first[2]) if len(first) == 3 else (rest, "")
        repo_parts, path_parts = repo.split("/"), path.split("/")
        if (len(repo_parts) < 2 or not all(_SEGMENT.match(p) for p in repo_parts)
                or not all(_SEGMENT.match(p) for p in path_parts)):
            raise ValueError(f"{text!r} is not gitlab:<namespace>/<project>/<ci file path>")
        return PublisherSpec(kind=kind, repository=repo, workflow=path)
    if kind == "google":
        if not _EMAIL.match(rest):
            raise ValueError(f"{text!r} is not google:<service account email>")
        return PublisherSpec(kind=kind, email=rest)
    parts = rest.split("/")
    if len(parts) != 2 or not all(_SEGMENT.match(p) for p in parts):
        raise ValueError(f"{text!r} is not circleci:<project id>/<pipeline definition id>")
    return PublisherSpec(kind=kind, project_id=parts[0], pipeline_definition_id=parts[1])


def publisher_from_claims(claims: Mapping[str, object]) -> PublisherSpec | None:
    """The publisher a PEP 740 provenance bundle names (the index's word, unsigned); None for other kinds."""
    def get(key: str) -> str:
        value = claims.get(key)
        return value if isinstance(value, str) else ""
    kind = get("kind")
    if kind == "GitHub":
        return PublisherSpec(kind="github", repository=get("repository"), workflow=get("workflow"),
                             environment=get("environment"))
    if kind == "GitLab":
        return PublisherSpec(kind="gitlab", repository=get("repository"), workflow=get("workflow_filepath"),
                             environment=get("environment"))
    if kind == "Google":
        return PublisherSpec(kind="google", email=get("email"))
    if kind == "CircleCI":
        return PublisherSpec(kind="circleci", project_id=get("project_id"),
                             pipeline_definition_id=get("pipeline_definition_id"))
    return None


def publisher_claims(spec: PublisherSpec) -> dict[str, str]:
    """*spec* as a PEP 740 publisher object (also PEP 751's `attestation-identities` entry)."""
    if spec.kind == "github":
        out = {"kind": "GitHub", "repository": spec.repository, "workflow": spec.workflow}
    elif spec.kind == "gitlab":
        out = {"kind": "GitLab", "repository": spec.repository, "workflow_filepath": spec.workflow}
    elif spec.kind == "google":
        out = {"kind": "Google", "email": spec.email}
    else:
        out = {"kind": "CircleCI", "project_id": spec.project_id, "pipeline_definition_id": spec.pipeline_definition_id}
    if spec.environment:
        out["environment"] = spec.environment
    return out
