"""Resolution: markers, extras, index priorities, path and git sources, sticky pins, the pip fallback,
cycles and yanked files, each against its own local index."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PACKAGES, FixtureIndex, build_wheel, fixture_index, run_cli

from tasks.resolve.resolver import find_cycle


@pytest.fixture
def base_index(wheel_dir: Path) -> Iterator[FixtureIndex]:
    """A private index with every fixture wheel (tests may add, yank or break files)."""
    idx = fixture_index(sorted(wheel_dir.glob("*.whl")) + sorted((wheel_dir / "extra").glob("*.whl")))
    yield idx
    idx.stop()


def _project(tmp_path: Path, deps: str, python: str = "", program: str = "", name: str = "proj") -> Path:
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    (root / "mochi.toml").write_text(f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\n{python}')
    (root / "app.mochi").write_text(program)
    return root


def _index_line(*urls_priorities: tuple[str, str]) -> str:
    inner = ", ".join(f'{{ url = "{u}", priority = "{p}" }}' for u, p in urls_priorities)
    return f"indexes = [{inner}]\n"


def _lock(root: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = run_cli("lock", str(root), *extra, env={"MOCHI_CACHE_DIR": str(tmp_path / "cache"), **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = tomllib.loads((root / "mochi.lock").read_text())
    return {"proc": proc, "pkgs": {p["name"]: p for p in data["python-package"]}}


def test_a_marker_that_does_not_apply_leaves_the_dependency_out(tmp_path: Path, base_index: FixtureIndex) -> None:
    root = _project(tmp_path, 'typedfix = "^1"\nliarfix = { version = "==1.0", markers = "sys_platform == \'win32\'" }',
                    _index_line((base_index.url, "primary")))
    pkgs = _lock(root, tmp_path)["pkgs"]
    assert sorted(pkgs) == ["helperfix", "typedfix"]
    root2 = _project(tmp_path, 'liarfix = { version = "==1.0", markers = "sys_platform == \'linux\'" }',
                     _index_line((base_index.url, "primary")), name="proj2")
    pkgs2 = _lock(root2, tmp_path)["pkgs"]
    assert pkgs2["liarfix"]["markers"] == "sys_platform == 'linux'"


def test_extras_bring_their_requirements(tmp_path: Path, base_index: FixtureIndex) -> None:
    idx = _index_line((base_index.url, "primary"))
    plain = _lock(_project(tmp_path, 'extrafix = "1.0"', idx, name="plain"), tmp_path)["pkgs"]
    assert sorted(plain) == ["extrafix"]
    fast = _lock(_project(tmp_path, 'extrafix = { version = "1.0", extras = ["fast"] }', idx, name="fast"),
                 tmp_path)["pkgs"]
    assert sorted(fast) == ["extrafix", "helperfix"]
    assert fast["extrafix"]["extras"] == ["fast"]
    assert fast["extrafix"]["dependencies"] == ['helperfix>=1; extra == "fast"']


def test_supplemental_index_is_used_only_for_what_the_primary_lacks(tmp_path: Path, wheel_dir: Path) -> None:
    primary = fixture_index([*wheel_dir.glob("typedfix-*.whl"), *wheel_dir.glob("helperfix-*.whl"),
                             *wheel_dir.glob("liarfix-1.0-*.whl")])
    supplemental = fixture_index(sorted(wheel_dir.glob("liarfix-*.whl")))
    try:
        root = _project(tmp_path, 'typedfix = "^1"\nliarfix = ">=1.0"',
                        _index_line((primary.url, "primary"), (supplemental.url, "supplemental")))
        pkgs = _lock(root, tmp_path)["pkgs"]
    finally:
        primary.stop()
        supplemental.stop()
    # uv's first-index strategy: liarfix comes from the primary (1.0), though the supplemental has 1.1
    assert pkgs["liarfix"]["version"] == "1.0"
    assert pkgs["liarfix"]["source"] == {"kind": "index", "index": primary.url}
    assert pkgs["typedfix"]["source"]["index"] == primary.url


def test_a_dependency_can_be_pinned_to_an_explicit_index(tmp_path: Path, wheel_dir: Path) -> None:
    primary = fixture_index([*wheel_dir.glob("typedfix-*.whl"), *wheel_dir.glob("helperfix-*.whl")])
    explicit = fixture_index(sorted(wheel_dir.glob("liarfix-*.whl")))
    try:
        root = _project(tmp_path, f'typedfix = "^1"\nliarfix = {{ version = ">=1", index = "{explicit.url}" }}',
                        _index_line((primary.url, "primary"), (explicit.url, "explicit")))
        pkgs = _lock(root, tmp_path)["pkgs"]
        assert pkgs["liarfix"]["source"] == {"kind": "index", "index": explicit.url}
        assert pkgs["liarfix"]["version"] == "1.1"
        # without the pin, an explicit index is never searched
        root2 = _project(tmp_path, 'liarfix = ">=1"', _index_line((primary.url, "primary"), (explicit.url, "explicit")),
                         name="unpinned")
        proc = run_cli("lock", str(root2), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
        assert proc.returncode == 2
        assert "liarfix" in proc.stdout + proc.stderr
    finally:
        primary.stop()
        explicit.stop()


def _source_tree(tmp_path: Path) -> Path:
    src = tmp_path / "localfix-src"
    shutil.copytree(PACKAGES / "localfix" / "src_tree", src)
    return src


def _call_triple(root: Path) -> str:
    code = (f"import sys; sys.path.insert(0, {str(root / 'python_wrap' / 'localfix')!r})\n"
            "import _mochi_localfix as m; print(m.localfix_triple(14))")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_path_sources_directory_and_wheel(tmp_path: Path, base_index: FixtureIndex) -> None:
    src = _source_tree(tmp_path)
    root = _project(tmp_path, 'localfix = { path = "../localfix-src" }', _index_line((base_index.url, "primary")))
    pkgs = _lock(root, tmp_path)["pkgs"]
    assert pkgs["localfix"]["source"] == {"kind": "path", "path": "../localfix-src"}
    assert pkgs["localfix"]["version"] == "2.0"
    assert pkgs["localfix"]["pypi-simple-sha256"] == ""
    assert _call_triple(root) == "42"
    pylock = tomllib.loads((root / "pylock.toml").read_text())
    assert pylock["packages"][0]["directory"] == {"path": "../localfix-src"}
    check = run_cli("check", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    assert check.returncode == 0, check.stdout

    wheel = build_wheel(tmp_path / "dist", "localfix", "2.0", {
        "localfix/__init__.py": (src / "localfix" / "__init__.py").read_bytes(), "localfix/py.typed": b""})
    root2 = _project(tmp_path, f'localfix = {{ path = "{wheel}" }}', _index_line((base_index.url, "primary")),
                     name="wheelproj")
    pkgs2 = _lock(root2, tmp_path)["pkgs"]
    assert pkgs2["localfix"]["wheel-filename"] == wheel.name
    assert _call_triple(root2) == "42"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


def test_git_source_at_a_tag(tmp_path: Path, base_index: FixtureIndex) -> None:
    src = _source_tree(tmp_path)
    _git("init", "-q", cwd=src)
    _git("add", "-A", cwd=src)
    _git("commit", "-q", "-m", "v2", cwd=src)
    _git("tag", "v2", cwd=src)
    commit = _git("rev-parse", "HEAD", cwd=src)
    (src / "localfix" / "__init__.py").write_text("def triple(x: int) -> int:\n    return 0\n")
    _git("commit", "-q", "-am", "after the tag", cwd=src)
    root = _project(tmp_path, f'localfix = {{ git = "{src.as_uri()}", tag = "v2" }}',
                    _index_line((base_index.url, "primary")))
    pkgs = _lock(root, tmp_path)["pkgs"]
    assert pkgs["localfix"]["source"] == {"kind": "git", "url": src.as_uri(), "commit": commit}
    assert _call_triple(root) == "42"  # the tagged commit, not the later one
    pylock = tomllib.loads((root / "pylock.toml").read_text())
    assert pylock["packages"][0]["vcs"] == {"type": "git", "url": src.as_uri(), "commit-id": commit}


def test_pins_are_sticky_until_their_manifest_entry_changes(tmp_path: Path, wheel_dir: Path) -> None:
    idx = fixture_index([*wheel_dir.glob("typedfix-*.whl"), *wheel_dir.glob("helperfix-*.whl"),
                         *wheel_dir.glob("liarfix-1.0-*.whl")])
    try:
        root = _project(tmp_path, 'typedfix = "^1"\nliarfix = ">=1.0"', _index_line((idx.url, "primary")))
        assert _lock(root, tmp_path)["pkgs"]["liarfix"]["version"] == "1.0"
        idx.add(next(wheel_dir.glob("liarfix-1.1-*.whl")))
        manifest = root / "mochi.toml"
        manifest.write_text(manifest.read_text().replace('typedfix = "^1"', 'typedfix = ">=1.0"'))
        assert _lock(root, tmp_path)["pkgs"]["liarfix"]["version"] == "1.0"  # another entry changed: kept
        manifest.write_text(manifest.read_text().replace('liarfix = ">=1.0"', 'liarfix = ">=1.0,<3"'))
        assert _lock(root, tmp_path)["pkgs"]["liarfix"]["version"] == "1.1"  # its own entry changed: released
    finally:
        idx.stop()


def test_pip_fallback_locks_the_same_versions(tmp_path: Path, base_index: FixtureIndex) -> None:
    deps = 'typedfix = "^1"\nliarfix = ">=1.0"\nextrafix = { version = "1.0", extras = ["fast"] }'
    idx = _index_line((base_index.url, "primary"))
    with_uv = _lock(_project(tmp_path, deps, idx, name="uv"), tmp_path)
    with_pip = _lock(_project(tmp_path, deps, idx, name="pip"), tmp_path, env={"MOCHI_UV": str(tmp_path / "no-uv")})
    assert "resolved 4 packages with uv" in with_uv["proc"].stdout
    assert "resolved 4 packages with pip" in with_pip["proc"].stdout
    assert {n: p["version"] for n, p in with_pip["pkgs"].items()} == {n: p["version"]
                                                                      for n, p in with_uv["pkgs"].items()}
    assert {n: p["wheel-sha256"] for n, p in with_pip["pkgs"].items()} == {n: p["wheel-sha256"]
                                                                           for n, p in with_uv["pkgs"].items()}


def test_a_dependency_cycle_is_refused_naming_it(tmp_path: Path, base_index: FixtureIndex) -> None:
    root = _project(tmp_path, 'cyca = "1.0"', _index_line((base_index.url, "primary")))
    proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 2
    assert "dependency cycle: cyca -> cycb -> cyca" in proc.stdout + proc.stderr
    assert not (root / "mochi.lock").exists()


def test_find_cycle() -> None:
    assert find_cycle({"a": ("b",), "b": ("c",), "c": ()}) is None
    assert find_cycle({"a": ("b",), "b": ("c",), "c": ("b",)}) == ["b", "c", "b"]
    assert find_cycle({"a": ("a",)}) == ["a", "a"]


def test_yanked_files_need_an_exact_pin(tmp_path: Path, base_index: FixtureIndex) -> None:
    base_index.yanked["liarfix-1.1-py3-none-any.whl"] = "broken release"
    idx = _index_line((base_index.url, "primary"))
    assert _lock(_project(tmp_path, 'liarfix = ">=1.0"', idx, name="range"), tmp_path)["pkgs"]["liarfix"][
        "version"] == "1.0"
    assert _lock(_project(tmp_path, 'liarfix = "==1.1"', idx, name="exact"), tmp_path)["pkgs"]["liarfix"][
        "version"] == "1.1"


def test_server_errors_are_retried_then_reported(tmp_path: Path, base_index: FixtureIndex) -> None:
    from tasks.errors import FetchError
    from tasks.fetch.index import fetch_project
    base_index.failures["/simple/liarfix/"] = 503
    with pytest.raises(FetchError, match=r"HTTP 503 .*after 3 attempts"):
        fetch_project(base_index.url, "liarfix")
    assert base_index.requests.count("/simple/liarfix/") == 3
