"""The command line as a user meets it (issue 19), through the installed `mochi-py` console script.

init, add, remove, tree, sync, clean, -V; project discovery upward; one --project convention; resolution keyed
on the import lines; the uv error before the pip fallback; "did you mean"; hints for a missing compiler and a
missing file; -q/-v on every command; a summary after every lock; doit list; check's exit 3; graph's default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import REPO, FixtureIndex, executed_tasks, skipped_tasks, tree_files

MOCHI_PY = Path(sys.executable).parent / "mochi-py"


def mochi_py(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it."""
    return subprocess.run([str(MOCHI_PY), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)


def test_version_and_help_list_every_command() -> None:
    assert mochi_py("-V").stdout.strip() == "mochi-py 0.1.0"
    helptext = mochi_py("--help").stdout
    for command in ("init", "add", "remove", "lock", "sync", "update", "check", "tree", "graph", "report",
                    "export-pylock", "build", "clean"):
        assert f"    {command}" in helptext, command
        sub = mochi_py(command, "--help")
        assert sub.returncode == 0 and "--project DIR" in sub.stdout and "-q, --quiet" in sub.stdout, command


def test_init_writes_a_project_that_locks_and_refuses_to_overwrite(tmp_path: Path, cache_env: dict[str, str]) -> None:
    root = tmp_path / "my-app"
    proc = mochi_py("init", str(root))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in root.iterdir()) == [".gitignore", "main.mochi", "mochi.toml"]
    assert 'name = "my_app"' in (root / "mochi.toml").read_text()
    assert "/python_wrap/" in (root / ".gitignore").read_text()
    before = tree_files(root)
    again = mochi_py("init", cwd=root)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert tree_files(root) == before
    locked = mochi_py("lock", cwd=root, env=cache_env)
    assert locked.returncode == 0, locked.stderr
    assert locked.stdout.splitlines()[-1].startswith("locked 0 package(s), 0 direct")


def _project(tmp_path: Path, index: FixtureIndex, deps: str = 'typedfix = "^1.0"\nliarfix = "==1.0"',
             program: str = 'import python "typedfix" as typedfix\n') -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mochi.toml").write_text(f'[python-dependencies]\n{deps}\n\n[python]\nrequires-python = ">=3.11"\n'
                                     f'indexes = [{{ url = "{index.url}", priority = "primary" }}]\n')
    (root / "app.mochi").write_text(program)
    return root


def test_add_resolves_first_normalises_and_writes_a_caret(tmp_path: Path, index: FixtureIndex,
                                                          cache_env: dict[str, str]) -> None:
    root = _project(tmp_path, index, deps="")
    manifest = root / "mochi.toml"
    proc = mochi_py("add", "Typedfix", "LIARFIX", cwd=root, env=cache_env)
    assert proc.returncode == 0, proc.stderr
    text = manifest.read_text()
    assert 'typedfix = "^1.0"' in text and 'liarfix = "^1.1"' in text  # canonical names, caret on the newest
    assert "Typedfix" not in text and proc.stdout.splitlines()[-1] == "next: mochi-py lock"
    before = manifest.read_bytes()
    for spec, message in (("typdfix", "no package named 'typdfix' on " + index.url + "; did you mean 'typedfix'?"),
                          ("liarfix@>=9", "resolution failed"),
                          ("liarfix@", "nothing after '@'")):
        bad = mochi_py("add", "helperfix", spec, cwd=root, env=cache_env)
        assert bad.returncode == 2, spec
        assert message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and "TaskFailed" not in bad.stderr + bad.stdout
        assert manifest.read_bytes() == before, spec  # nothing half-added
    kept = mochi_py("add", "liarfix", "-q", cwd=root, env=cache_env)  # already there, no constraint: unchanged
    assert (kept.returncode, kept.stdout) == (0, "") and manifest.read_bytes() == before
    verbose = mochi_py("-v", "add", "liarfix@==1.0", cwd=root, env=cache_env)
    assert "resolved 3 package(s) with uv: helperfix 1.0, liarfix 1.0, typedfix 1.0" in verbose.stdout
    assert 'liarfix = "==1.0"' in manifest.read_text()


