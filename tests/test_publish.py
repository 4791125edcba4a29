"""`mochi-py publish` (DESIGN §11): the sdist, the wheel built from it, the gates, and Trusted Publishing.

Everything is real but two services that cannot run here: the Mochi compiler (stood in for by
`mochi_python_target.py`, which writes the target's layout) and the CI's OIDC issuer with the
index's token service (`publish_doubles.TrustedPublishing`, which checks signature, audience,
expiry, single use and the publisher). The index that stores and serves the uploads is a real
pypiserver; the wheels are built by scikit-build-core through pypa `build`; the gates run twine,
check-wheel-contents, abi3audit and auditwheel. The project is built once per module.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, FixtureIndex, run_cli
from packaging.metadata import Metadata
from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename
from publish_doubles import OfflineSigner, PyPIServer, TrustedPublishing, clean_pip_env

STANDIN = Path(__file__).resolve().parent / "mochi_python_target.py"
MANIFEST = """\
[package]
name = "mochi-hello"
version = "0.1.0"
description = "Adds two numbers through typedfix"
license = "MIT"
authors = [{ name = "Ada", email = "ada@example.org" }]

[python-dependencies]
typedfix = "^1.0"

[python]
requires-python = ">=3.11"
indexes = [{ url = "INDEX" }]

[python.capabilities]

