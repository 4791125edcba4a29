"""mochi.toml parsing: every supported form, and errors that name file:line:col and change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from tasks.errors import ManifestError
from tasks.manifest import parse_manifest, translate_constraint

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
    ('[python]\nasync-mode = "persistent"\n', "2:1", "is not supported by this version yet"),
])
def test_errors_name_file_line_and_column(text: str, where: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, P)
    assert str(info.value).startswith(f"mochi.toml:{where}: "), str(info.value)
    assert message in str(info.value)
    assert "\n  hint: " in str(info.value) or "must" in str(info.value)


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