def test_remove_then_lock_drops_the_package_and_its_wrapper(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    assert (root / "python_wrap" / "liarfix" / "shim.mochi").is_file()
    wrong = mochi_py("remove", "liarfixx", cwd=root)
    assert wrong.returncode == 2 and "did you mean 'liarfix'?" in wrong.stderr
    proc = mochi_py("remove", "LiarFix", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "liarfix" not in (root / "mochi.toml").read_text()
    assert "app.mochi:2:16: still imports liarfix; the next lock fails until that line goes" in proc.stderr
    (root / "app.mochi").write_text('import python "typedfix@^1" as typedfix\n')
    relock = mochi_py("lock", cwd=root, env=locked["env"])
    assert relock.returncode == 0, relock.stderr
    assert not (root / "python_wrap" / "liarfix").exists()
    assert "liarfix" not in (root / "mochi.lock").read_text()


def test_tree_shows_versions_imports_and_inverts(locked: dict[str, Any]) -> None:
    root = locked["root"]
    proc = mochi_py("tree", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "liarfix v1.0 (imported at app.mochi:2 as liarfix)",
        "typedfix v1.0 (imported at app.mochi:1 as typedfix)",
        "└── helperfix v1.0"]
    inverted = mochi_py("tree", "--invert", "helperfix", cwd=root)
    assert inverted.stdout.splitlines() == ["helperfix v1.0", "└── typedfix v1.0 (imported at app.mochi:1 as typedfix)"]
    unknown = mochi_py("tree", "nosuch", cwd=root)
    assert unknown.returncode == 2 and "nosuch is not in mochi.lock" in unknown.stderr


def test_every_command_finds_the_project_upward_and_takes_one_convention(locked: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    root = locked["root"]
    deep = root / "app" / "build"
    deep.mkdir(parents=True, exist_ok=True)
    try:
        for args in (("lock",), ("check",), ("tree",), ("report", "--html", str(tmp_path / "r.html")),
                     ("export-pylock", "-o", str(tmp_path / "pylock.toml")), ("graph", "-o", str(tmp_path / "g.dot"))):
            proc = mochi_py(*args, cwd=deep, env=locked["env"])
            assert proc.returncode == 0, (args, proc.stderr)
        tree = mochi_py("tree", cwd=deep).stdout
        for form in (("--project", str(deep), "tree"), ("tree", "--project", str(root)), ("check", str(deep))):
            proc = mochi_py(*form, cwd=tmp_path, env=locked["env"])
            assert proc.returncode == 0, (form, proc.stderr)
            if "tree" in form:
                assert proc.stdout == tree
        both = mochi_py("check", str(root), "--project", str(tmp_path), cwd=tmp_path)
        assert both.returncode == 2 and "two projects given" in both.stderr
    finally:
        shutil.rmtree(root / "app")
    outside = mochi_py("lock", cwd=tmp_path)
    assert outside.returncode == 2
    assert outside.stderr.startswith(f"error: no mochi.toml in {tmp_path.resolve()} or any parent directory\n")
    assert ":1:1" not in outside.stderr and "mochi-py init" in outside.stderr


def test_editing_the_program_outside_import_lines_resolves_nothing(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    first = mochi_py("lock", cwd=root, env=locked["env"])
    assert first.returncode == 0, first.stderr
    (root / "app.mochi").write_text((root / "app.mochi").read_text() + "// a comment\nprint(1)\n")
    # No network at all: a lock that wanted the index would fail here.
    offline = subprocess.run(["unshare", "-rn", str(MOCHI_PY), "lock"], cwd=root, capture_output=True, text=True,
                             env={**os.environ, **locked["env"]}, timeout=120, check=False)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "resolve" not in executed_tasks(offline.stdout)
    (root / "app.mochi").write_text((root / "app.mochi").read_text().replace('"liarfix"', '"liarfix@==1.0"'))
    changed = mochi_py("lock", cwd=root, env=locked["env"])
    assert changed.returncode == 0 and "resolve" in executed_tasks(changed.stdout)


def test_uv_failure_is_shown_before_the_pip_fallback(locked: dict[str, Any], copy_project: Any,
                                                     tmp_path: Path) -> None:
    from uv import find_uv_bin
    fake = tmp_path / "uv"  # uv failing the way a TLS-intercepting proxy makes it fail; every other uv call is real
    fake.write_text(f'#!/bin/sh\nif [ "$1" = lock ]; then echo "error: invalid peer certificate: UnknownIssuer" >&2; '
                    f'exit 2; fi\nexec {find_uv_bin()} "$@"\n')
    fake.chmod(0o755)
    root = copy_project(locked["root"])
    shutil.rmtree(root / ".mochi")
    proc = mochi_py("lock", cwd=root, env={**locked["env"], "MOCHI_UV": str(fake)})
    assert proc.returncode == 0, proc.stderr
    assert "warning: uv could not resolve; trying pip's resolver. uv said:" in proc.stderr
    assert "invalid peer certificate: UnknownIssuer" in proc.stderr
    assert "resolved 3 packages with pip" in proc.stdout


def test_a_typo_in_the_manifest_says_did_you_mean_without_doit_noise(tmp_path: Path, index: FixtureIndex,
                                                                     cache_env: dict[str, str]) -> None:
    root = _project(tmp_path, index, deps='typdfix = "^1.0"', program="")
    proc = mochi_py("lock", cwd=root, env=cache_env)
    assert proc.returncode == 2
    assert (f"error: resolving: {root / 'mochi.toml'}:2:1: no package named 'typdfix' on {index.url}; "
            "did you mean 'typedfix'?") in proc.stderr
    assert "TaskFailed" not in proc.stdout + proc.stderr and "taskid" not in proc.stdout + proc.stderr


def test_update_names_an_unknown_package_and_says_when_nothing_changed(locked: dict[str, Any],
                                                                       copy_project: Any) -> None:
    root = copy_project(locked["root"])
    bad = mochi_py("update", "typedfx", cwd=root, env=locked["env"])
    assert bad.returncode == 2 and "did you mean 'typedfix'?" in bad.stderr
    same = mochi_py("update", "typedfix", cwd=root, env=locked["env"])
    assert same.returncode == 0, same.stderr
    assert "nothing to update: every package is already at the newest version mochi.toml allows" in same.stdout


def test_missing_compiler_and_missing_program_give_hints(tmp_path: Path, index: FixtureIndex,
                                                         cache_env: dict[str, str]) -> None:
    root = _project(tmp_path, index)
    proc = mochi_py("lock", cwd=root, env={**cache_env, "CC": "no-such-cc"})
    assert proc.returncode == 2
    assert "no C compiler: `no-such-cc` is not on PATH" in proc.stderr and "apt-get install gcc" in proc.stderr
    missing = mochi_py("build", "nothing.mochi", cwd=root)
    assert missing.returncode == 2
    assert "nothing.mochi: no such file" in missing.stderr and "the project's programs are: app.mochi" in missing.stderr


def test_quiet_and_verbose_on_every_command(locked: dict[str, Any], copy_project: Any, tmp_path: Path) -> None:
    root = copy_project(locked["root"])
    env = locked["env"]
    for args in (("lock",), ("check",), ("sync",), ("update",), ("graph",), ("export-pylock",), ("clean",),
                 ("add", "liarfix@==1.0"), ("remove", "liarfix")):
        quiet = mochi_py(*args, "-q", cwd=root, env=env)
        assert (quiet.returncode, quiet.stdout) == (0, ""), (args, quiet.stdout, quiet.stderr)
    init = mochi_py("init", str(tmp_path / "fresh"), "-q")
    assert (init.returncode, init.stdout) == (0, "")
    assert mochi_py("-q", "tree", cwd=root).stdout  # the tree is the command's result, not chatter
    normal = mochi_py("check", cwd=root, env=env)
    verbose = mochi_py("check", "-v", cwd=root, env=env)
    # after `clean` the wrappers typedfix runs through are gone (drift); helperfix, a requirement, has none
    assert "helperfix 1.0: every field matches" in verbose.stdout and "every field matches" not in normal.stdout
    assert "typedfix: python_wrap/typedfix: missing" in normal.stdout


def test_every_lock_ends_with_a_summary_line_a_noop_too(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    assert mochi_py("lock", cwd=root, env=locked["env"]).returncode == 0
    noop = mochi_py("lock", cwd=root, env=locked["env"])
    assert noop.returncode == 0
    assert "resolve" in skipped_tasks(noop.stdout)
    last = noop.stdout.splitlines()[-1]
    assert last.startswith("locked 3 package(s), 2 direct: 26 translated, 2 skipped; up to date, nothing ran; ")


def test_doit_list_describes_each_task_family() -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "doit"), "list"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "MOCHI_PROJECT": str(REPO / "examples" / "hello")},
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    docs = dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())
    families = ("capabilities", "check", "codegen", "compile", "fetch", "lock", "resolve", "site", "stubs", "surface")
    assert set(families) <= set(docs), docs
    assert len({docs[f] for f in families}) == len(families), docs  # no copied description
    assert docs["fetch"].startswith("Fetch each pinned wheel")


def test_check_tells_could_not_verify_apart_from_drift(locked: dict[str, Any], copy_project: Any) -> None:
    root = locked["root"]
    offline = mochi_py("check", "--offline", cwd=root, env=locked["env"])
    assert offline.returncode == 3, offline.stdout + offline.stderr
    assert "could not verify (3 field(s)" in offline.stdout and "drifted" not in offline.stdout
    assert "typedfix: pypi-simple-sha256: not verified: " in offline.stdout
    drifted = copy_project(root)
    (drifted / "mochi.toml").write_text((drifted / "mochi.toml").read_text().replace("==1.0", ">=1.0"))
    both = mochi_py("check", "--offline", cwd=drifted, env=locked["env"])
    assert both.returncode == 1 and "mochi.lock drifted" in both.stdout and "could not verify" in both.stdout


def test_graph_is_the_package_graph_by_default(locked: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    proc = mochi_py("graph", "-o", str(out), cwd=locked["root"])
    assert proc.returncode == 0, proc.stderr
    dot = out.read_text()
    assert dot.startswith("digraph mochi_packages {") and '"typedfix" -> "helperfix";' in dot
    assert dot.count("->") == 1  # packages, not a task hairball
    if shutil.which("dot") is None:
        assert "Graphviz's `dot` is not installed, so no SVG" in proc.stdout
    tasks = mochi_py("graph", "--tasks", "-o", "-", cwd=locked["root"])
    assert '"lock" -> "compile";' in tasks.stdout


def test_sync_builds_from_the_lock_and_clean_removes_only_generated_files(locked: dict[str, Any],
                                                                          copy_project: Any) -> None:
    root = copy_project(locked["root"])
    keep = {name: (root / name).read_bytes() for name in ("mochi.toml", "mochi.lock", "pylock.toml", "app.mochi")}
    cleaned = mochi_py("clean", cwd=root)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (root / ".mochi").exists() and not (root / "python_wrap").exists()
    assert {name: (root / name).read_bytes() for name in keep} == keep
    synced = mochi_py("-v", "sync", cwd=root, env=locked["env"])
    assert synced.returncode == 0, synced.stderr
    assert "took 3 pins from mochi.lock (no resolution)" in synced.stdout
    assert (root / "python_wrap" / "typedfix" / "_mochi_typedfix.abi3.so").is_file()
    assert {name: (root / name).read_bytes() for name in keep} == keep
