"""Shared fixtures: a real local index serving wheels built from tests/packages, and project factories."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FixtureIndex, build_wheel, fixture_index, package_files, run_cli, write_project

WHEELS = {
    ("typedfix", "1.0"): ("typedfix", ("helperfix>=1",)),
    ("helperfix", "1.0"): ("helperfix", ()),
    ("liarfix", "1.0"): ("liarfix", ()),
    ("liarfix", "1.1"): ("liarfix", ()),
}
EXTRA_WHEELS = {
    ("extrafix", "1.0"): ("extrafix", ('helperfix>=1; extra == "fast"',), ("fast",)),
    ("cyca", "1.0"): ("cyca", ("cycb",), ()),
    ("cycb", "1.0"): ("cycb", ("cyca",), ()),
    ("richfix", "1.0"): ("richfix", (), ()),
    ("tablefix", "1.0"): ("tablefix", (), ()),
    ("triofix", "1.0"): ("triofix", (), ()),
}


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    for (name, version), (pkg, requires) in WHEELS.items():
        build_wheel(out, name, version, package_files(pkg), requires)
    extra = out / "extra"
    for (name, version), (pkg, requires, extras) in EXTRA_WHEELS.items():
        build_wheel(extra, name, version, package_files(pkg), requires, extras=extras)
    return out


@pytest.fixture(scope="session")
def index(wheel_dir: Path) -> Iterator[FixtureIndex]:
    idx = FixtureIndex()
    for wheel in sorted(wheel_dir.glob("*.whl")):
        idx.add(wheel)
    idx.start()
    yield idx
    idx.stop()


MANIFEST = """\
[python-dependencies]
typedfix = "^1.0"
liarfix = "==1.0"

[python]
requires-python = ">=3.11"
indexes = [{{ url = "{url}", priority = "primary" }}]
"""

PROGRAM = """\
import python "typedfix@^1" as typedfix
import python "liarfix" as liarfix

print(typedfix.add(1, 2))
"""


@pytest.fixture
def make_project(tmp_path: Path, index: FixtureIndex) -> Callable[..., Path]:
    def make(manifest: str | None = None, program: str = PROGRAM, name: str = "proj") -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "mochi.toml").write_text(manifest if manifest is not None else MANIFEST.format(url=index.url))
        (root / "app.mochi").write_text(program)
        return root
    return make


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"MOCHI_CACHE_DIR": str(tmp_path / "cache")}


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory, index: FixtureIndex) -> dict[str, object]:
    """One project locked once per test module; tests read it and must not change it."""
    from helpers import run_cli
    base = tmp_path_factory.mktemp("locked")
    root = base / "proj"
    root.mkdir()
    (root / "mochi.toml").write_text(MANIFEST.format(url=index.url))
    (root / "app.mochi").write_text(PROGRAM)
    env = {"MOCHI_CACHE_DIR": str(base / "cache")}
    first = run_cli("lock", str(root), env=env)
    return {"root": root, "env": env, "first": first, "cache": base / "cache"}


@pytest.fixture
def copy_project(tmp_path: Path) -> Callable[[Path], Path]:
    def copy(src: Path) -> Path:
        dest = tmp_path / src.name
        shutil.copytree(src, dest, symlinks=True)
        return dest
    return copy


# The tablefix project, locked twice: default settings, and every opt-in of the type table.
OPTED_IN = ('async-mode = "persistent"\nany = "handle"\n'
            'monomorphise = [{ item = "tablefix.first", T = "int" }, { item = "tablefix.first", T = "str" }]\n')


@pytest.fixture(scope="session")
def table(tmp_path_factory: pytest.TempPathFactory, wheel_dir: Path) -> Iterator[dict[str, Any]]:
    idx: FixtureIndex = fixture_index(sorted((wheel_dir / "extra").glob("tablefix-*.whl")))
    base = tmp_path_factory.mktemp("table")
    env = {"MOCHI_CACHE_DIR": str(base / "cache")}
    default = write_project(base / "default", 'tablefix = "1.0"', idx.url)
    opted = write_project(base / "opted", 'tablefix = "1.0"', idx.url, OPTED_IN)
    yield {"default": default, "opted": opted, "procs": [run_cli("lock", str(default), env=env),
                                                         run_cli("lock", str(opted), env=env)]}
    idx.stop()
