"""abi3: every compiled wrapper passes abi3audit, one build loads on every CPython minor at or above the
floor that this machine has, and a second project with the same dependency compiles nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import run_cli


def _interpreters(floor: tuple[int, int]) -> dict[tuple[int, int], str]:
    """One interpreter per CPython minor >= floor: this one, PATH's python3.N, and pyenv's versions."""
    found = {sys.version_info[:2]: sys.executable}
    candidates = [shutil.which(f"python3.{m}") for m in range(floor[1], 20)]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(root.glob("3.*/bin/python3")) if root.is_dir()]
    for exe in filter(None, candidates):
        proc = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                              text=True, check=False)
        if proc.returncode == 0 and re.fullmatch(r"3 \d+\n", proc.stdout):
            minor = (3, int(proc.stdout.split()[1]))
            if minor >= floor:
                found.setdefault(minor, exe)
    return found


def test_every_wrapper_passes_abi3audit(locked: dict[str, Any]) -> None:
    modules = sorted((locked["root"] / "python_wrap").glob("*/_mochi_*.abi3.so"))
    assert len(modules) == 2
    audit = Path(sys.executable).with_name("abi3audit")
    for so in modules:
        proc = subprocess.run([str(audit), "-S", "-R", "--assume-minimum-abi3", "3.11", str(so)], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout)["specs"][str(so)]["object"]["result"]
        assert result["is_abi3"] and result["is_abi3_baseline_compatible"], result
        assert (result["baseline"], result["non_abi3_symbols"], result["future_abi3_objects"]) == ("3.11", [], {})


def test_one_build_loads_on_every_minor_at_or_above_the_floor(locked: dict[str, Any]) -> None:
    wrap = locked["root"] / "python_wrap" / "typedfix"
    interpreters = _interpreters((3, 11))
    loaded = []
    for minor, exe in sorted(interpreters.items()):
        code = (f"import sys; sys.path.insert(0, {str(wrap)!r}); import _mochi_typedfix as m; "
                "print(m.typedfix_add(20, 22), m.typedfix_words('a b'))")
        proc = subprocess.run([exe, "-I", "-c", code], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{exe}: {proc.stderr}"
        assert proc.stdout.strip() == "42 ['a', 'b']"
        loaded.append(minor)
    print(f"loaded under {loaded}")
    assert sys.version_info[:2] in loaded


def test_a_second_project_with_the_same_dependencies_compiles_nothing(locked: dict[str, Any],
                                                                      copy_project: Any) -> None:
    root = copy_project(locked["root"])
    for generated in (".mochi", "python_wrap"):
        shutil.rmtree(root / generated)
    proc = run_cli("lock", str(root), env=locked["env"])
    assert proc.returncode == 0, proc.stdout
    results = json.loads((root / ".mochi" / "compile.json").read_text())
    assert {r["cached"] for r in results.values()} == {"yes"}
    assert "wrappers: 0 compiled, 2 from the cache" in proc.stdout
