"""mochi.toml parsing: every supported form, and errors that name file:line:col and change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from tasks.errors import ManifestError
from tasks.resolve.manifest import parse_manifest, translate_constraint, unsupported_settings

P = Path("mochi.toml")


@pytest.mark.parametrize(("text", "expected"), [
    ("^1.2", ">=1.2,<2"),
    ("^1.2.3", ">=1.2.3,<2"),
    ("^0.27", ">=0.27,<0.28"),
    ("^0.0.3", ">=0.0.3,<0.0.4"),
    ("~1.2", ">=1.2,<1.3"),
    ("~1", ">=1,<2"),
    ("~=1.4", "~=1.4"),
    (">=1.0, <2", ">=1.0,<2"),
    ("1.2.3", "==1.2.3"),
    ("*", ""),
    ("", ""),
])
def test_constraint_translation(text: str, expected: str) -> None:
    assert translate_constraint(text) == expected


def test_string_and_table_forms() -> None:
    m = parse_manifest(
        '[python-dependencies]\nHTTPX = { version = "^0.27", extras = ["http2", "Brotli"] }\nattrs = ">=23"\n'
        '[python]\nrequires-python = ">=3.11"\ninterpreter = "python3"\nstrict-return-types = false\n'
        'indexes = [{ url = "http://127.0.0.1:1/simple", priority = "primary" }]\n', P)
    attrs, httpx = m.dependencies
    assert (attrs.name, attrs.specifier, attrs.extras) == ("attrs", ">=23", ())
    assert (httpx.name, httpx.specifier, httpx.extras) == ("httpx", ">=0.27,<0.28", ("brotli", "http2"))
    assert httpx.requirement == "httpx[brotli,http2]>=0.27,<0.28"
    assert (httpx.where.line, httpx.where.col) == (2, 1)
    assert m.python.requires_python == ">=3.11"
    assert m.python.interpreter == "python3"
    assert m.python.strict_return_types is False
    assert [(i.url, i.priority) for i in m.python.indexes] == [("http://127.0.0.1:1/simple/", "primary")]


def test_defaults() -> None:
    m = parse_manifest("", P)
    assert m.dependencies == ()
    assert m.python.requires_python == ">=3.12"
    assert m.python.strict_return_types is True
    assert m.python.indexes == ()


@pytest.mark.parametrize(("text", "where", "message"), [
    ('[python-dependencies]\nattrs = ">=1\n', "2:13", "invalid TOML"),
    ('[python-dependencies]\nattrs = ">=1"\n[python]\nrequires-pyton = ">=3.12"\n', "4:1",
     "unknown [python] key 'requires-pyton'"),
    ('[python-dependencies]\n\nattrs = "=>1.0"\n', "3:9", "invalid version constraint '=>1.0' for 'attrs'"),
    ('[python-dependencies]\nattrs = { version = "^x" }\n', "2:21", "invalid version constraint '^x'"),
    ('[python-dependencies]\nattrs = { verison = "1" }\n', "2:11", "unknown dependency key 'verison'"),
    ('[python-dependencies]\nattrs = 3\n', "2:1", "must be a version string or a table"),
    ('[python-dependencies]\nattrs = { version = "1", extras = "x" }\n', "2:35", "'extras' must be a list"),
    ('[python-dependencies]\n"bad name!" = "1"\n', "2:1", "is not a valid distribution name"),
    ('[python]\nrequires-python = "3.12+"\n', "2:19", "invalid requires-python '3.12+'"),
    ('[python]\nstrict-return-types = "no"\n', "2:23", "'strict-return-types' must be true or false"),
    ('[python]\nindexes = [{ url = "ftp://x", priority = "primary" }]\n', "2:11", "is not an http(s) or file URL"),
    ('[python]\nindexes = [{ url = "http://x", priority = "first" }]\n', "2:11", "priority 'first' is not one of"),
    ('[pythn]\n', "1:1", "unknown top-level table 'pythn'"),
    ('[python-dependencies]\nattrs = "1"\nAttrs = "2"\n', "3:1", "names the same distribution as 'attrs'"),
    ('[python-dependencies]\na = { version = "1", markers = "os_name ==" }\n', "2:32", "invalid PEP 508 marker"),
    ('[python-dependencies]\na = { index = "http://i/simple", git = "https://g/r" }\n', "2:40",
     "names both 'index' and 'git'"),
    ('[python-dependencies]\na = { git = "https://g/r", tag = "v1", rev = "abc" }\n', "2:34",
     "names both 'rev' and 'tag'"),
    ('[python-dependencies]\na = { version = "1", tag = "v1" }\n', "2:28", "'tag' needs a 'git' source"),
    ('[python-dependencies]\na = { git = "https://g/r", version = "1" }\n', "2:38", "no effect on a git source"),
    ('[python-dependencies]\na = { git = "nope" }\n', "2:13", "is not a URL git can clone"),
    ('[python-dependencies]\na = { path = "missing-dir" }\n', "2:14", "path 'missing-dir' does not exist"),
    ('[python-dependencies]\na = { index = "ftp://x" }\n', "2:15", "is not an http(s) or file URL"),
    ('[python-dependencies]\na = { version = "1", editable = true }\n', "2:33", "editable installs"),
    ('[python]\nasync-mode = "later"\n', "2:14", "async mode 'later' is not one of per-call, persistent"),
    ('[python]\nasync-mode = "per-call"\nruntime = { event-loop = "persistent" }\n', "3:11", "contradicts"),
    ('[python]\nstubgen = { fallback = "maybe" }\n', "2:24", "stubgen.fallback 'maybe'"),
    ('[python]\nstubgen = { agressive = true }\n', "2:13", "unknown stubgen key 'agressive'"),
    ('[python]\nfree-threaded = "yes"\n', "2:17", "'free-threaded' must be true or false"),
    ('[python]\nrequire-attestations = 3\n', "2:24", "'require-attestations' must be"),
    ('[python]\nmonomorphise = [{ item = "numpy.array" }]\n', "2:16", "needs exactly 'item' and 'T'"),
    ('[python]\nany = "always"\n', "2:7", "'any' must be"),
    ('[python]\nindexes = [{ url = "http://x", priority = "supplemental" }]\n', "2:11", "lists no primary index"),
])
def test_errors_name_file_line_and_column(text: str, where: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, P)
    assert str(info.value).startswith(f"mochi.toml:{where}: "), str(info.value)
    assert message in str(info.value)
    assert "\n  hint: " in str(info.value) or "must" in str(info.value)


def test_sources_markers_and_every_python_key(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    m = parse_manifest(
        '[python-dependencies]\n'
        'a = { version = ">=1", markers = "sys_platform == \'linux\'" }\n'
        'b = { index = "http://127.0.0.1:9/extra" }\n'
        'c = { path = "local" }\n'
        'd = { git = "https://example.invalid/d.git", tag = "v2" }\n'
        'e = { git = "file:///srv/e", rev = "0123abc" }\n'
        'f = { git = "ssh://git@host/f", branch = "main" }\n'
        '[python]\n'
        'runtime = { event-loop = "persistent" }\n'
        'stubgen = { fallback = false, aggressive = true, inspect-mode = false }\n'
        'free-threaded = true\n'
        'require-attestations = ["A_B", "c"]\n'
        'monomorphise = [{ item = "numpy.array", T = "float64" }]\n'
        'any = "handle"\n'
        'indexes = [{ url = "http://p/simple", priority = "primary" }, { url = "http://s/simple", priority = '
        '"supplemental" }, { url = "http://e/simple", priority = "explicit" }]\n',
        tmp_path / "mochi.toml")
    a, b, c, d, e, f = m.dependencies
    assert a.requirement == "a>=1; sys_platform == 'linux'" and a.source_kind == "index"
    assert b.index == "http://127.0.0.1:9/extra/"
    assert (c.source_kind, c.path) == ("path", str((tmp_path / "local").resolve()))
    assert (d.git, d.git_ref) == ("https://example.invalid/d.git", ("tag", "v2"))
    assert e.git_ref == ("rev", "0123abc") and f.git_ref == ("branch", "main")
    assert "tag=v2" in d.fingerprint and "https://example.invalid/d.git" in d.fingerprint
    py = m.python
    assert py.async_mode == "persistent"
    assert (py.stubgen_fallback, py.stubgen_aggressive, py.stubgen_inspect) == ("deny", True, False)
    assert py.free_threaded is True
    assert py.require_attestations == ("a-b", "c")
    assert py.monomorphise == (("numpy.array", "float64"),)
    assert py.any_mode == "handle"
    assert [(i.priority, i.name) for i in py.indexes] == [("primary", "index-0"), ("supplemental", "index-1"),
                                                          ("explicit", "index-2")]
    assert parse_manifest('[python]\nrequire-attestations = true\n', P).python.require_attestations == ("*",)


def test_require_attestations_is_accepted_now_that_it_is_built() -> None:
    m = parse_manifest('[python]\nrequires-python = ">=3.11"\nrequire-attestations = true\n'
                       'trusted-publishers = { a = "google:ci@example.iam.gserviceaccount.com" }\n', P)
    unsupported_settings(m)  # no longer refused at its line
    assert m.python.require_attestations == ("*",)
    assert m.python.trusted_publishers == (("a", "google:ci@example.iam.gserviceaccount.com"),)


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(ManifestError, match="did you mean 'requires-python'"):
        parse_manifest('[python]\nrequires-pyton = ">=3.12"\n', P)


def test_bad_manifest_exits_2_and_changes_nothing(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".mochi" not in p.parts}
    manifest = root / "mochi.toml"
    manifest.write_text(manifest.read_text().replace('liarfix = "==1.0"', 'liarfix = "=1.0"'))
    before[manifest] = manifest.read_bytes()
    proc = run_cli("lock", str(root), env=locked["env"])
    assert proc.returncode == 2
    assert f"error: {manifest}:3:11: invalid version constraint '=1.0' for 'liarfix'" in proc.stderr
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".mochi" not in p.parts}
    assert after == before


def test_imports_must_agree_with_the_manifest(tmp_path: Path) -> None:
    from tasks.errors import SourceError
    from tasks.resolve.sources import check_imports, parse_imports
    m = parse_manifest('[python-dependencies]\nhttpx = { version = ">=0.27", extras = ["http2"] }\n', P)
    ok = parse_imports('import python "httpx[http2]@>=0.27" as h\n', Path("a.mochi"))
    check_imports(ok, m, {"httpx": "0.27.2"})
    assert ok[0].alias == "h"
    extra = parse_imports('let x = 1\n  import python "httpx[brotli]" as h\n', Path("a.mochi"))
    with pytest.raises(SourceError, match=r"a.mochi:2:18: extras brotli of 'httpx' are not in mochi.toml"):
        check_imports(extra, m)
    with pytest.raises(SourceError, match="put the version after '@'"):
        parse_imports('import python "httpx>=1" as h\n', Path("a.mochi"))
    with pytest.raises(SourceError, match="git sources in import specs"):
        parse_imports('import python "x@git+https://h/x" as x\n', Path("a.mochi"))
    assert parse_imports('import python "Typing_Extensions"\n', Path("a.mochi"))[0].alias == "typing_extensions"
