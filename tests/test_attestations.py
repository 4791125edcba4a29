"""PEP 740 on the consuming side (R10): real attestations and provenance (tests/data/pep740), served from
the local index, verified offline with sigstore's embedded trust root, recorded in the lock, re-checked."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FixtureIndex, build_wheel, run_cli, tree_files, write_project

from tasks.errors import AttestationFailed, ManifestError
from tasks.fetch.attest import verify_provenance
from tasks.fetch.index import _parse_html, fetch_project
from tasks.resolve.manifest import parse_manifest
from tasks.resolve.publishers import parse_publisher

DATA = Path(__file__).resolve().parent / "data" / "pep740"
SDIST = "pypi_attestations-0.0.19.tar.gz"
STAND_IN = "pypi_attestations-0.0.19-py3-none-any.whl"
CIRCLE_WHEEL = "circleci_sign_publish_example-0.0.1.dev137-py3-none-any.whl"
RFC_WHEEL = "rfc8785-0.1.2-py3-none-any.whl"
GH = "github:trailofbits/pypi-attestations/release.yml"
CIRCLE = "circleci:fdd9283f-e619-46af-8f9c-851f7d3e8b2b/8e4f8ab2-8d7c-4827-9f15-de076d6d647f"
GITLAB = "gitlab:facutuesca/gitlab-oidc-project/.gitlab-ci.yml"
GOOGLE = "google:919436158236-compute@developer.gserviceaccount.com"
RFC_CLAIM = "github:trailofbits/rfc8785.py/release.yml"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wrap(attestation: Path, publisher: dict[str, Any]) -> bytes:
    """A PEP 740 provenance object around one real attestation, naming the publisher an index would claim."""
    att = json.loads(attestation.read_bytes())
    return json.dumps({"version": 1, "attestation_bundles": [{"publisher": publisher, "attestations": [att]}]}).encode()


RFC_PROVENANCE = _wrap(DATA / f"{RFC_WHEEL}.publish.attestation",
                       {"kind": "GitHub", "repository": "trailofbits/rfc8785.py", "workflow": "release.yml",
                        "environment": None})


@pytest.fixture(autouse=True)
def _sigstore_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # sigstore copies its embedded trust root under the user's cache directory: keep it out of $HOME
    base = tmp_path_factory.getbasetemp() / "sigstore"
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "data"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("attest-wheels")
    built = [
        build_wheel(out, "attestfix", "1.0", {"attestfix/__init__.py": b"def greet(name: str) -> str:\n"
                                              b"    return 'hi ' + name\n", "attestfix/py.typed": b""},
                    ("pypi-attestations==0.0.19", "circleci-sign-publish-example==0.0.1.dev137")),
        # the fixtures hold the release's sdist only: a wheel of the same name and version stands in for its wheel
        build_wheel(out, "pypi-attestations", "0.0.19", {"pypi_attestations/__init__.py": b"VERSION = '0.0.19'\n"}),
    ]
    files = {p.name: p.read_bytes() for p in built}
    for name in (SDIST, CIRCLE_WHEEL, RFC_WHEEL):
        files[name] = (DATA / name).read_bytes()
    return files


Serve = Callable[..., FixtureIndex]


@pytest.fixture(scope="module")
def serve(wheels: dict[str, bytes]) -> Iterator[Serve]:
    started: list[FixtureIndex] = []

    def make(files: dict[str, bytes] | None = None, provenance: dict[str, bytes] | None = None) -> FixtureIndex:
        idx = FixtureIndex()
        idx.files.update(wheels if files is None else files)
        idx.provenance.update({SDIST: (DATA / f"{SDIST}.provenance").read_bytes(),
                               CIRCLE_WHEEL: (DATA / f"{CIRCLE_WHEEL}.provenance").read_bytes(),
                               RFC_WHEEL: RFC_PROVENANCE} if provenance is None else provenance)
        idx.start()
        started.append(idx)
        return idx
    yield make
    for idx in started:
        idx.stop()


def _env(base: Path) -> dict[str, str]:
    return {"MOCHI_CACHE_DIR": str(base / "cache"), "XDG_CACHE_HOME": str(base / "xdg-cache"),
            "XDG_DATA_HOME": str(base / "xdg-data")}


def _table(pairs: dict[str, str]) -> str:
    return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in pairs.items()) + " }"


# -- the publisher vocabulary and the manifest keys ------------------------------------------------------------

@pytest.mark.parametrize("text", [GH, GH + "@pypi", CIRCLE, GITLAB, GOOGLE, "gitlab:group/sub/project//ci/release.yml"])
def test_publisher_forms_round_trip(text: str) -> None:
    assert str(parse_publisher(text)) == text


@pytest.mark.parametrize(("text", "message"), [
    ("github:owner/repo", "is not github:<owner>/<repo>/<workflow file>"),
    ("github:o/r/w.yml@", "is not github:"),
    ("gitlab:project/.gitlab-ci.yml", "is not gitlab:<namespace>/<project>/<ci file path>"),
    ("google:not-an-email", "is not google:<service account email>"),
    ("pypi:someone", "does not start with github:, gitlab:, google: or circleci:"),
])
def test_bad_publishers_are_refused_at_their_line(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(f'[python]\nrequire-attestations = ["a"]\ntrusted-publishers = {{ a = "{text}" }}\n',
                       Path("mochi.toml"))
    assert str(info.value).startswith("mochi.toml:3:28: invalid trusted publisher for 'a': "), str(info.value)
    assert message in str(info.value)
    assert '"github:<owner>/<repo>/<workflow file>[@<environment>]"' in str(info.value)  # the hint lists the forms


def test_trusted_publishers_table_form_and_other_errors() -> None:
    m = parse_manifest(f'[python]\nrequire-attestations = true\n[python.trusted-publishers]\n"Pypi_Attestations" = '
                       f'"{GH}"\n', Path("mochi.toml"))
    assert m.python.trusted_publishers == (("pypi-attestations", GH),)
    for text, where, message in [
        ("[python]\ntrusted-publishers = 3\n", "2:22", "must be a table"),
        ("[python]\ntrusted-publishers = { a = 1 }\n", "2:28", "must be a string"),
        ('[python]\ntrusted-publishers = { "a b" = "google:x@y.z" }\n', "2:24", "not a valid distribution name"),
    ]:
        with pytest.raises(ManifestError) as info:
            parse_manifest(text, Path("mochi.toml"))
        assert str(info.value).startswith(f"mochi.toml:{where}: "), str(info.value)
        assert message in str(info.value)


# -- verification of the real attestations, in-process ----------------------------------------------------------

@pytest.mark.parametrize(("dist", "provenance", "publisher"), [
    (SDIST, (DATA / f"{SDIST}.provenance").read_bytes(), GH),
    (CIRCLE_WHEEL, (DATA / f"{CIRCLE_WHEEL}.provenance").read_bytes(), CIRCLE),
    ("gcb_attestation_test-0.0.0.tar.gz", (DATA / "gcb_attestation_test-0.0.0.tar.gz.provenance").read_bytes(),
     GOOGLE),
    ("gitlab_oidc_project-0.0.3.tar.gz", _wrap(DATA / "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation",
                                               {"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project",
                                                "workflow_filepath": ".gitlab-ci.yml"}), GITLAB),
])
def test_every_publisher_kind_verifies_offline(dist: str, provenance: bytes, publisher: str) -> None:
    sha = _sha((DATA / dist).read_bytes())
    trusted = verify_provenance(dist, sha, provenance, parse_publisher(publisher))
    claimed = verify_provenance(dist, sha, provenance, None)  # against the publisher the provenance names
    assert trusted.publisher == claimed.publisher == publisher
    assert trusted.provenance_sha256 == _sha(provenance)
    with pytest.raises(AttestationFailed, match=f"{dist}: attestation 1 of 1 covers sha256 {sha}, but the index "
                       "lists sha256 0{64}"):
        verify_provenance(dist, "0" * 64, provenance, parse_publisher(publisher))


def test_the_index_lists_provenance_in_json_and_in_html(serve: Serve) -> None:
    idx = serve()
    by_json = {f.filename: f.provenance for f in fetch_project(idx.url, "pypi-attestations")}
    assert by_json == {SDIST: f"{idx.url.removesuffix('simple/')}integrity/pypi-attestations/0.0.19/{SDIST}/provenance",
                       STAND_IN: ""}
    page = urllib.request.urlopen(urllib.request.Request(idx.url + "pypi-attestations/",
                                                         headers={"Accept": "text/html"}), timeout=10)
    by_html = {f.filename: f.provenance for f in _parse_html(page.read().decode(), page.geturl())}
    assert by_html == by_json
    with urllib.request.urlopen(by_json[SDIST], timeout=10) as resp:
        assert resp.read() == (DATA / f"{SDIST}.provenance").read_bytes()


# -- a lock that verifies what it installs ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def attested(tmp_path_factory: pytest.TempPathFactory, serve: Serve) -> dict[str, Any]:
    """attestfix (unattested) -> pypi-attestations (its sdist attested) and circleci-sign-publish-example
    (an attested wheel, required, with its trusted publisher)."""
    base = tmp_path_factory.mktemp("attested")
    idx = serve()
    trusted = _table({"pypi-attestations": GH, "circleci-sign-publish-example": CIRCLE})
    root = write_project(base / "proj", 'attestfix = "1.0"', idx.url,
                         f'require-attestations = ["circleci-sign-publish-example"]\ntrusted-publishers = {trusted}\n')
    proc = run_cli("lock", str(root), env=_env(base))
    return {"root": root, "env": _env(base), "proc": proc, "index": idx, "cache": base / "cache"}


def test_a_lock_verifies_and_records_who_published_each_file(attested: dict[str, Any]) -> None:
    proc = attested["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"attested (PEP 740, verified offline): circleci-sign-publish-example 0.0.1.dev137 by {CIRCLE}" in out
    # missing provenance on a package nobody requires is a warning, and says what the sdist has
    assert (f"warning: no PEP 740 provenance for the installed wheel of attestfix 1.0, pypi-attestations 0.0.19 "
            f"(its sdist is attested by {GH})") in out
    lock = {p["name"]: p for p in tomllib.loads((attested["root"] / "mochi.lock").read_text())["python-package"]}
    assert lock["circleci-sign-publish-example"]["attestations"] == [{
        "file": CIRCLE_WHEEL, "sha256": _sha((DATA / CIRCLE_WHEEL).read_bytes()), "attestation-publisher": CIRCLE,
        "provenance-sha256": _sha((DATA / f"{CIRCLE_WHEEL}.provenance").read_bytes())}]
    assert lock["pypi-attestations"]["attestations"] == [{
        "file": SDIST, "sha256": _sha((DATA / SDIST).read_bytes()), "attestation-publisher": GH,
        "provenance-sha256": _sha((DATA / f"{SDIST}.provenance").read_bytes())}]
    assert "attestations" not in lock["attestfix"]
    pylock = {p["name"]: p for p in tomllib.loads((attested["root"] / "pylock.toml").read_text())["packages"]}
    assert pylock["circleci-sign-publish-example"]["attestation-identities"] == [
        {"kind": "CircleCI", "project_id": "fdd9283f-e619-46af-8f9c-851f7d3e8b2b",
         "pipeline_definition_id": "8e4f8ab2-8d7c-4827-9f15-de076d6d647f"}]
    assert "attestation-identities" not in pylock["pypi-attestations"]  # its wheel, the file pylock lists, is not
    kept = sorted(p.name for p in (attested["cache"] / "provenance").iterdir())
    assert kept == sorted(_sha((DATA / f"{n}.provenance").read_bytes()) for n in (SDIST, CIRCLE_WHEEL))


def test_check_reverifies_and_report_names_the_publishers(attested: dict[str, Any], copy_project: Any) -> None:
    root, env, idx = attested["root"], attested["env"], attested["index"]
    ok = run_cli("check", str(root), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = run_cli("report", str(root), env=env)
    assert report.returncode == 0, report.stderr
    assert f"  circleci-sign-publish-example 0.0.1.dev137: {CIRCLE_WHEEL} by {CIRCLE}" in report.stdout
    assert f"  pypi-attestations 0.0.19: {STAND_IN} not attested; {SDIST} by {GH}" in report.stdout
    assert "  attestfix 1.0: attestfix-1.0-py3-none-any.whl not attested" in report.stdout
    assert '<ul id="attestations"><li>attestfix 1.0' in (root / ".mochi" / "report.html").read_text()
    # the index now serves other provenance bytes for the same file: drift, like any other field
    original = idx.provenance[CIRCLE_WHEEL]
    idx.provenance[CIRCLE_WHEEL] = json.dumps(json.loads(original), indent=2).encode()
    try:
        drift = run_cli("check", str(root), env=env)
    finally:
        idx.provenance[CIRCLE_WHEEL] = original
    assert drift.returncode == 1
    assert f"circleci-sign-publish-example: provenance-sha256 ({CIRCLE_WHEEL}): locked {_sha(original)}" in drift.stdout
    # the manifest now trusts another repository for pypi-attestations: the recorded attestation no longer holds
    moved = copy_project(root)
    (moved / "mochi.toml").write_text((moved / "mochi.toml").read_text().replace(GH, "github:evil/repo/release.yml"))
    before = tree_files(moved)
    evil = run_cli("check", str(moved), env=env)
    assert evil.returncode == 1
    assert (f"pypi-attestations: attestation-publisher ({SDIST}): locked {GH}, actual invalid: {SDIST}: attestation 1 "
            f"of 1 is signed by {GH}, not by the trusted publisher github:evil/repo/release.yml") in evil.stdout
    assert tree_files(moved) == before


def test_check_reverifies_from_the_cache_without_the_index(attested: dict[str, Any]) -> None:
    root, env, idx = attested["root"], attested["env"], attested["index"]
    page = "/simple/pypi-attestations/"
    kept = attested["cache"] / "provenance" / _sha((DATA / f"{SDIST}.provenance").read_bytes())
    original = kept.read_bytes()
    idx.failures[page] = 404
    try:
        offline = run_cli("check", str(root), env=env)
        kept.write_bytes(original.replace(b'"signature":"MEYCIQC', b'"signature":"MEYCIQD'))  # no longer verifies
        broken = run_cli("check", str(root), env=env)
    finally:
        del idx.failures[page]
        kept.write_bytes(original)
    assert offline.returncode == 1, offline.stdout
    assert "pypi-attestations: pypi-simple-sha256: locked" in offline.stdout
    assert "attestation-publisher" not in offline.stdout  # re-verified from the cached provenance, offline
    assert (f"pypi-attestations: attestation-publisher ({SDIST}): locked {GH}, actual invalid: {SDIST}: attestation 1 "
            f"of 1 does not verify against {GH}: Verification failed: DSSE: invalid signature\n") in broken.stdout


# -- every way a lock must refuse ---------------------------------------------------------------------------------

def _flip(data: bytes) -> bytes:
    return data[:100] + bytes([data[100] ^ 1]) + data[101:]


@pytest.mark.parametrize(("case", "dep", "python", "message"), [
    ("changed byte", 'pypi-attestations = "0.0.19"', f'trusted-publishers = {{ pypi-attestations = "{GH}" }}',
     f"{SDIST}: attestation 1 of 1 covers sha256 {_sha((DATA / SDIST).read_bytes())}, but the index lists sha256 "
     f"{_sha(_flip((DATA / SDIST).read_bytes()))} for {SDIST}: the bytes changed after {GH} attested them"),
    ("another file's provenance", 'pypi-attestations = "0.0.19"', "",
     f"{STAND_IN}: attestation 1 of 1 is for another file, {SDIST}, not {STAND_IN} (signed by {GH})"),
    ("another repository", 'pypi-attestations = "0.0.19"',
     'trusted-publishers = { pypi-attestations = "github:evil/repo/release.yml" }',
     f"{SDIST}: attestation 1 of 1 is signed by {GH}, not by the trusted publisher github:evil/repo/release.yml; "
     f"the index claims {GH}: Verification failed: Certificate's OIDCSourceRepositoryURI does not match"),
    ("staging-signed", 'rfc8785 = "0.1.2"', f'trusted-publishers = {{ rfc8785 = "{RFC_CLAIM}" }}',
     f"{RFC_WHEEL}: attestation 1 of 1 is signed by william@yossarian.net (issuer https://github.com/login/oauth), "
     f"not by the trusted publisher {RFC_CLAIM}"),
    ("staging-signed, the index's claim", 'rfc8785 = "0.1.2"', "",
     f"{RFC_WHEEL}: attestation 1 of 1 is signed by william@yossarian.net (issuer https://github.com/login/oauth), "
     f"not by the publisher the index names, {RFC_CLAIM}"),
    ("required, no provenance", 'pypi-attestations = "0.0.19"', "require-attestations = true",
     f"pypi-attestations 0.0.19: [python].require-attestations requires PEP 740 provenance for {STAND_IN}, the file "
     f"the lock installs, but the index lists none; the release's {SDIST} is attested by {GH}, its wheel is not"),
    ("required, no trusted publisher", 'circleci-sign-publish-example = "==0.0.1.dev137"',
     'require-attestations = ["circleci-sign-publish-example"]',
     "circleci-sign-publish-example 0.0.1.dev137: [python].require-attestations requires a trusted publisher, and "
     f"[python].trusted-publishers names none for it; its provenance claims {CIRCLE}"),
])
def test_a_lock_aborts_naming_the_file_and_both_identities(tmp_path: Path, serve: Serve, wheels: dict[str, bytes],
                                                           case: str, dep: str, python: str, message: str) -> None:
    files, provenance = dict(wheels), None
    if case == "changed byte":
        files[SDIST] = _flip(files[SDIST])
    elif case == "another file's provenance":
        provenance = {STAND_IN: (DATA / f"{SDIST}.provenance").read_bytes()}
    idx = serve(files, provenance)
    root = write_project(tmp_path / "proj", dep, idx.url, python + "\n")
    before = tree_files(root)
    proc = run_cli("lock", str(root), env=_env(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    output = " ".join((proc.stdout + proc.stderr).split())
    assert message in output, output
    if case == "required, no trusted publisher":  # the line to add, never trust on first use in silence
        assert f'trusted-publishers = {{ "circleci-sign-publish-example" = "{CIRCLE}" }}' in output
    assert {k: v for k, v in tree_files(root).items() if not k.startswith(".mochi/")} == before  # no lock written
    cache = tmp_path / "cache"
    assert not list(cache.glob("wheels/*/*")), "nothing is cached from a release that failed its attestations"
    assert not list(cache.glob("provenance/*"))


def test_a_path_source_named_in_require_attestations_is_refused(tmp_path: Path, serve: Serve) -> None:
    wheel = build_wheel(tmp_path / "w", "localattest", "1.0", {"localattest/__init__.py": b"X = 1\n"})
    root = write_project(tmp_path / "proj", f'localattest = {{ path = "{wheel}" }}', serve().url,
                         'require-attestations = ["localattest"]\n')
    proc = run_cli("lock", str(root), env=_env(tmp_path))
    assert proc.returncode == 2
    assert "localattest: [python].require-attestations names it, but it comes from a path source" in proc.stderr


def test_refresh_trust_root_fails_cleanly_without_a_network(tmp_path: Path) -> None:
    # in a network namespace of its own nothing can be reached, and no traffic leaves this machine
    assert shutil.which("unshare"), "util-linux's unshare is needed to cut the network for this test"
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mochi.toml").write_text('[python-dependencies]\n[python]\nrequires-python = ">=3.11"\n')
    env = {**_env(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(["unshare", "-rn", sys.executable, "-m", "tasks", "check", "--refresh-trust-root", str(root)],
                          capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: could not refresh sigstore's trust root" in proc.stderr
    assert "run without --refresh-trust-root" in proc.stderr
