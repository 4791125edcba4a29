"""`check` (and `lock --check`, `doit check`), `export-pylock`, `add`, crash safety and concurrent locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conftest import MANIFEST
from helpers import REPO, fixture_index, run_cli, tree_files


def _cache_wheel(cache: Path, filename: str) -> Path:
    (path,) = (cache / "wheels").glob(f"*/{filename}")
    return path


def test_check_passes_on_a_fresh_lock_and_writes_nothing(locked: dict[str, Any]) -> None:
    root, cache = locked["root"], locked["cache"]
    before = tree_files(root), tree_files(cache)
    for args in (["check", str(root)], ["lock", "--check", str(root)]):
        proc = run_cli(*args, env=locked["env"])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "mochi.lock holds: 3 package(s) checked" in proc.stdout
    assert (tree_files(root), tree_files(cache)) == before


def test_a_flipped_byte_in_the_cache_is_drift_naming_package_and_field(locked: dict[str, Any],
                                                                       copy_project: Any) -> None:
    root = copy_project(locked["root"])
    wheel = _cache_wheel(locked["cache"], "liarfix-1.0-py3-none-any.whl")
    original = wheel.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    wheel.write_bytes(bytes(flipped))
    try:
        proc = run_cli("check", str(root), env=locked["env"])
        dodo = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "check", f"project={root}"],
                              capture_output=True, text=True, env={**os.environ, **locked["env"]}, check=False)
    finally:
        wheel.write_bytes(original)
    assert proc.returncode == 1
    assert "liarfix: wheel-blake3: locked " in proc.stdout
    assert "liarfix: wheel-sha256: locked " in proc.stdout
    assert "typedfix" not in proc.stdout.split("drifted", 1)[1].split("hint:")[0]
    assert dodo.returncode == 1
    assert "liarfix: wheel-blake3" in dodo.stdout + dodo.stderr


def test_manifest_and_pylock_edits_are_drift(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    manifest = root / "mochi.toml"
    manifest.write_text(manifest.read_text().replace('liarfix = "==1.0"', 'liarfix = ">=1.0"'))
    pylock = root / "pylock.toml"
    pylock.write_text(pylock.read_text().replace('version = "1.0"', 'version = "1.5"', 1))
    proc = run_cli("check", str(root), env=locked["env"])
    assert proc.returncode == 1
    assert "liarfix: requested: locked liarfix==1.0, actual liarfix>=1.0" in proc.stdout
    assert "pylock.toml: content: locked rendered from mochi.lock, actual differs" in proc.stdout


def test_a_lost_cache_entry_is_fetched_again_for_the_check(locked: dict[str, Any], copy_project: Any,
                                                           tmp_path: Path) -> None:
    root = copy_project(locked["root"])
    proc = run_cli("check", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "empty-cache")})
    assert proc.returncode == 0, proc.stdout
    assert not (tmp_path / "empty-cache").exists()


def test_export_pylock_renders_the_same_file_from_mochi_lock(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    expected = (root / "pylock.toml").read_bytes()
    (root / "pylock.toml").unlink()
    proc = run_cli("export-pylock", str(root), env=locked["env"])
    assert proc.returncode == 0, proc.stderr
    assert (root / "pylock.toml").read_bytes() == expected
    bad = run_cli("export-pylock", str(root), "-o", str(root / "lock.toml"), env=locked["env"])
    assert bad.returncode == 2
    assert "must be named pylock.toml or pylock.<name>.toml" in bad.stderr
    named = run_cli("export-pylock", str(root), "-o", str(root / "pylock.ci.toml"), env=locked["env"])
    assert named.returncode == 0
    assert (root / "pylock.ci.toml").read_bytes() == expected


def test_pip_installs_from_the_pylock(locked: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "target"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-deps", "--target",
                           str(target), "-r", str(locked["root"] / "pylock.toml")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == [
        "helperfix", "liarfix", "typedfix"]


def test_add_writes_the_manifest_keeping_its_formatting(make_project: Any, wheel_dir: Path) -> None:
    idx = fixture_index([*sorted(wheel_dir.glob("*.whl")), *sorted((wheel_dir / "extra").glob("extrafix-*.whl"))])
    root = make_project(MANIFEST.format(url=idx.url))
    manifest = root / "mochi.toml"
    manifest.write_text("# my project\n" + manifest.read_text().replace(
        'typedfix = "^1.0"', 'typedfix = "^1.0"   # the typed one'))
    before = manifest.read_text()
    proc = run_cli("add", "extrafix[fast]@^1", "--project", str(root))
    assert proc.returncode == 0, proc.stderr
    after = manifest.read_text()
    assert after.startswith("# my project\n")
    assert 'typedfix = "^1.0"   # the typed one' in after
    assert 'extrafix = {version = "^1", extras = ["fast"]}' in after
    changed = run_cli("add", "liarfix@>=1.1", "--project", str(root))
    assert changed.returncode == 0
    assert 'liarfix = ">=1.1"' in manifest.read_text()
    bad = run_cli("add", "liarfix@=>1", "--project", str(root))
    assert bad.returncode == 2
    assert "invalid requirement 'liarfix@=>1'" in bad.stderr
    assert manifest.read_text().replace('liarfix = ">=1.1"', 'liarfix = "==1.0"').replace(
        '\nextrafix = {version = "^1", extras = ["fast"]}', "") == before
    idx.stop()


def test_killing_a_lock_at_any_moment_never_breaks_the_next_one(make_project: Any, tmp_path: Path) -> None:
    """SIGKILL a cold lock at 24 moments spread over its run; every rerun must succeed and check must pass."""
    delays = [0.05 * i for i in range(1, 25)]
    for i, delay in enumerate(delays):
        root = make_project(name=f"kill{i}")
        env = {"MOCHI_CACHE_DIR": str(tmp_path / f"cache{i % 3}")}  # some caches cold, some warm
        proc = subprocess.Popen([sys.executable, "-m", "tasks", "lock", str(root)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, **env}, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = run_cli("lock", str(root), env=env)
        assert again.returncode == 0, f"rerun after a kill at {delay:.2f}s failed:\n{again.stdout}{again.stderr}"
        check = run_cli("check", str(root), env=env)
        assert check.returncode == 0, f"check after a kill at {delay:.2f}s:\n{check.stdout}"


def test_two_locks_sharing_one_cache_at_once(make_project: Any, tmp_path: Path) -> None:
    env = {"MOCHI_CACHE_DIR": str(tmp_path / "shared")}
    roots = [make_project(name="one"), make_project(name="two")]
    results: dict[int, subprocess.CompletedProcess[str]] = {}
    threads = [threading.Thread(target=lambda i=i, r=r: results.__setitem__(i, run_cli("lock", str(r), env=env)))
               for i, r in enumerate(roots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, root in enumerate(roots):
        assert results[i].returncode == 0, results[i].stdout + results[i].stderr
        assert run_cli("check", str(root), env=env).returncode == 0
    assert (roots[0] / "mochi.lock").read_text() == (roots[1] / "mochi.lock").read_text()


def test_report_counts_by_reason_and_writes_a_filterable_page(locked: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run_cli("report", str(locked["root"]), "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "liarfix 1.0 (py.typed): 4 translated, 0 skipped [none]" in proc.stdout
    # typedfix.untyped has no annotations: Any, so bound with values
    assert "typedfix 1.0 (py.typed): 22 translated, 2 skipped [NoComplexType 1, PrivateName 1]" in proc.stdout
    page = out.read_text()
    assert "<td>typedfix.add</td>" in page and "oninput=\"filter()\"" in page
    assert "<td>NoComplexType</td>" in page
    assert "<td>typedfix_add(a: int, b: int): int</td>" in page, "the Mochi signature is shown"
    assert "extern python fun typedfix_cplx(x: value): value" in page, "and the suggested override"
    assert '<tr data-pkg="typedfix" data-private>' in page, "private names are marked, hidden unless asked for"
    assert 'onclick="sort(1)"' in page and '<option value="liarfix">liarfix</option>' in page
