"""The doit task graph of one Mochi project (DESIGN §1).

`resolve` runs first; the per-dependency chains (`fetch:<dist>` -> `stubs:<dist>` ->
`surface:<dist>` -> `codegen:<dist>`), the single `compile` task (one ninja run) and the `lock`
aggregation are created after it (doit's `create_after`), keyed by distribution name. Each task's
inputs are file dependencies or `config_changed` values holding only what affects its output, so
a second run with nothing changed executes nothing.

Internals: :func:`detect_context` is the one place that reads the environment (interpreter,
index, cache); everything below receives the resulting :class:`Context` as plain data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from doit import create_after
from doit.dependency import FileChangedChecker
from doit.tools import config_changed

from . import __version__
from .audit.capabilities import db_path
from .build.compile import RUNTIME_FILES, runtime_dir
from .build.site import MARKER, SITE_DIR
from .codegen.render import module_name, py_ident
from .codegen.wrapdir import wrapper_dir
from .context import Context
from .detect import detect_context
from .dispatch import run_action, site_intact, staged_intact, wheel_present, wrappers_intact
from .resolve.sources import import_key

__all__ = ["Blake3Checker", "Context", "detect_context", "doit_config", "make_tasks", "task_dicts"]


class Blake3Checker(FileChangedChecker):  # type: ignore[misc]
    """doit file checker: unchanged mtime means unchanged; otherwise compare BLAKE3 digests."""

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        if not state or len(state) != 3:
            return True
        mtime_ns, size, digest = state
        if file_stat.st_mtime_ns == mtime_ns:
            return False
        if file_stat.st_size != size:
            return True
        return bool(digest != _b3(file_path))

    def get_state(self, dep: str, current_state: Any) -> Any:
        st = Path(dep).stat()
        if current_state and len(current_state) == 3 and current_state[0] == st.st_mtime_ns:
            return None
        return (st.st_mtime_ns, st.st_size, _b3(dep))


def _b3(path: str) -> str:
    from blake3 import blake3
    return str(blake3().update_mmap(path).hexdigest())


def doit_config(root: Path) -> dict[str, Any]:
    state = root / ".mochi"
    state.mkdir(parents=True, exist_ok=True)
    return {"backend": "sqlite3", "dep_file": str(state / "doit.sqlite3"), "default_tasks": ["lock"],
            "check_file_uptodate": Blake3Checker, "verbosity": 1}


def make_tasks(ctx: Context) -> dict[str, Callable[..., Any]]:
    """Task creators for a doit loader (`ModuleTaskLoader(make_tasks(ctx))`)."""
    root = Path(ctx.root)
    state = root / ".mochi"
    args = ctx
    tool = {"tool": __version__}

    def pins() -> list[dict[str, Any]]:
        path = state / "resolve.json"
        return list(json.loads(path.read_text(encoding="utf-8"))["pins"]) if path.is_file() else []

    def deps_dir(name: str) -> Path:
        return state / "deps" / name

    def task_resolve() -> dict[str, Any]:
        """Resolve mochi.toml's Python dependencies to exact pins (uv; with --frozen, read them from mochi.lock)."""
        # Keyed on the `import python` lines, not on the .mochi files: editing the program resolves nothing.
        return {"actions": [(run_action, ["act_resolve", args])], "file_dep": [str(root / "mochi.toml")],
                "targets": [str(state / "resolve.json")],
                "uptodate": [config_changed({**tool, "interpreter": ctx.interpreter, "indexes": list(ctx.indexes),
                                             "imports": import_key(root), "release": list(ctx.release),
                                             "frozen": ctx.frozen, "offline": ctx.offline})],
                "verbosity": 2}

    def fetch_tasks() -> Iterator[dict[str, Any]]:
        """Fetch each pinned wheel into the content-addressed cache, hash-verified."""
        for pin in pins():
            out = deps_dir(pin["name"]) / "fetch.json"
            yield {"basename": "fetch", "name": pin["name"],
                   "actions": [(run_action, ["act_fetch", args, pin])],
                   "targets": [str(out)], "task_dep": ["resolve"],
                   # only what decides the file: the locked_* fields change when the lock is written, not the pin
                   "uptodate": [config_changed({**tool, "pin": {k: pin.get(k) for k in _FETCH_KEY},
                                                "indexes": list(ctx.indexes), "python": list(ctx.python_version[:2]),
                                                "attest": list(ctx.attestation_policy(pin["name"]))}),
                                (wheel_present, [str(out)])]}

    def direct() -> list[dict[str, Any]]:
        return [p for p in pins() if p["direct"]]

    def needs(name: str) -> list[str]:
        """What *name* may require, directly or not, by the resolver's graph: a superset of the requirements the
        stubs action reads from the fetched wheels' metadata (as mochi.lock records them)."""
        edges = {p["name"]: list(p.get("dependencies", [])) for p in pins()}
        seen: set[str] = set()
        todo = list(edges.get(name, []))
        while todo:
            dep = todo.pop()
            if dep in edges and dep not in seen and dep != name:
                seen.add(dep)
                todo += edges[dep]
        return sorted(seen)

    def stubs_tasks() -> Iterator[dict[str, Any]]:
        """Copy each direct dependency's typed documents (PEP 561) out of its wheel, and its requirements'."""
        for pin in direct():
            d = deps_dir(pin["name"])
            wanted = needs(pin["name"])
            yield {"basename": "stubs", "name": pin["name"], "actions": [(run_action, ["act_stubs", args, pin])],
                   "file_dep": [str(d / "fetch.json"), *(str(deps_dir(n) / "fetch.json") for n in wanted)],
                   "targets": [str(d / "stubs.json")], "task_dep": ["fetch"],
                   "uptodate": [config_changed({**tool, "stubgen": [ctx.stubgen_fallback, ctx.stubgen_inspect,
                                                            ctx.stubgen_aggressive],
                                                "stub_dist": pin.get("locked_stub_dist", "")})]}

    def surface_tasks() -> Iterator[dict[str, Any]]:
        """Map each direct dependency's public surface through the closed type table."""
        for pin in direct():
            d = deps_dir(pin["name"])
            yield {"basename": "surface", "name": pin["name"],
                   "actions": [(run_action, ["act_surface", args, pin["name"]])],
                   "file_dep": [str(d / "stubs.json"), str(d / "fetch.json"), str(d / "capabilities.json")],
                   "targets": [str(d / "surface.json")],
                   "task_dep": ["stubs", "capabilities"],
                   "uptodate": [config_changed({**tool, "any": ctx.any_mode,
                                                "monomorphise": [list(m) for m in ctx.monomorphise]})]}

    def codegen_tasks() -> Iterator[dict[str, Any]]:
        """Render the C wrapper, shim.mochi, the re-export module and SKIPPED.txt."""
        for pin in direct():
            name = pin["name"]
            d, wrap = deps_dir(name), deps_dir(name) / "wrap"  # staged; compile publishes it to python_wrap/
            yield {"basename": "codegen", "name": name, "actions": [(run_action, ["act_codegen", args, name])],
                   "file_dep": [str(d / "surface.json")], "task_dep": ["surface"],
                   "targets": [str(d / f"{module_name(name)}.c"), str(d / "codegen.json"), str(wrap / "shim.mochi"),
                               str(wrap / f"{py_ident(name)}_externs.py"), str(wrap / "SKIPPED.txt")],
                   "uptodate": [config_changed({**tool, "floor": list(ctx.abi_floor),
                                                "strict": ctx.strict_returns, "async": ctx.async_mode}),
                                (staged_intact, [str(root), name])]}

    def compile_task() -> dict[str, Any]:
        """Compile every wrapper into an abi3 module: one CMake project, one ninja run, cached by content."""
        names = [p["name"] for p in direct()]
        rt = runtime_dir()
        return {"basename": "compile", "actions": [(run_action, ["act_compile", args, names])], "task_dep": ["codegen"],
                "file_dep": [str(deps_dir(n) / f) for n in names for f in _wrapper_files(n, staged=True)]
                + [str(rt / f) for f in RUNTIME_FILES],
                "targets": [str(wrapper_dir(root, n) / f) for n in names for f in _wrapper_files(n)],
                "uptodate": [config_changed({**tool, "interpreter": ctx.interpreter, "floor": list(ctx.abi_floor),
                                             "names": names}), (wrappers_intact, [str(root), names, ctx.interpreter])]}

    def capabilities_tasks() -> Iterator[dict[str, Any]]:
        """Audit what each pinned wheel's code can do (static scan + capabilities/db.toml)."""
        db = str(db_path())
        for pin in pins():
            d = deps_dir(pin["name"])
            yield {"basename": "capabilities", "name": pin["name"],
                   "actions": [(run_action, ["act_capabilities", args, pin])],
                   "file_dep": [str(d / "fetch.json"), db], "targets": [str(d / "capabilities.json")],
                   "task_dep": ["fetch"],
                   "uptodate": [config_changed({**tool, "free_threaded": ctx.free_threaded})]}

    def site_task() -> dict[str, Any]:
        """Install the pinned wheels into python_wrap/site-packages for the wrappers to import."""
        names = [p["name"] for p in pins()]
        return {"basename": "site", "actions": [(run_action, ["act_site", args, names])],
                "file_dep": [str(deps_dir(n) / "fetch.json") for n in names], "task_dep": ["fetch"],
                "targets": [str(root / "python_wrap" / SITE_DIR / MARKER)],
                "uptodate": [config_changed({**tool, "interpreter": ctx.interpreter}),
                             (site_intact, [str(root), names, ctx.interpreter])]}

    def lock_task() -> dict[str, Any]:
        """Aggregate mochi.lock and pylock.toml."""
        deps: list[str] = [str(state / "resolve.json")]
        for pin in pins():
            d = deps_dir(pin["name"])
            deps += [str(d / "fetch.json"), str(d / "capabilities.json")]
            if pin["direct"]:
                deps += [str(d / "stubs.json"), str(d / "surface.json"), str(d / "codegen.json"),
                         str(wrapper_dir(root, pin["name"]) / f"{module_name(pin['name'])}.abi3.so")]
        # task_dep makes doit create the delayed chains; file_dep decides whether lock itself re-runs.
        return {"basename": "lock", "actions": [(run_action, ["act_lock", args])], "file_dep": deps,
                "task_dep": ["fetch", "capabilities", "compile", "site"],
                "targets": [str(root / "mochi.lock"), str(root / "pylock.toml")],
                "uptodate": [config_changed({**tool, "requires_python": ctx.requires_python,
                                             "declared": ctx.capabilities_declared, "elevation": ctx.elevation,
                                             "free_threaded": ctx.free_threaded}),
                             not ctx.frozen],  # --frozen compares what it built with mochi.lock every time
                "verbosity": 2}

    creators: dict[str, Callable[..., Any]] = {"task_resolve": task_resolve, "task_check": _check_creator(args)}
    # One creator per family, each created once resolve has pinned the set (doit's create_after), so that
    # `doit list` shows each family's own description.
    for basename, family in (("fetch", fetch_tasks), ("stubs", stubs_tasks), ("surface", surface_tasks),
                             ("codegen", codegen_tasks), ("capabilities", capabilities_tasks)):
        creators[f"task_{basename}"] = _delayed(basename, _group(basename, family))
    for basename, single in (("compile", compile_task), ("site", site_task), ("lock", lock_task)):
        creators[f"task_{basename}"] = _delayed(basename, single)
    return creators


