"""Issue 14 item 9: a bounded manifest fuzzer. Random and mutated `mochi.toml` texts (TOML structures with the
manifest's keys and random keys, values and types; valid manifests with bytes flipped, inserted or dropped;
random bytes) go through the manifest loader and the CLI entry, in-process: the loader returns a manifest or
raises a ManifestError, and the CLI exits 0 or 2 with no traceback, whatever the text.

The CLI commands used are those that read mochi.toml and nothing slow (no interpreter probe, no network):
`export-pylock` (0 for a valid manifest, 2 otherwise) and `remove` (2: a name that is not there, or the
manifest's error).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tasks.cli import main
from tasks.errors import ManifestError, SourceError
from tasks.lock.lockfile import render_mochi_lock
from tasks.resolve.manifest import _DEP_KEYS, _PYTHON_KEYS, _TOP_KEYS, load_manifest, unsupported_settings
from tasks.resolve.package import PACKAGE_KEYS, PUBLISH_KEYS
from tasks.resolve.sources import parse_imports

FUZZ = settings(max_examples=120, deadline=timedelta(seconds=5), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

WORDS = (">=3.11", ">=3.8", "^1.2", "~1", "~=1.4", "*", "==1.0", "1.2.3", "^0", "^", "=>1", "net", "fs", "bytecode",
         "https://127.0.0.1:1/simple", "file:///nonexistent", "git@host:x.git", "..", "/", "", " ", "3.12+",
         "allow", "deny", "per-call", "persistent", "handle", "refuse", "auto", "abi3", "app.mochi",
         "sys_platform == 'linux'", "extra ==", "pypi:github:o/r/w.yml", "\x00", "é", "\\", '"', "[", "{")
KEYS = st.one_of(st.sampled_from(sorted({*_TOP_KEYS, *_PYTHON_KEYS, *_DEP_KEYS, *PACKAGE_KEYS, *PUBLISH_KEYS,
                                         "url", "priority", "item", "T", "event-loop", "fallback", "aggressive",
                                         "inspect-mode", "net", "fs", "startup-hook", "typedfix", "Typed_Fix"})),
                 st.text(min_size=1, max_size=8))
SCALARS = st.one_of(st.booleans(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                    st.floats(allow_nan=False), st.sampled_from(WORDS), st.text(max_size=12), st.dates())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=10)
TABLES = st.fixed_dictionaries({}, optional={
    "python-dependencies": st.dictionaries(KEYS, VALUES, max_size=3),
    "python": st.dictionaries(KEYS, VALUES, max_size=4),
    "package": st.dictionaries(KEYS, VALUES, max_size=3),
}) | st.dictionaries(KEYS, VALUES, max_size=3)

SEEDS = (
    '[python-dependencies]\ntypedfix = "^1.0"\nhttpx = { version = "^0.27", extras = ["http2"] }\n\n'
    '[python]\nrequires-python = ">=3.11"\nindexes = [{ url = "http://127.0.0.1:1/simple", priority = "primary" }]\n'
    'capabilities = { net = true }\nstubgen = { fallback = "deny" }\n',
    '[package]\nname = "app"\nversion = "0.1.0"\n\n[python-dependencies]\n\n[python]\nrequires-python = ">=3.12"\n\n'
    '[python.capabilities]\nnet = true\nfs = false\n\n[python.publish]\nprogram = "app.mochi"\n',
    '[python]\nrequires-python = ">=3.11"\nasync-mode = "persistent"\nmonomorphise = [{ item = "a.b", T = "int" }]\n'
    'trusted-publishers = { typedfix = "github:o/r/release.yml" }\nruntime = { event-loop = "persistent" }\n',
)


@st.composite
def mutated(draw: Any) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)).encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(("flip", "insert", "delete", "dup-line")))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from((b"=", b"[", b"]", b"{", b"}", b'"', b"\n", b",", b".", b"#", b"\xff",
                                                b"\x00", b"[[python]]\n", b"[python]\n", b"net = 1\n")))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "dup-line":
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            data = bytearray(b"\n".join([*lines[:i + 1], lines[i], *lines[i + 1:]]))
    return bytes(data)


def rendered(table: dict[str, Any]) -> bytes:
    try:
        return tomlkit.dumps(table).encode()
    except Exception:  # tomlkit cannot write every structure hypothesis draws
        assume(False)
        raise


MANIFESTS = st.one_of(TABLES.map(rendered), mutated(), st.binary(max_size=120),
                      st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")))


@contextlib.contextmanager
def _project(text: bytes) -> Iterator[Path]:
    saved = dict(os.environ)
    tmp = Path(tempfile.mkdtemp(prefix="mochi-fuzz-"))
    try:
        (tmp / "mochi.toml").write_bytes(text)
        (tmp / "mochi.lock").write_text(render_mochi_lock([], ">=3.11"), encoding="utf-8")
        os.environ["MOCHI_CACHE_DIR"] = str(tmp / "cache")
        yield tmp
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue() + err.getvalue()


@FUZZ
@given(MANIFESTS)
def test_fuzzed_manifests_are_a_manifest_or_a_message(text: bytes) -> None:
    with _project(text) as root:
        try:
            unsupported_settings(load_manifest(root / "mochi.toml"))
            valid = True
        except ManifestError as exc:
            valid = False
            assert exc.where.line >= 1 and exc.where.col >= 1, str(exc)  # a place the user can go to
        for argv in (("export-pylock", "--project", str(root), "-o", str(root / "pylock.toml")),
                     ("remove", "--project", str(root), "zz-not-a-dependency")):
            rc, said = _cli(*argv)
            assert "Traceback" not in said, said
            assert rc in (0, 2), (rc, said)
            if argv[0] == "export-pylock":
                assert rc == (0 if valid else 2), said
            if rc == 2:
                assert said.startswith("error: ") and said.strip() != "error:", said


@FUZZ
@given(st.text(max_size=200) | st.sampled_from(('import python "x@^1" as y\n', 'import python "x[a]@>=1"\n',
                                                 'import python "" as\n', 'import python "x@=>1" as y\n')))
def test_fuzzed_import_lines_are_imports_or_a_message(text: str) -> None:
    try:
        parse_imports(text, Path("app.mochi"))
    except SourceError as exc:
        assert exc.where.line >= 1
