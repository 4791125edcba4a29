"""The package layout of DESIGN §2: stages import only earlier stages and the shared edge, never doit.

Every `import` statement of `tasks/` is read with `ast` (function-level, lazy imports included), so a
cycle or a stage that reaches up into the doit layer fails here rather than at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parent.parent / "tasks"
STAGES = ["resolve", "fetch", "stubs", "surface", "codegen", "build", "audit", "lock", "publish"]
EDGE = {"tasks", "tasks.errors", "tasks.run", "tasks.cache", "tasks.console", "tasks.context"}
TOP = {"tasks.graph", "tasks.actions", "tasks.cli", "tasks.commands", "tasks.dispatch", "tasks.reporter", "tasks.noop",
       "tasks.dot", "tasks.detect", "tasks.__main__", "tasks.publish_graph", "tasks.doit_main",
       "tasks.reaper"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(TASKS.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module *path* imports, absolute, including imports inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                mod = f"{prefix}.{node.module}" if node.module else prefix
            else:
                mod = node.module or ""
            out.add(mod)
            # `from . import actions` imports a module, not a name
            out.update(f"{mod}.{a.name}" for a in node.names if (TASKS.parent / mod.replace(".", "/") / a.name).exists()
                       or (TASKS.parent / mod.replace(".", "/") / f"{a.name}.py").exists())
    return out


def _all_modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(TASKS.rglob("*.py"))}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_every_module_belongs_to_a_layer() -> None:
    for module in _all_modules():
        assert module in EDGE or module in TOP or _stage(module) is not None, (
            f"{module} is neither a stage, the shared edge nor the doit layer: place it (DESIGN §2)")


def test_stages_import_only_earlier_stages_and_the_edge() -> None:
    for module, imports in _all_modules().items():
        stage = _stage(module)
        if stage is None:
            continue
        for imp in imports:
            assert imp.split(".")[0] != "doit", f"{module} imports doit: only the top-level modules may"
            if not imp.startswith("tasks"):
                continue
            assert imp not in TOP, f"{module} imports {imp}, the doit layer"
            other = _stage(imp)
            if other is None:
                assert imp in EDGE, f"{module} imports {imp}, which is not the shared edge"
            else:
                assert STAGES.index(other) <= STAGES.index(stage), (
                    f"{module} ({stage}) imports {imp} ({other}), a later stage")


def test_the_shared_edge_imports_no_stage_and_no_doit() -> None:
    for module, imports in _all_modules().items():
        if module not in EDGE:
            continue
        for imp in imports:
            assert imp.split(".")[0] != "doit", f"{module} imports doit"
            assert not imp.startswith("tasks.") or imp in EDGE, f"{module} (shared edge) imports {imp}"


def test_no_import_cycles() -> None:
    graph = {m: {i for i in imps if i.startswith("tasks.") and i != m} for m, imps in _all_modules().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("module", ["tasks.graph", *(f"tasks.{s}" for s in STAGES),
                                    *sorted({m for m in _all_modules() if _stage(m)})])
def test_imports_on_its_own_and_stages_load_no_doit(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "print(sorted(m for m in sys.modules if m == 'doit' or m in ('tasks.actions', 'tasks.graph')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.strip()
    if _stage(module) is not None:
        assert loaded == "[]", f"importing {module} loaded {loaded}"
