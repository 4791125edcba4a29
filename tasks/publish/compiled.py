"""Compile step: the Mochi Python-target output of the program (mochi-language.md §4.1).

`mochi-py build` writes the build tree, `[python.publish].compile` turns it into the target's layout
(`src/mochi_user_<module>/…` and `src/mochi_user_<module>_externs.py`), or `--from DIR` hands over a
tree compiled elsewhere. Either way only `src/` is taken, checked, and swapped whole into
`.mochi/publish/compiled/`: a failed or refused compile leaves the previous one in place.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import PublishError, SubprocessFailed
from ..run import run
from .plan import PublishPlan, scrubbed_env

__all__ = ["compile_program", "layout_files", "take_compiled", "toplevel"]

_HINT = ("install the Mochi compiler, set [python.publish].compile to the command that compiles a program for "
         "the Python target, or pass --from DIR with a tree `mochi build --target=python` already wrote")


def layout_files(src: Path) -> Iterator[Path]:
    """Every regular file under *src*, sorted; a symlink or a special file is refused (it could point anywhere)."""
    for path in sorted(src.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise PublishError(f"{path}: the compiled tree holds a symlink or special file",
                               "the compiler's output must be plain files; remove it")
        if stat.S_ISREG(mode) and "__pycache__" not in path.parts:
            yield path


def toplevel(src: Path) -> list[str]:
    """The packages (`name/`) and modules (`name.py`) at the top of a compiled `src/`."""
    return sorted(p.name + "/" if p.is_dir() else p.name for p in src.iterdir() if p.name != "__pycache__")


def check_layout(src: Path, plan: PublishPlan) -> None:
    """The Mochi Python-target layout: `src/<package>/__init__.py`, and nothing at the top but packages and modules."""
    where = f"{src.parent}"
    if not src.is_dir():
        raise PublishError(f"{where}: no src/ directory: not a Mochi Python-target tree", _HINT)
    if not (src / plan.package / "__init__.py").is_file():
        found = ", ".join(toplevel(src)) or "nothing"
        raise PublishError(f"{where}: src/{plan.package}/__init__.py is missing (src/ holds {found}); the program "
                           f"{Path(plan.program).name} compiles to the package {plan.package}", _HINT)
    for entry in src.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir() and not (entry / "__init__.py").is_file():
            raise PublishError(f"{where}: src/{entry.name}/ is not a package (no __init__.py)",
                               "the compiled tree's src/ may hold only packages and modules")
        if entry.is_file() and entry.suffix != ".py":
            raise PublishError(f"{where}: src/{entry.name} is neither a package nor a module",
                               "the compiled tree's src/ may hold only packages and modules")


def _swap_in(staged_src: Path, dest: Path, plan: PublishPlan) -> dict[str, str]:
    """Copy *staged_src* (checked) into *dest*/src whole, replacing what was there; returns {path: sha256}."""
    check_layout(staged_src, plan)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        files: dict[str, str] = {}
        for path in layout_files(staged_src):
            rel = path.relative_to(staged_src).as_posix()
            target = tmp / "src" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = path.read_bytes()
            target.write_bytes(data)
            files[f"src/{rel}"] = hashlib.sha256(data).hexdigest()
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        return files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def take_compiled(tree: Path, plan: PublishPlan, dest: Path) -> dict[str, str]:
    """`--from DIR`: an already compiled tree."""
    return _swap_in(tree / "src", dest, plan)


def compile_program(build_tree: Path, plan: PublishPlan, dest: Path) -> dict[str, str]:
    """Run `[python.publish].compile` on the `mochi-py build` tree into a scratch directory, then take its src/."""
    program = build_tree / f"{plan.module}.mochi"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".compile.") as scratch:
        out = Path(scratch) / "out"
        out.mkdir()
        fill = {"{program}": str(program), "{tree}": str(build_tree), "{out}": str(out)}
        cmd = list(plan.compile)
        for key, value in fill.items():
            cmd = [part.replace(key, value) for part in cmd]
        try:
            output = run(cmd, cwd=build_tree, env=scrubbed_env(), timeout=1800, hint=_HINT)
        except SubprocessFailed as exc:
            raise PublishError(f"the Mochi compiler failed on {program}: {exc.message}", exc.hint) from None
        if output.strip():
            print(output.rstrip())
        return _swap_in(out / "src", dest, plan)
