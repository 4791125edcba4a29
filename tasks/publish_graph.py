"""The publish task graph (DESIGN §11): `doit publish`, `doit publish-gates` (the dry run), `mochi-py publish`.

    lock -> publish-tree -> publish-compile -> publish-sdist -> publish-wheel -> publish-gates
         -> publish-attest -> publish

`publish-tree` is `mochi-py build` into `.mochi/publish/tree/`; `publish-compile` runs
`[python.publish].compile` on it (or takes `--from DIR`). Every step's inputs are file dependencies
and `config_changed` values, and its outputs are records under `.mochi/publish/` with the SHA-256 of
what it made, so a rerun after a failed upload rebuilds nothing and uploads only what the index has
not confirmed. `publish` itself always runs: it decides from the upload record, not from doit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from . import __version__
from .build.compile import RUNTIME_FILES, runtime_dir
from .cache import atomic_write
from .context import Context
from .errors import BridgeError
from .publish.plan import PublishOptions, PublishPlan, make_plan

__all__ = ["FAILED_GATES", "outputs_present", "publish_tasks", "refuse", "run_step"]

FAILED_GATES = "gates-failed.json"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write(path: Path, data: object) -> None:
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def outputs_present(record: str, dist_dir: str) -> bool:
    """uptodate check: the files a step's record names are still in dist/ (with the recorded bytes, when it has
    them), so deleting one from dist/ makes the step run again instead of failing a later one."""
    try:
        data = _read(Path(record))
    except (OSError, ValueError):
        return False
    if "file" in data:
        path = Path(dist_dir) / data["file"]
        return path.is_file() and _sha(path) == str(data["sha256"])
    return all(Path(p).is_file() for p in data.values())


def run_step(name: str, plan: PublishPlan) -> Any:
    """Run the action `act_<name>`; a BridgeError becomes doit's TaskFailed with the user-facing message.

    Module-level, with plain arguments, so doit can hand it to a worker process.
    """
    try:
        return globals()[f"act_{name}"](plan)
    except BridgeError as exc:
        return TaskFailed(str(exc))


def refuse(message: str) -> TaskFailed:
    return TaskFailed(message)


def act_tree(plan: PublishPlan) -> dict[str, Any]:
    from .codegen.program import build_program
    out, _ = build_program(Path(plan.program), plan.state / "tree")
    return {"tree": str(out)}


def act_compile(plan: PublishPlan) -> dict[str, Any]:
    from .publish.compiled import compile_program, take_compiled
    dest = plan.state / "compiled"
    if plan.from_dir:
        files = take_compiled(Path(plan.from_dir), plan, dest)
        print(f"took the compiled tree {plan.from_dir} ({len(files)} files)")
    else:
        files = compile_program(plan.state / "tree", plan, dest)
        print(f"compiled {Path(plan.program).name} for the Python target ({len(files)} files)")
    _write(plan.state / "compiled.json", {"files": files})  # what, not where from: the same tree rebuilds nothing
    return {"files": len(files)}


def act_sdist(plan: PublishPlan) -> dict[str, Any]:
    from .publish.sdist import build_sdist, stage_project
    requires = stage_project(plan, plan.state / "compiled", plan.state / "sdist-src")
    sdist = build_sdist(plan, plan.state / "sdist-src")
    _write(plan.state / "sdist.json", {"file": sdist.name, "sha256": _sha(sdist), "requires": requires})
    print(f"built {sdist.relative_to(plan.root)}")
    return {"file": sdist.name}


def act_wheel(plan: PublishPlan) -> dict[str, Any]:
    from .publish.wheel import build_wheel
    record = plan.state / "wheel.json"
    previous = _read(record)["file"] if record.is_file() else None
    sdist = plan.dist_dir / plan.sdist_name
    if _sha(sdist) != _read(plan.state / "sdist.json")["sha256"]:
        raise BridgeError(f"{sdist} changed after it was built", "rerun mochi-py publish (it is rebuilt)")
    wheel = build_wheel(plan, sdist, previous)
    _write(record, {"file": wheel.name, "sha256": _sha(wheel), "from": sdist.name})
    print(f"built {wheel.relative_to(plan.root)} from {sdist.name}")
    return {"file": wheel.name}


def _built(plan: PublishPlan) -> list[Path]:
    return [plan.dist_dir / _read(plan.state / "sdist.json")["file"], plan.dist_dir / _read(plan.state /
                                                                                             "wheel.json")["file"]]


def act_gates(plan: PublishPlan) -> dict[str, Any] | TaskFailed:
    from .errors import GateFailed
    from .lock.lockfile import read_lock
    from .publish.gates import GateResult, run_gates
    failed_marker = plan.state / FAILED_GATES
    failed_marker.unlink(missing_ok=True)
    sdist, wheel = _built(plan)
    entries = read_lock(Path(plan.root) / "mochi.lock")
    results: list[GateResult] = run_gates(plan, sdist, wheel, entries)
    for r in results:
        print(f"  {'ok  ' if r.ok else 'FAIL'} {r.check}: {r.detail}")
    failed = [r for r in results if not r.ok]
    if failed:
        _write(failed_marker, [r.to_dict() for r in failed])
        exc = GateFailed("publish gates failed, nothing was uploaded:\n" + "\n".join(
            f"  {r.check}: {r.detail}\n    fix: {r.fix}" for r in failed),
            f"{len(results) - len(failed)} of {len(results)} gates passed; rerun after the fix (only what changed is "
            "rebuilt)")
        return TaskFailed(str(exc))
    _write(plan.state / "gates.json", {"files": {p.name: _sha(p) for p in (sdist, wheel)},
                                       "results": [r.to_dict() for r in results]})
    print(f"every gate passed ({len(results)}): {sdist.name}, {wheel.name} are ready for {plan.repository}")
    return {"gates": len(results)}


def _checked_files(plan: PublishPlan) -> list[tuple[Path, str]]:
    """The files the gates passed, refusing any that changed since."""
    passed = _read(plan.state / "gates.json")["files"]
    out = []
    for name, sha in sorted(passed.items(), key=lambda kv: not kv[0].endswith(".tar.gz")):  # the sdist first
        path = plan.dist_dir / name
        if not path.is_file() or _sha(path) != sha:
            raise BridgeError(f"{path} is not the file the gates passed", "rerun mochi-py publish to rebuild it")
        out.append((path, sha))
    return out


def act_attest(plan: PublishPlan) -> dict[str, Any]:
    from .publish import attest
    from .publish.oidc import detect_provider
    files = _checked_files(plan)
    made = attest.attest(files, attest.make_signer(detect_provider()))
    _write(plan.state / "attest.json", made)
    for name in made:
        print(f"signed {name} -> {Path(made[name]).name}")
    return {"attested": len(made)}


def act_upload(plan: PublishPlan) -> dict[str, Any]:
    from .publish.attest import attestation_path, check_attestation
    from .publish.upload import Dist, upload_all
    dists = []
    for path, sha in _checked_files(plan):
        if path.name.endswith(".whl"):
            import zipfile
            with zipfile.ZipFile(path) as zf:
                metadata = zf.read(f"{plan.file_stem}.dist-info/METADATA").decode()
        else:
            import tarfile
            with tarfile.open(path) as tf:
                member = tf.extractfile(f"{plan.file_stem}/PKG-INFO")
                metadata = member.read().decode() if member else ""
        attestations: tuple[dict[str, Any], ...] = ()
        if plan.attestations:
            data = _read(attestation_path(path))
            check_attestation(data, path, sha)
            attestations = (data,)
        dists.append(Dist(path, sha, metadata, attestations))
    uploaded = upload_all(plan.repository, plan.name, plan.at("package.version"), dists,
                          plan.state / "uploaded.json", plan.trusted_publisher)
    if uploaded:
        print(f"published {plan.name} {plan.version} to {plan.repository}: {', '.join(uploaded)}")
    return {"uploaded": len(uploaded)}


def _tree_files(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _make(plan: PublishPlan) -> Iterator[dict[str, Any]]:
    root = Path(plan.root)
    state = plan.state
    tool = {"tool": __version__}
    lock = [str(root / "mochi.lock"), str(root / "mochi.toml")]
    if plan.from_dir:
        compile_dep = _tree_files(Path(plan.from_dir) / "src")
        compile_task_dep: list[str] = ["lock"]
    else:
        sidecar = Path(plan.program).with_name(f"{plan.module}_externs.py")
        yield {"basename": "publish-tree", "doc": "Write the mochi-py build tree of the program",
               "actions": [(run_step, ["tree", plan])], "task_dep": ["lock"],
               "file_dep": [plan.program, *lock, *([str(sidecar)] if sidecar.is_file() else [])],
               "targets": [str(state / "tree" / f"{plan.module}.mochi"), str(state / "tree" /
                                                                           f"{plan.module}_externs.py")],
               "uptodate": [config_changed(tool)], "verbosity": 2}
        compile_dep = [str(state / "tree" / f"{plan.module}.mochi"), str(state / "tree" / f"{plan.module}_externs.py")]
        compile_task_dep = ["publish-tree"]
    yield {"basename": "publish-compile", "doc": "Compile the program for the Mochi Python target (or take --from)",
           "actions": [(run_step, ["compile", plan])], "file_dep": compile_dep, "task_dep": compile_task_dep,
           "targets": [str(state / "compiled.json")],
           "uptodate": [config_changed({**tool, "compile": list(plan.compile), "from": plan.from_dir or "",
                                        "module": plan.module})], "verbosity": 2}
    sources = [str(p) for p in (plan.readme,) if p] + [str(root / f) for f in plan.license_files]
    rt = runtime_dir()
    config = {k: v for k, v in plan.build_config().items()
              if k not in ("interpreter", "indexes", "capabilities_declared", "root", "manifest")}
    yield {"basename": "publish-sdist", "doc": "Build the sdist (scikit-build-core): the package, the wrappers' C, "
                                               "the Mochi sources",
           "actions": [(run_step, ["sdist", plan])], "task_dep": ["publish-compile"],
           "file_dep": [str(state / "compiled.json"), *lock, *sources, *(str(rt / f) for f in RUNTIME_FILES)],
           "targets": [str(state / "sdist.json"), str(plan.dist_dir / plan.sdist_name)],
           "uptodate": [config_changed({**tool, **config})], "verbosity": 2}
    yield {"basename": "publish-wheel", "doc": "Build the wheel from the sdist, tagged by abi-tag-policy",
           "actions": [(run_step, ["wheel", plan])], "task_dep": ["publish-sdist"],
           "file_dep": [str(state / "sdist.json")], "targets": [str(state / "wheel.json")],
           "uptodate": [config_changed({**tool, "policy": plan.policy, "python": sys.executable}),
                        (outputs_present, [str(state / "wheel.json"), str(plan.dist_dir)])], "verbosity": 2}
    yield {"basename": "publish-gates", "doc": "Run every pre-upload gate (the dry run stops here)",
           "actions": [(run_step, ["gates", plan])], "task_dep": ["publish-wheel"],
           "file_dep": [str(state / "sdist.json"), str(state / "wheel.json"), *lock],
           "targets": [str(state / "gates.json")],
           "uptodate": [config_changed({**tool, "declared": list(plan.capabilities_declared or ["<none>"]),
                                        "indexes": list(plan.indexes), "interpreter": plan.interpreter})],
           "verbosity": 2}
    upload_dep = ["publish-gates"]
    if plan.attestations:
        yield {"basename": "publish-attest", "doc": "Sign each file into a PEP 740 attestation (sigstore, in CI)",
               "actions": [(run_step, ["attest", plan])], "task_dep": ["publish-gates"],
               "file_dep": [str(state / "gates.json")], "targets": [str(state / "attest.json")],
               "uptodate": [config_changed(tool), (outputs_present, [str(state / "attest.json"),
                                                                     str(plan.dist_dir)])], "verbosity": 2}
        upload_dep.append("publish-attest")
    yield {"basename": "publish", "doc": "Upload the sdist and the wheel through Trusted Publishing",
           "actions": [(run_step, ["upload", plan])], "task_dep": upload_dep,
           "file_dep": [str(state / "gates.json")], "uptodate": [False], "verbosity": 2}


def publish_tasks(ctx: Context, options: PublishOptions) -> dict[str, Callable[[], Any]]:
    """Task creators for the publish graph; a project that cannot be published gets tasks that say why."""
    try:
        plan = make_plan(ctx, options)
    except BridgeError as exc:
        message = str(exc)

        def task_refused() -> Iterator[dict[str, Any]]:
            """Publish the project (it cannot be: see the message)."""
            for name in ("publish", "publish-gates"):
                yield {"basename": name, "actions": [(refuse, [message])], "uptodate": [False]}
        return {"task_publish": task_refused}

    def task_publish() -> Iterator[dict[str, Any]]:
        """Build, check and upload the project to a Python package index."""
        yield from _make(plan)
    return {"task_publish": task_publish}

