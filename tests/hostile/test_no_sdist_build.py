"""Issue 14, item 1: nothing is built at lock time. An index package that ships only an sdist, whose
build backend writes a marker file when it runs, fails the lock naming it, and the backend never ran."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FixtureIndex, fixture_index, run_cli, write_project

_BACKEND = '''\
from pathlib import Path
Path({marker!r}).write_text("the build backend ran")  # at import: any use of the backend leaves it


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = Path(metadata_directory) / "sdistonly-1.0.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text("Metadata-Version: 2.1\\nName: sdistonly\\nVersion: 1.0\\n")
    return d.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("not this far")
'''

_PYPROJECT = '''\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "sdistonly"
dynamic = ["version"]
'''


def _sdist(marker: Path) -> bytes:
    """`sdistonly-1.0.tar.gz`: no PKG-INFO, a dynamic version, so learning its metadata means running the backend."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in (("pyproject.toml", _PYPROJECT), ("backend.py", _BACKEND.format(marker=str(marker))),
                          ("sdistonly/__init__.py", "")):
            data = text.encode()
            info = tarfile.TarInfo(f"sdistonly-1.0/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def a_sdist_index(tmp_path: Path, wheel_dir: Path) -> Iterator[tuple[FixtureIndex, Path]]:
    marker = tmp_path / "backend-ran"
    idx = fixture_index(sorted(wheel_dir.glob("helperfix-*.whl")))
    idx.files["sdistonly-1.0.tar.gz"] = _sdist(marker)
    yield idx, marker
    idx.stop()


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_an_sdist_only_dependency_fails_naming_it_and_is_never_built(
        tmp_path: Path, a_sdist_index: tuple[FixtureIndex, Path], resolver: str) -> None:
    idx, marker = a_sdist_index
    root = write_project(tmp_path / "proj", 'sdistonly = "1.0"\nhelperfix = "1.0"', idx.url)
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    if resolver == "pip":
        env["MOCHI_UV"] = str(tmp_path / "no-uv")  # uv missing: pip's resolver, the fallback
    proc = run_cli("lock", str(root), env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "sdistonly" in out
    if resolver == "uv":
        assert "sdistonly: no wheel fits the target" in out
        assert "never builds a source distribution" in out
    else:
        assert "wheels only: source distributions are never built" in out
    assert not marker.exists(), "the sdist's build backend ran during the lock"
    assert not (root / "mochi.lock").exists()
    assert "Traceback" not in out
