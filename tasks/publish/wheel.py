"""The wheel, built from the sdist (which proves the sdist complete), tagged by `abi-tag-policy`.

The sdist is unpacked into a scratch directory and built by pypa `build` with scikit-build-core
(`wheel.py-api` sets the stable-ABI tag), by the interpreter running this tool. On Linux the wheel
then gets the manylinux tag its modules' symbol versions allow (`auditwheel repair` with no patcher:
it refuses rather than graft a library), since indexes refuse plain `linux_*` wheels.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from ..errors import PublishError, SubprocessFailed
from ..run import run
from .plan import PublishPlan, scrubbed_env

__all__ = ["build_wheel", "check_build_interpreter"]


def check_build_interpreter(plan: PublishPlan, version: tuple[int, int] | None = None,
                            free_threaded: bool | None = None) -> None:
    """The interpreter running this tool builds the wheel: it must be able to produce the policy's tag.

    :raises PublishError: naming the interpreter, what the policy needs, and what to do.
    """
    version = version or (sys.version_info[0], sys.version_info[1])
    ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) if free_threaded is None else free_threaded
    running = f"CPython {version[0]}.{version[1]}{' (free-threaded)' if ft else ''}"
    floor = f"{plan.floor[0]}.{plan.floor[1]}"
    if plan.policy in ("abi3t", "both"):
        # Both halves are facts of today: no free-threaded build here, and a runtime written against PyModuleDef.
        where = "" if ft and version >= (3, 15) else f" (mochi-py runs on {running})"
        raise PublishError(f"abi-tag-policy {plan.policy!r} ({plan.at('publish.abi-tag-policy')}) builds the "
                           f"free-threaded stable ABI (PEP 803): that takes a free-threaded CPython 3.15 or newer"
                           f"{where}, and wrapper modules exported with PyModExport (PEP 793), which the wrapper "
                           "runtime does not do yet", 'use abi-tag-policy = "abi3" (the default); abi3t wheels need '
                           "a release of mochi-pybridge whose runtime targets it, built under python3.15t")
    if version < plan.floor:
        raise PublishError(f"the wheel is built by the interpreter running mochi-py ({running}), which is older than "
                           f"the ABI floor {floor} of requires-python {plan.requires_python!r}",
                           f"install mochi-pybridge under CPython {floor} or newer and run mochi-py publish there")
    if plan.policy == "abi3" and ft:
        raise PublishError(f"abi-tag-policy \"abi3\" cannot be built by a free-threaded interpreter ({running})",
                           'run mochi-py publish under a CPython with the GIL, or use abi-tag-policy = "abi3t"')


def _unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tf:
        tf.extractall(into, filter="data")  # refuses absolute paths, links out of the tree, device files
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1 or not (tops[0] / "pyproject.toml").is_file():
        raise PublishError(f"{sdist.name} does not unpack to one project directory", "rebuild it: mochi-py publish")
    return tops[0]


def _retag(wheel: Path, out: Path) -> Path:
    """`auditwheel repair --patcher none`: the most compatible manylinux tag, or a refusal naming the library."""
    out.mkdir()
    try:
        run([sys.executable, "-m", "auditwheel", "repair", "--patcher", "none", "--wheel-dir", str(out), str(wheel)],
            env=scrubbed_env(), timeout=300)
    except SubprocessFailed as exc:
        raise PublishError(f"the wheel's modules need shared libraries no manylinux policy allows, or auditwheel "
                           f"failed: {exc.message}", "the wrappers link only libc; report this as a bug") from None
    made = sorted(out.glob("*.whl"))
    if len(made) != 1:
        raise PublishError(f"auditwheel made {[p.name for p in made]}", "report this as a bug")
    return made[0]


def build_wheel(plan: PublishPlan, sdist: Path, previous: str | None) -> Path:
    """Build the wheel of *sdist* into `dist/`; *previous* (the last wheel built for this release) is removed."""
    check_build_interpreter(plan)
    with tempfile.TemporaryDirectory(dir=plan.state, prefix=".wheel.") as tmp:
        scratch = Path(tmp)
        project = _unpack(sdist, scratch / "src")
        built_dir = scratch / "built"
        try:
            run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(built_dir),
                 str(project)], env=scrubbed_env(), timeout=1800)
        except SubprocessFailed as exc:
            raise PublishError(f"the wheel did not build from {sdist.name}: {exc.message}",
                               "a C compiler and the Python headers are needed (the same as for mochi-py lock)"
                               ) from None
        built = sorted(built_dir.glob("*.whl"))
        if len(built) != 1:
            raise PublishError(f"the wheel build made {[p.name for p in built]}", "report this as a bug")
        wheel = _retag(built[0], scratch / "tagged") if sys.platform.startswith("linux") else built[0]
        if previous and previous != wheel.name:
            (plan.dist_dir / previous).unlink(missing_ok=True)
        dest = plan.dist_dir / wheel.name
        shutil.copyfile(wheel, dest.with_name(f".{dest.name}.tmp"))
        dest.with_name(f".{dest.name}.tmp").replace(dest)
    return dest