def _wrapper_files(name: str, staged: bool = False) -> list[str]:
    """The files of a wrapper directory; *staged*: those codegen writes into `.mochi/deps/<name>/`, plus the C."""
    files = ["shim.mochi", f"{py_ident(name)}_externs.py", "SKIPPED.txt"]
    if staged:
        return [*(f"wrap/{f}" for f in files), f"{module_name(name)}.c"]
    return [*files, f"{module_name(name)}.abi3.so"]


_FETCH_KEY = ("name", "version", "source", "location", "commit", "allow_yanked")
"""The pin fields that decide which file a fetch gets."""


def _group(basename: str, family: Callable[[], Iterator[dict[str, Any]]]) -> Callable[[], Iterator[dict[str, Any]]]:
    def tasks() -> Iterator[dict[str, Any]]:
        # The group task exists even when no dependency has this stage, so task_dep on it holds.
        yield {"basename": basename, "name": None, "doc": (family.__doc__ or "").strip()}
        yield from family()
    tasks.__doc__ = family.__doc__
    return tasks


def _delayed(basename: str, creator: Callable[[], Any]) -> Callable[[], Any]:
    def created() -> Any:
        return creator()
    created.__doc__ = creator.__doc__
    return create_after(executed="resolve", creates=[basename])(created)  # type: ignore[no-any-return]


def _check_creator(args: Context) -> Callable[[], dict[str, Any]]:
    def task_check() -> dict[str, Any]:
        """Verify that mochi.lock still matches reality (exit 1 on drift); writes nothing."""
        return {"actions": [(run_action, ["act_check", args])], "uptodate": [False], "verbosity": 2}
    return task_check


def task_dicts(creators: dict[str, Callable[..., Any]]) -> list[dict[str, Any]]:
    """Every task dict the creators yield, named `basename[:name]` (group-only entries left out)."""
    out = []
    for key, creator in sorted(creators.items()):
        produced = creator()
        items: Iterable[dict[str, Any]] = [produced] if isinstance(produced, dict) else produced
        for item in items:
            base = item.get("basename", key.removeprefix("task_"))
            if "name" in item and item["name"] is None:
                continue
            full = f"{base}:{item['name']}" if item.get("name") else base
            out.append({**item, "full_name": full})
    return out