[python.publish]
compile = [PYTHON, STANDIN, "{program}", "--out", "{out}"]
trusted-publisher = "github:mochi/hello/release.yml@pypi"
"""
PROGRAM = 'import python "typedfix" as tf\n\nlet n: int = tf_add(1, 2)\nprint(n)\n'
GATES = ["metadata", "license", "twine-check", "check-wheel-contents", "abi-tag", "abi3audit", "platform-tag",
         "capabilities", "import"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, index: FixtureIndex) -> dict[str, Any]:
    """A project locked and published with --dry-run once: the sdist and the wheel in dist/."""
    base = tmp_path_factory.mktemp("publish")
    root = base / "hello"
    root.mkdir()
    (root / "mochi.toml").write_text(MANIFEST.replace("INDEX", index.url).replace("PYTHON", json.dumps(sys.executable))
                                     .replace("STANDIN", json.dumps(str(STANDIN))))
    (root / "app.mochi").write_text(PROGRAM)
    (root / "README.md").write_text("# mochi-hello\n\nA Mochi program that adds two numbers with *typedfix*.\n")
    (root / "LICENSE").write_text("MIT License\n")
    env = {"MOCHI_CACHE_DIR": str(base / "cache")}
    proc = run_cli("publish", "--dry-run", str(root), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = json.loads((root / ".mochi" / "publish" / "wheel.json").read_text())["file"]
    return {"root": root, "env": env, "proc": proc, "sdist": root / "dist" / "mochi_hello-0.1.0.tar.gz",
            "wheel": root / "dist" / wheel, "base": base}


def _plan(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **changes: Any) -> Any:
    from tasks.detect import detect_context
    from tasks.publish.plan import PublishOptions, make_plan
    monkeypatch.setenv("MOCHI_CACHE_DIR", built["env"]["MOCHI_CACHE_DIR"])
    plan = make_plan(detect_context(built["root"], write_state=False), PublishOptions())
    return dataclasses.replace(plan, **changes)


def _entries(built: dict[str, Any]) -> Any:
    from tasks.lock.lockfile import read_lock
    return read_lock(built["root"] / "mochi.lock")


def _rewrite_wheel(src: Path, dest_dir: Path, edit: Callable[[dict[str, bytes]], None], name: str | None = None,
                   ) -> Path:
    """A copy of *src* with its members edited, RECORD rewritten, under *name* (a tampered artifact)."""
    import hashlib
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    edit(files)
    record = next(n for n in files if n.endswith(".dist-info/RECORD"))
    lines = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
             for n, d in sorted(files.items()) if n != record]
    files[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / (name or src.name)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return out


def _meta(files: dict[str, bytes]) -> str:
    return next(n for n in files if n.endswith(".dist-info/METADATA"))


def _retagged(built: dict[str, Any], into: Path, tag: str) -> Path:
    """The wheel with the WHEEL tags and file name set to *tag* (what a wrong build would have written)."""
    def edit(files: dict[str, bytes]) -> None:
        wheel = next(n for n in files if n.endswith(".dist-info/WHEEL"))
        text = re.sub(r"^Tag: .*\n", "", files[wheel].decode(), flags=re.M)
        files[wheel] = (text + f"Tag: {tag}\n").encode()
    return _rewrite_wheel(built["wheel"], into, edit, f"mochi_hello-0.1.0-{tag}.whl")


def _gate(name: str, built: dict[str, Any], monkeypatch: pytest.MonkeyPatch, wheel: Path | None = None,
          **plan_changes: Any) -> str:
    from tasks.publish import gates
    files = gates._Files(_plan(built, monkeypatch, **plan_changes), built["sdist"], wheel or built["wheel"],
                         _entries(built))
    return str(dict(gates.GATES)[name](files))


def _fails(name: str, built: dict[str, Any], monkeypatch: pytest.MonkeyPatch, wheel: Path | None = None,
           **plan_changes: Any) -> tuple[str, str]:
    from tasks.publish.gates import _Fail
    with pytest.raises(_Fail) as caught:
        _gate(name, built, monkeypatch, wheel, **plan_changes)
    return caught.value.detail, caught.value.fix


# -- the dry run, the sdist, the wheel -------------------------------------------------------------------------

def test_dry_run_builds_runs_every_gate_and_uploads_nothing(built: dict[str, Any]) -> None:
    out = built["proc"].stdout
    for gate in GATES:
        assert re.search(rf"^  ok   {gate}: ", out, re.M), f"{gate} did not pass:\n{out}"
    assert "dry run: every gate passed; nothing was uploaded" in out
    ran = {line[3:].strip() for line in out.splitlines() if line.startswith(".  ")}
    assert {"publish-tree", "publish-compile", "publish-sdist", "publish-wheel", "publish-gates"} <= ran
    assert not ran & {"publish-attest", "publish"}
    state = built["root"] / ".mochi" / "publish"
    assert not (state / "uploaded.json").exists() and not (state / "attest.json").exists()
    assert sorted(p.name for p in (built["root"] / "dist").iterdir()) == sorted([built["sdist"].name,
                                                                                 built["wheel"].name])
    assert "`mochi-hello` runs (printed '3'" in out, "the import gate ran the installed console script"


def test_the_sdist_is_a_complete_source_distribution(built: dict[str, Any]) -> None:
    with tarfile.open(built["sdist"]) as tf:
        names = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile()}
        pkg_info = tf.extractfile("mochi_hello-0.1.0/PKG-INFO").read().decode()  # type: ignore[union-attr]
        pyproject = tf.extractfile("mochi_hello-0.1.0/pyproject.toml").read().decode()  # type: ignore[union-attr]
        cmake = tf.extractfile("mochi_hello-0.1.0/CMakeLists.txt").read().decode()  # type: ignore[union-attr]
    assert {"PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md", "LICENSE", "csrc/_mochi_typedfix.c",
            "csrc/runtime/mochi_bridge.h", "csrc/runtime/rt_module.c", "src/mochi_user_app/__init__.py",
            "src/mochi_user_app/generated/app.py", "src/mochi_user_app_externs.py", "mochi/mochi.toml",
            "mochi/mochi.lock", "mochi/app.mochi"} <= names
    meta = Metadata.from_email(pkg_info, validate=True)
    assert (meta.metadata_version, meta.name, str(meta.version), meta.license_expression) == (
        "2.4", "mochi-hello", "0.1.0", "MIT")
    assert str(meta.requires_python) == ">=3.11" and [str(r) for r in meta.requires_dist or []] == ["typedfix==1.0"]
    assert meta.license_files == ["LICENSE"] and meta.summary == "Adds two numbers through typedfix"
    assert 'build-backend = "scikit_build_core.build"' in pyproject and "generated by mochi-pybridge" in pyproject
    assert 'py-api = "cp311"' in pyproject and 'mochi-hello = "mochi_user_app:main"' in pyproject
    assert "Python_add_library(_mochi_typedfix MODULE USE_SABI 3.11 WITH_SOABI" in cmake
    record = json.loads((built["root"] / ".mochi" / "publish" / "wheel.json").read_text())
    assert record["from"] == built["sdist"].name, "the wheel is built from the sdist"


def test_the_sdist_alone_builds_the_wrappers_and_gives_a_working_package(built: dict[str, Any],
                                                                         tmp_path: Path, index: FixtureIndex) -> None:
    # No network: the runtime dependencies come from the local index only; the build backend (scikit-build-core,
    # CMake, Ninja) is this environment's, as --no-build-isolation says.
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-build-isolation",
                           "--target", str(target), "--index-url", index.url, str(built["sdist"])],
                          capture_output=True, text=True, env=clean_pip_env(), timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list((target / "mochi_user_app" / "_wrappers").glob("_mochi_typedfix*.so")), "the wrapper was compiled"
    assert (target / "typedfix").is_dir() and (target / "helperfix").is_dir()
    run = subprocess.run([str(target / "bin" / "mochi-hello")], capture_output=True, text=True, check=False,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert (run.returncode, run.stdout) == (0, "3\n"), run.stderr


# -- tags, one test per abi-tag-policy --------------------------------------------------------------------------

def test_policy_abi3_tags_the_wheel_cp311_abi3_with_its_manylinux_platform(built: dict[str, Any],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    name, version, _, tags = parse_wheel_filename(built["wheel"].name)
    assert (name, str(version)) == ("mochi-hello", "0.1.0")
    assert {(t.interpreter, t.abi) for t in tags} == {("cp311", "abi3")}
    assert {t.platform for t in tags} >= {"manylinux_2_17_x86_64"}
    assert tags & set(sys_tags()), "installable on this interpreter"
    assert "(abi3)" in _gate("abi-tag", built, monkeypatch)


def test_policy_abi3t_stands_for_cp315_abi3t_and_is_refused_where_it_cannot_be_built(
        built: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tasks.errors import PublishError
    from tasks.publish.gates import expected_tags
    from tasks.publish.sdist import py_api
    from tasks.publish.wheel import check_build_interpreter
    plat = "manylinux_2_17_x86_64"
    # The tag a free-threaded CPython 3.15 build writes (scikit-build-core, wheel.py-api = "cp315t").
    tags = parse_wheel_filename(f"mochi_hello-0.1.0-cp315-abi3t-{plat}.whl")[3]
    assert expected_tags("abi3t", (3, 15), frozenset([plat])) == tags == {Tag("cp315", "abi3t", plat)}
    plan = _plan(built, monkeypatch, policy="abi3t", floor=(3, 15), requires_python=">=3.15")
    assert py_api(plan) == "cp315t"
    detail, _ = _fails("abi-tag", built, monkeypatch, policy="abi3t", floor=(3, 15))
    assert "carries ['cp311-abi3-manylinux2014_x86_64', 'cp311-abi3-manylinux_2_17_x86_64']" in detail
    assert _gate("abi-tag", built, monkeypatch, _retagged(built, tmp_path, f"cp315-abi3t-{plat}"), policy="abi3t",
                 floor=(3, 15)) == f"cp315-abi3t-{plat} (abi3t)"
    with pytest.raises(PublishError, match=r"takes a free-threaded CPython 3\.15 or newer \(mochi-py runs on "
                                           r"CPython 3\.11\)"):
        check_build_interpreter(plan)
    # Where the interpreter could build it, the wrapper runtime cannot yet: refused, saying why.
    with pytest.raises(PublishError, match=r"newer, and wrapper modules exported with PyModExport \(PEP 793\)"):
        check_build_interpreter(plan, (3, 15), free_threaded=True)


def test_policy_both_stands_for_the_compressed_abi3_abi3t_tag(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from scikit_build_core.builder.wheel_tag import WheelTag

    from tasks.errors import PublishError
    from tasks.publish.gates import expected_tags
    from tasks.publish.sdist import py_api
    from tasks.publish.wheel import check_build_interpreter
    plat = "manylinux_2_17_x86_64"
    tags = parse_wheel_filename(f"mochi_hello-0.1.0-cp315-abi3.abi3t-{plat}.whl")[3]
    assert tags == {Tag("cp315", "abi3", plat), Tag("cp315", "abi3t", plat)}
    assert expected_tags("both", (3, 15), frozenset([plat])) == tags
    plan = _plan(built, monkeypatch, policy="both", floor=(3, 15), requires_python=">=3.15")
    assert py_api(plan) == "cp315.cp315t"
    # What scikit-build-core makes of that request on this GIL CPython 3.11: it ignores it (no abi3 tag at all),
    # which is why the build is refused here instead of publishing a wheel the policy does not describe.
    fallback = WheelTag.compute_best(["x86_64"], py_api=py_api(plan))
    assert (fallback.pyver, fallback.abi) == ("cp311", "cp311")
    assert _gate("abi-tag", built, monkeypatch, _retagged(built, tmp_path, f"cp315-abi3.abi3t-{plat}"),
                 policy="both", floor=(3, 15)).endswith("(both)")
    detail, _ = _fails("abi-tag", built, monkeypatch, _retagged(built, tmp_path / "t", f"cp315-abi3-{plat}"),
                       policy="both", floor=(3, 15))
    assert "stands for ['cp315-abi3-manylinux_2_17_x86_64', 'cp315-abi3t-manylinux_2_17_x86_64']" in detail
    with pytest.raises(PublishError, match=r"abi-tag-policy 'both' .* builds the free-threaded stable ABI"):
        check_build_interpreter(plan)


# -- every gate failing, each naming the check and the fix -----------------------------------------------------

def test_metadata_gate_names_a_missing_field_and_where_to_add_it(built: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    def drop_summary(files: dict[str, bytes]) -> None:
        files[_meta(files)] = re.sub(rb"^Summary: .*\n", b"", files[_meta(files)], flags=re.M)
    detail, fix = _fails("metadata", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, drop_summary))
    assert detail == f"{built['wheel'].name}: missing Summary"
    assert fix.startswith('add description = "one line about the program" under [package]')
    detail, _ = _fails("metadata", built, monkeypatch, requires_python=">=3.12")
    assert "missing Requires-Python" in detail


def test_license_gate_refuses_an_expression_that_is_not_spdx(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    def bad_license(files: dict[str, bytes]) -> None:
        meta = _meta(files)
        files[meta] = files[meta].replace(b"License-Expression: MIT", b"License-Expression: MIT OR Nope")
    detail, fix = _fails("license", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, bad_license))
    assert "License-Expression 'MIT OR Nope' is not valid SPDX" in detail
    assert fix.startswith('set license = "<SPDX expression>" under [package] (') and "mochi.toml:5:11" in fix


def test_twine_gate_fails_without_a_long_description(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    def no_readme(files: dict[str, bytes]) -> None:
        head = files[_meta(files)].split(b"\n\n", 1)[0]
        files[_meta(files)] = re.sub(rb"^Description-Content-Type: .*\n?", b"", head + b"\n", flags=re.M)
    detail, fix = _fails("twine-check", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, no_readme))
    assert "twine check --strict" in detail and "long_description" in detail
    assert "add a README.md beside mochi.toml or set [package].readme" in fix


def test_wheel_contents_gate_reports_bytecode_in_the_wheel(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    def add_pyc(files: dict[str, bytes]) -> None:
        files["mochi_user_app/generated/app.pyc"] = b"\x00" * 16
    detail, fix = _fails("check-wheel-contents", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, add_pyc))
    assert "W001" in detail and "fix the compiler's output" in fix


def test_abi3audit_gate_names_a_symbol_outside_the_stable_abi(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    c = tmp_path / "bad.c"
    c.write_text("extern void *PyCode_NewEmpty(const char *, const char *, int);\n"
                 "void *mochi_bad(void) { return PyCode_NewEmpty(\"a\", \"b\", 1); }\n")
    so = tmp_path / "_mochi_bad.abi3.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(c)], check=True)

    def add_so(files: dict[str, bytes]) -> None:
        files["mochi_user_app/_wrappers/_mochi_bad.abi3.so"] = so.read_bytes()
    detail, fix = _fails("abi3audit", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path / "w", add_so))
    assert "_mochi_bad.abi3.so uses PyCode_NewEmpty" in detail and "stable ABI" in fix


def test_platform_gate_refuses_a_tag_older_than_the_symbols_allow(built: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    old = _retagged(built, tmp_path, "cp311-abi3-manylinux_2_5_x86_64")
    detail, fix = _fails("platform-tag", built, monkeypatch, old)
    assert "claims manylinux_2_5_x86_64, but its modules need manylinux_2_17_x86_64" in detail
    assert "GLIBC_2.14" in detail and "manylinux container" in fix
    detail, _ = _fails("platform-tag", built, monkeypatch, _retagged(built, tmp_path / "l", "cp311-abi3-linux_x86_64"))
    assert "is tagged linux_x86_64, which package indexes refuse" in detail


def test_capabilities_gate_wants_them_declared_and_within_the_table(built: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    detail, fix = _fails("capabilities", built, monkeypatch, capabilities_declared=None)
    assert detail.startswith("mochi.toml declares no [python.capabilities]") and "[python.capabilities]" in fix

    def add_net(files: dict[str, bytes]) -> None:
        files["mochi_user_app/generated/net.py"] = b"import socket\n"
    detail, fix = _fails("capabilities", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, add_net))
    assert "needs capabilities [python.capabilities] does not allow: net (mochi_user_app/generated/net.py:1" in detail
    assert "net = true" in fix


def test_import_gate_installs_into_a_fresh_venv_and_reports_a_broken_package(built: dict[str, Any],
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    def break_sidecar(files: dict[str, bytes]) -> None:
        files["mochi_user_app_externs.py"] = b"raise ImportError('the compiled tree is incomplete')\n"
    detail, fix = _fails("import", built, monkeypatch, _rewrite_wheel(built["wheel"], tmp_path, break_sidecar))
    assert "does not import" in detail and "the compiled tree is incomplete" in detail
    detail, fix = _fails("import", built, monkeypatch, script="no-such-script")
    assert "the console script no-such-script failed" in detail and "script = false" in fix


# -- Trusted Publishing: the errors of DESIGN §11, each said clearly ----------------------------------------------

@pytest.fixture
def index_server(tmp_path: Path, wheel_dir: Path) -> Iterator[PyPIServer]:
    """A real pypiserver that already serves the dependencies (so `--index-url` alone installs the package)."""
    packages = tmp_path / "packages"
    packages.mkdir()
    for wheel in ("typedfix-1.0-py3-none-any.whl", "helperfix-1.0-py3-none-any.whl"):
        shutil.copy(wheel_dir / wheel, packages / wheel)
    server = PyPIServer(packages)
    yield server
    server.stop()


@pytest.fixture
def tp(index_server: PyPIServer) -> Iterator[TrustedPublishing]:
    double = TrustedPublishing(upstream=index_server.url).start()
    yield double
    double.stop()


def _dists(built: dict[str, Any]) -> list[Any]:
    from tasks.publish.upload import Dist
    out = []
    for path in (built["sdist"], built["wheel"]):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as zf:
                meta = zf.read("mochi_hello-0.1.0.dist-info/METADATA").decode()
        else:
            with tarfile.open(path) as tf:
                meta = tf.extractfile("mochi_hello-0.1.0/PKG-INFO").read().decode()  # type: ignore[union-attr]
        import hashlib
        out.append(Dist(path, hashlib.sha256(path.read_bytes()).hexdigest(), meta))
    return out


def _upload(built: dict[str, Any], tp: TrustedPublishing, record: Path, environ: dict[str, str] | None = None,
            delays: list[float] | None = None) -> list[str]:
    from tasks.publish.oidc import detect_provider
    from tasks.publish.upload import upload_all
    provider = detect_provider(tp.env() if environ is None else environ)
    return upload_all(tp.repository, "mochi-hello", "mochi.toml:3:11", _dists(built), record,
                      "github:mochi/hello/release.yml@pypi", provider,
                      sleep=(delays if delays is not None else []).append)


def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITLAB_CI"):
        monkeypatch.delenv(key, raising=False)


def test_no_ci_identity_is_refused_saying_how_to_configure_trusted_publishing(
        built: dict[str, Any], tp: TrustedPublishing, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_ci(monkeypatch)
    proc = run_cli("publish", str(built["root"]), "--repository", tp.repository, env=built["env"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "uploads only through Trusted Publishing, and no CI OIDC identity was found" in out
    assert "permissions: id-token: write" in out and "id_tokens" in out and "not accepted" in out
    assert not [r for r in tp.requests if r.startswith("POST")], "nothing was sent to the index"
    assert not (built["root"] / ".mochi" / "publish" / "uploaded.json").exists()


def test_publisher_mismatch_shows_the_configured_publisher_beside_the_token_claims(
        built: dict[str, Any], tp: TrustedPublishing, tmp_path: Path, index_server: PyPIServer) -> None:
    from tasks.errors import PublishError
    tp.publisher = {"repository": "mochi/other"}
    with pytest.raises(PublishError) as caught:
        _upload(built, tp, tmp_path / "uploaded.json")
    text = str(caught.value)
    assert "HTTP 403, publisher mismatch" in text and "invalid-publisher" in text
    assert "configured publisher (mochi.toml): github:mochi/hello/release.yml@pypi" in text
    assert "the token's claims:" in text and "repository=mochi/hello" in text and "ref=refs/tags/v0.1.0" in text
    assert len(tp.issued) == 1, "a mismatch is not retried"
    assert index_server.files() == ["helperfix-1.0-py3-none-any.whl", "typedfix-1.0-py3-none-any.whl"]


def test_a_replayed_token_is_refused_with_409(built: dict[str, Any], tp: TrustedPublishing, tmp_path: Path) -> None:
    from tasks.errors import PublishError
    token = tp.jwt("pypi")
    tp.verify(token, "pypi")  # another step of the job already spent it
    gitlab = {"GITLAB_CI": "true", "PYPI_ID_TOKEN": token}
    with pytest.raises(PublishError, match=r"already accepted this OIDC token \(HTTP 409, replay") as caught:
        _upload(built, tp, tmp_path / "uploaded.json", gitlab)
    assert caught.value.hint == "re-run the CI job: it gets a new token"
    assert not tp.minted and not tp.uploads


def test_a_gitlab_job_token_publishes(built: dict[str, Any], tp: TrustedPublishing, tmp_path: Path,
                                      index_server: PyPIServer) -> None:
    gitlab = {"GITLAB_CI": "true", "PYPI_ID_TOKEN": tp.jwt("pypi")}
    assert _upload(built, tp, tmp_path / "uploaded.json", gitlab) == [built["sdist"].name, built["wheel"].name]
    assert built["sdist"].name in index_server.files()


def test_a_file_already_on_the_index_is_refused_with_file_exists(built: dict[str, Any], tp: TrustedPublishing,
                                                                 tmp_path: Path, index_server: PyPIServer) -> None:
    from tasks.errors import PublishError
    (index_server.packages / built["sdist"].name).write_bytes(b"another build of 0.1.0")
    with pytest.raises(PublishError) as caught:
        _upload(built, tp, tmp_path / "uploaded.json")
    assert f"the index already has a file named {built['sdist'].name} (HTTP 400/409 file exists" in str(caught.value)
    assert "raise [package].version (mochi.toml:3:11)" in caught.value.hint
    assert built["wheel"].name not in index_server.files()


def test_the_fourth_attempt_succeeds_with_a_new_token(built: dict[str, Any], tp: TrustedPublishing, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCHI_PUBLISH_BACKOFF", "1")
    tp.issuer_faults = [503, "expired"]  # the issuer is down, then hands out a token that has already expired
    tp.mint_faults = [None, 503]         # the index refuses that one (422), then its token service is down
    delays: list[float] = []
    assert _upload(built, tp, tmp_path / "uploaded.json", delays=delays) == [built["sdist"].name, built["wheel"].name]
    assert delays == [1, 2, 4], "exponential backoff"
    jtis = [c["jti"] for c in tp.issued]
    assert len(jtis) == 3 and len(set(jtis)) == 3, "a fresh OIDC token for every attempt that reached the issuer"
    assert tp.minted == [jtis[-1]], "only the fourth attempt's token was exchanged"
    out = capsys.readouterr().out
    assert "attempt 1 of 5 failed" in out and "attempt 3 of 5 failed" in out and "with a new OIDC token" in out
    assert len(tp.uploads) == 2


def test_five_failures_end_clearly_and_report_only_what_the_index_confirmed(
        built: dict[str, Any], tp: TrustedPublishing, tmp_path: Path, index_server: PyPIServer) -> None:
    from tasks.errors import PublishError
    record = tmp_path / "uploaded.json"
    tp.upload_faults = {built["wheel"].name: [503] * 5}
    delays: list[float] = []
    with pytest.raises(PublishError) as caught:
        _upload(built, tp, record, delays=delays)
    text = str(caught.value)
    assert "the upload failed 5 times" in text
    assert f"confirmed by the index: {built['sdist'].name}; not uploaded: {built['wheel'].name}" in text
    assert "run the release again later" in text and len(delays) == 4
    assert len({c["jti"] for c in tp.issued}) == 5
    assert json.loads(record.read_text()) == {tp.repository: {built["sdist"].name: _dists(built)[0].sha256}}
    assert built["wheel"].name not in index_server.files()
    # The rerun sends only what the index has not confirmed.
    assert _upload(built, tp, record) == [built["wheel"].name]
    assert [u["content_filename"] for u in tp.uploads] == [[built["sdist"].name], [built["wheel"].name]]


# -- end to end: a real index receives both files; pip installs and runs the published package -------------------

def test_publish_end_to_end_then_a_rerun_uploads_nothing_new(built: dict[str, Any], tp: TrustedPublishing,
                                                              index_server: PyPIServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.cli import main
    from tasks.publish import attest
    for key, value in {**built["env"], **tp.env(), "MOCHI_PUBLISH_BACKOFF": "0"}.items():
        monkeypatch.setenv(key, value)
    signers: list[OfflineSigner] = []
    monkeypatch.setattr(attest, "make_signer", lambda provider: signers.append(OfflineSigner(provider, tp))
                        or signers[-1])
    compiled = tmp_path / "compiled"  # what `mochi build --target=python` wrote elsewhere: taken with --from
    shutil.copytree(built["root"] / ".mochi" / "publish" / "compiled", compiled)
    argv = ["publish", str(built["root"]), "--repository", tp.repository, "--from", str(compiled)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    sdist, wheel = built["sdist"].name, built["wheel"].name
    assert f"took the compiled tree {compiled}" in out
    assert not re.search(r"^\.  publish-(sdist|wheel)$", out, re.M), "the same compiled tree rebuilds nothing"
    assert f"uploaded {sdist} to {tp.repository}" in out and f"uploaded {wheel} to {tp.repository}" in out
    assert sdist in index_server.files() and wheel in index_server.files()
    # PEP 740: each file went with an attestation of exactly its bytes, kept in dist/.
    for upload in tp.uploads:
        (attestation,) = json.loads(upload["attestations"][0])
        statement = json.loads(base64.b64decode(attestation["envelope"]["statement"]))
        assert statement["subject"] == [{"name": upload["content_filename"][0],
                                         "digest": {"sha256": upload["content_sha256"][0]}}]
        assert (built["root"] / "dist" / f"{upload['content_filename'][0]}.publish.attestation").is_file()
        assert upload["name"] == ["mochi-hello"] and upload["requires_dist"] == ["typedfix==1.0"]
    assert signers[0].signed == [sdist, wheel]
    assert [c["aud"] for c in tp.issued] == ["sigstore", "pypi"] and len(tp.minted) == 1

    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--target", str(site),
                          "--index-url", f"{index_server.url}simple/", "mochi-hello"],
                         capture_output=True, text=True, env=clean_pip_env(), timeout=300, check=False)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "mochi_hello-0.1.0.dist-info").is_dir()
    run = subprocess.run([str(site / "bin" / "mochi-hello")], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, check=False)
    assert (run.returncode, run.stdout) == (0, "3\n"), run.stderr

    posts = [r for r in tp.requests if r.startswith("POST")]
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert f"nothing new to upload: {sdist}, {wheel} already on {tp.repository}" in again
    assert [r for r in tp.requests if r.startswith("POST")] == posts, "the rerun sent nothing"
    # No credential was printed or written anywhere.
    stored = b"".join(p.read_bytes() for d in (built["root"] / ".mochi", built["root"] / "dist")
                      for p in d.rglob("*") if p.is_file())
    for secret in tp.secrets:
        assert secret not in out + again and secret.encode() not in stored


# -- the compile step, the attestation check, the manifest, doit ------------------------------------------------

def test_a_failing_or_missing_compiler_is_named_and_the_last_compiled_tree_stays(
        built: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tasks.errors import PublishError
    from tasks.publish.compiled import compile_program, take_compiled
    from tasks.resolve.package import DEFAULT_COMPILE
    compiled = built["root"] / ".mochi" / "publish" / "compiled"
    before = sorted(p.relative_to(compiled) for p in compiled.rglob("*"))
    tree = built["root"] / ".mochi" / "publish" / "tree"
    plan = _plan(built, monkeypatch, compile=(sys.executable, "-c", "import sys; sys.exit('boom: P043')", "{out}"))
    with pytest.raises(PublishError, match=r"the Mochi compiler failed on .*app\.mochi: command failed with exit "
                                           r"code 1.*boom: P043"):
        compile_program(tree, plan, compiled)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `mochi` anywhere
    with pytest.raises(PublishError) as caught:
        compile_program(tree, dataclasses.replace(plan, compile=DEFAULT_COMPILE), compiled)
    assert "mochi: not found" in caught.value.message and "--from DIR" in caught.value.hint
    (tmp_path / "src" / "other").mkdir(parents=True)
    with pytest.raises(PublishError, match=r"src/mochi_user_app/__init__\.py is missing \(src/ holds other/\)"):
        take_compiled(tmp_path, plan, compiled)
    assert sorted(p.relative_to(compiled) for p in compiled.rglob("*")) == before


def test_an_attestation_about_other_bytes_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    from tasks.errors import PublishError
    from tasks.publish.attest import attest, check_attestation

    class Provider:
        def token(self, audience: str) -> str:
            return tp.jwt(audience)
    tp = TrustedPublishing(upstream="http://127.0.0.1:9/")
    tp.url = "http://127.0.0.1:9/"
    sdist = shutil.copy(built["sdist"], tmp_path / built["sdist"].name)
    made = attest([(Path(sdist), _dists(built)[0].sha256)], OfflineSigner(Provider(), tp))
    data = json.loads(Path(made[built["sdist"].name]).read_text())
    with pytest.raises(PublishError, match=r"attests .* not this file"):
        check_attestation(data, Path(sdist), "0" * 64)
    with pytest.raises(PublishError, match="is not a PEP 740 attestation"):
        check_attestation({"version": 2}, Path(sdist), "0" * 64)


@pytest.mark.parametrize(("table", "line", "expected"), [
    ('[package]\nlicence = "MIT"\n', "2:1", "unknown [package] key 'licence'\n  hint: did you mean 'license'?"),
    ('[package]\nlicense = "MTI"\n', "2:11", "not a valid SPDX license expression"),
    ('[package]\nlicense = "mit"\n', "2:11", 'hint: write license = "MIT"'),
    ('[package]\nversion = "one"\n', "2:11", "version 'one' is not a PEP 440 version"),
    ('[python.publish]\nabi-tag-policy = "abi2026"\n', "2:18", "PEP 809 (abi2026) is a draft"),
    ('[python.publish]\nabi-tag-policy = "abi3t"\n', "2:18", "starts at CPython 3.15"),
    ('[python.publish]\nrepository = "http://example.org/legacy/"\n', "2:14", "is not an https URL"),
    ('[python.publish]\ncompile = ["mochi", "build"]\n', "2:11", "never names {out}"),
    ('[python.publish]\nscript = "two words"\n', "2:10", "must be a command name or false"),
    ('[python.publish]\ntokn = "x"\n', "2:1", "unknown [python.publish] key 'tokn'"),
    ('[python.publish]\ntrusted-publisher = "github:a/b"\n', "2:21", "is not github:<owner>/<repo>/<workflow file>"),
    ('[python.publish]\ntrusted-publisher = "google:a@b.org"\n', "2:21", "only from GitHub Actions and GitLab"),
])
def test_package_and_publish_keys_are_validated_with_locations(tmp_path: Path, table: str, line: str,
                                                               expected: str) -> None:
    from tasks.errors import ManifestError
    from tasks.resolve.manifest import parse_manifest
    path = tmp_path / "mochi.toml"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(table, path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert expected in str(caught.value)


def test_publish_settings_parse(tmp_path: Path) -> None:
    from tasks.resolve.manifest import parse_manifest
    (tmp_path / "app.mochi").write_text("")
    m = parse_manifest('[package]\nname = "a"\nversion = "1.0"\nlicense = "Apache-2.0 OR MIT"\n'
                       '[python]\nrequires-python = ">=3.15"\n[python.publish]\nprogram = "app.mochi"\n'
                       'abi-tag-policy = "both"\nscript = false\nrepository = "http://127.0.0.1:8080/legacy/"\n'
                       'compile = "mochi build --target=python {program} --out {out}"\n', tmp_path / "mochi.toml")
    pub = m.python.publish
    assert (m.package.name, m.package.license, pub.abi_tag_policy, pub.script) == ("a", "Apache-2.0 OR MIT", "both", "")
    assert pub.compile == ("mochi", "build", "--target=python", "{program}", "--out", "{out}")
    assert pub.program == str((tmp_path / "app.mochi").resolve()) and pub.attestations is True


def test_doit_runs_the_same_publish_graph(built: dict[str, Any]) -> None:
    proc = subprocess.run([sys.executable, "-m", "doit", "publish-gates", f"project={built['root']}"], cwd=REPO,
                          capture_output=True, text=True, env={**__import__("os").environ, **built["env"]},
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The compile step may run again (an earlier test took the tree --from elsewhere); it makes the same files,
    # so nothing after it is rebuilt: doit and mochi-py share one graph and one state.
    assert re.search(r"^(--|\.) +publish-compile$", proc.stdout, re.M), proc.stdout
    for task in ("publish-sdist", "publish-wheel", "publish-gates"):
        assert f"-- {task}" in proc.stdout, f"{task} is not up to date for doit:\n{proc.stdout}"


def test_a_failing_gate_exits_1_and_uploads_nothing(built: dict[str, Any], tp: TrustedPublishing,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Last in the module: it changes the project. Without [python.capabilities] the capabilities gate fails.
    _no_ci(monkeypatch)
    manifest = built["root"] / "mochi.toml"
    manifest.write_text(manifest.read_text().replace("[python.capabilities]\n", ""))
    proc = run_cli("publish", str(built["root"]), "--repository", tp.repository, env={**built["env"], **tp.env()})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "publish gates failed, nothing was uploaded:" in out
    assert "capabilities: mochi.toml declares no [python.capabilities]; the package needs none" in out
    assert "fix: declare what it may do: add [python.capabilities] to mochi.toml (an empty table" in out
    assert "8 of 9 gates passed" in out
    assert not tp.requests, "neither the identity service nor the index was contacted"


def test_a_release_without_name_version_or_one_program_is_refused_before_anything_runs(
        tmp_path: Path, index: FixtureIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCHI_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "p"
    root.mkdir()
    (root / "mochi.toml").write_text(f'[package]\nname = "x"\n\n[python]\nrequires-python = ">=3.11"\n'
                                     f'indexes = [{{ url = "{index.url}" }}]\n')
    proc = run_cli("publish", "--dry-run", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 2
    assert f"{root / 'mochi.toml'}:1:1: [package].version: a release needs a version" in proc.stderr
    manifest = root / "mochi.toml"
    manifest.write_text(manifest.read_text().replace('name = "x"', 'name = "x"\nversion = "1"'))
    (root / "a.mochi").write_text("")
    (root / "b.mochi").write_text("")
    proc = run_cli("publish", "--dry-run", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    assert "the project has 2 .mochi program(s) (a.mochi, b.mochi)" in proc.stderr
    assert 'program = "app.mochi" under [python.publish]' in proc.stderr
    assert sorted(p.name for p in root.iterdir()) == [".mochi", "a.mochi", "b.mochi", "mochi.toml"]


def test_the_sidecar_gets_the_wrapper_path_after_its_future_imports() -> None:
    import ast

    from tasks.publish.sdist import with_wrapper_path
    text = '"""My sidecar."""\nfrom __future__ import annotations\n\nimport os\n\ndef shout(s):\n    return s\n'
    out = with_wrapper_path(text, "mochi_user_app", Path("app_externs.py"))
    tree = ast.parse(out)
    assert isinstance(tree.body[1], ast.ImportFrom) and tree.body[1].module == "__future__"
    assert "'mochi_user_app', '_wrappers'" in out and out.endswith(text.split("annotations\n", 1)[1])


def test_a_step_runs_again_when_its_output_left_dist(built: dict[str, Any], tmp_path: Path) -> None:
    from tasks.publish_graph import outputs_present
    record = built["root"] / ".mochi" / "publish" / "wheel.json"
    assert outputs_present(str(record), str(built["root"] / "dist"))
    shutil.copy(built["wheel"], tmp_path / built["wheel"].name)
    assert outputs_present(str(record), str(tmp_path))
    (tmp_path / built["wheel"].name).write_bytes(b"tampered")
    assert not outputs_present(str(record), str(tmp_path))
    assert not outputs_present(str(record), str(tmp_path / "empty"))


def test_a_redirect_never_carries_the_upload_token_elsewhere(built: dict[str, Any], tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tasks.errors import PublishError
    from tasks.publish.upload import _upload
    seen: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()

    class Redirect(Elsewhere):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/legacy/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    other, index = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere), ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (other, index):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PublishError, match=r"HTTP 307"):
            _upload(f"http://127.0.0.1:{index.server_address[1]}/legacy/", "pypi-secret", _dists(built)[0])
    finally:
        for server in (other, index):
            server.shutdown()
            server.server_close()
    assert seen == []
