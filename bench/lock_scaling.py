"""Benchmark: locking a 50-dependency project, measured side by side in one run (DESIGN §10).

Builds a local PEP 691 index of 50 synthetic typed packages of varied sizes (5 to 200 functions,
one of them in two versions) and a project depending on all of them, then measures: a cold lock
(empty caches), a lock with the wheels cached and every derived cache (stage outputs, compiled
wrappers) empty, a no-op lock, a second project with the same dependencies and every cache warm
beside `uv venv` + `uv pip install` of the same pins, `check` of the project and of a 20-package
one, a lock after bumping one dependency, and a warm `uv pip compile` of the same requirements; each
with the peak memory of its process tree. Prints the table with the budgets beside the figures and
writes bench/results/lock_scaling.json. Needs no network. Run: .venv/bin/python bench/lock_scaling.py
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import build_wheel, fixture_index  # noqa: E402 - the tests' real wheel builder and index

N = 50
_MEASURE = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps({'rc': p.returncode, 's': time.perf_counter() - t, "
            "'rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 'tail': p.stdout[-300:] + "
            "p.stderr[-300:]}))")


def package_source(i: int, functions: int) -> bytes:
    lines = [f'"""Synthetic package {i}."""', "", "from collections.abc import Sequence", ""]
    for j in range(functions):
        kind = j % 4
        if kind == 0:
            lines += [f"def f{j}(a: int, b: int = {j}) -> int:", "    return a + b", ""]
        elif kind == 1:
            lines += [f"def g{j}(text: str, times: int = 1) -> list[str]:", "    return [text] * times", ""]
        elif kind == 2:
            lines += [f"def h{j}(values: Sequence[float]) -> dict[str, float]:",
                      "    return {'sum': float(sum(values))}", ""]
        else:
            lines += [f"class C{j}:", "    def __init__(self, n: int) -> None:", "        self.n = n", "",
                      "    def get(self) -> int:", "        return self.n", ""]
    return "\n".join(lines).encode()


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env,
                         check=True)
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result['tail']}")
    return {"s": round(result["s"], 3), "rss_mb": round(result["rss_mb"], 1)}


def _project(root: Path, count: int, index_url: str) -> str:
    root.mkdir()
    deps = "\n".join(f'synth{i:02d} = "==1.0"' for i in range(count))
    manifest = (f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\n'
                f'indexes = [{{ url = "{index_url}" }}]\n')
    (root / "mochi.toml").write_text(manifest)
    return manifest


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {"s": statistics.median(r["s"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs)}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mochi-scaling-") as tmp:
        base = Path(tmp)
        wheels = [build_wheel(base / "wheels", f"synth{i:02d}", "1.0",
                              {f"synth{i:02d}/__init__.py": package_source(i, 5 + (i * 37) % 196),
                               f"synth{i:02d}/py.typed": b""}) for i in range(N)]
        wheels.append(build_wheel(base / "wheels", "synth00", "1.1", {
            "synth00/__init__.py": package_source(0, 6), "synth00/py.typed": b""}))
        index = fixture_index(wheels)
        try:
            root = base / "project"
            manifest = _project(root, N, index.url)
            cache = base / "cache"
            env = {**os.environ, "MOCHI_CACHE_DIR": str(cache)}

            def lock(project: Path) -> list[str]:
                return [sys.executable, "-m", "tasks", "lock", str(project), "-q"]

            results: dict[str, dict[str, float]] = {}
            results["cold"] = measure(lock(root), env)
            for derived in ("wrappers", "stages"):  # every stage output and compiled module, not the wheels
                shutil.rmtree(cache / derived)
            shutil.rmtree(root / ".mochi")
            shutil.rmtree(root / "python_wrap")
            results["warm_wheels_cold_wrappers"] = measure(lock(root), env)
            results["noop"] = _median([measure(lock(root), env) for _ in range(5)])

            # A second project with the same dependencies, every cache warm, against what uv does for the
            # same pins: a fresh virtual environment and an install into it (uv's cache warm as well).
            from tasks.resolve.resolver import find_uv
            uv = find_uv()
            pins = base / "pins.txt"
            pins.write_text("".join(f"synth{i:02d}==1.0\n" for i in range(N)))
            uvc = base / "uvc"

            def uv_install(venv: Path) -> list[str]:
                return ["sh", "-c", f'"{uv}" venv -q --python "{sys.executable}" --no-python-downloads --no-config '
                        f'--cache-dir "{uvc}" "{venv}" && "{uv}" pip install -q --python "{venv}/bin/python" '
                        f'--no-config --default-index "{index.url}" --cache-dir "{uvc}" -r "{pins}"']

            measure(uv_install(base / "venv-warm"), env)
            seconds, installs = [], []
            for i in range(3):  # interleaved, so drift on the machine hits both alike
                other = base / f"second-{i}"
                _project(other, N, index.url)
                seconds.append(measure(lock(other), env))
                installs.append(measure(uv_install(base / f"venv-{i}"), env))
            results["second_project"] = _median(seconds)
            results["uv_venv_install"] = _median(installs)

            # check, caches warm: the 50-dependency project, and a 20-package one (the budget's size)
            check = [sys.executable, "-m", "tasks", "check"]
            results["check_50"] = _median([measure([*check, str(root)], env) for _ in range(3)])
            twenty = base / "twenty"
            _project(twenty, 20, index.url)
            measure(lock(twenty), env)
            results["check_20"] = _median([measure([*check, str(twenty)], env) for _ in range(3)])

            (root / "mochi.toml").write_text(manifest.replace('synth00 = "==1.0"', 'synth00 = "==1.1"'))
            results["bump_one"] = measure(lock(root), env)
            req = base / "requirements.in"
            req.write_text("".join(f"synth{i:02d}==1.0\n" for i in range(N)))
            compile_ = [uv, "pip", "compile", str(req), "--python", sys.executable, "--no-python-downloads",
                        "--no-config", "--default-index", index.url, "--quiet", "--cache-dir", str(base / "uvc"),
                        "-o", str(base / "requirements.txt")]
            measure(compile_, env)
            results["uv_compile_warm"] = _median([measure(compile_, env) for _ in range(5)])
        finally:
            index.stop()
    _report(results)
    return 0


def _report(results: dict[str, dict[str, float]]) -> None:
    ratio = results["noop"]["s"] / results["uv_compile_warm"]["s"]
    second_ratio = results["second_project"]["s"] / results["uv_venv_install"]["s"]
    peak = max(r["rss_mb"] for k, r in results.items() if not k.startswith("uv_"))
    rows = [("cold lock (empty caches)", results["cold"], ""),
            ("cold lock, wheels cached, stage + wrapper caches empty", results["warm_wheels_cold_wrappers"],
             "<= 10 s"),
            ("no-op lock (median of 5)", results["noop"], "<= 1 s"),
            ("one dependency bumped", results["bump_one"], "<= 5 s"),
            ("second project, same deps, caches warm (median of 3)", results["second_project"], ""),
            ("uv venv + uv pip install, same pins (median of 3)", results["uv_venv_install"], ""),
            ("check, 50 packages, caches warm (median of 3)", results["check_50"], ""),
            ("check, 20 packages, caches warm (median of 3)", results["check_20"], "<= 2 s"),
            ("warm uv pip compile (median of 5)", results["uv_compile_warm"], "")]
    print(f"{'measure (50 dependencies, ' + str(os.cpu_count()) + ' cores)':56} {'time':>9} {'peak RSS':>10}  budget")
    for label, r, budget in rows:
        print(f"{label:56} {r['s']:>8.2f}s {r['rss_mb']:>8.0f}MB  {budget}")
    print(f"{'second project / uv venv + install':56} {second_ratio:>8.2f}x {'':>10}  <= 3x")
    print(f"{'no-op / warm uv pip compile':56} {ratio:>8.2f}x {'':>10}  <= 2x")
    print(f"{'peak memory of any lock or check':56} {'':>9} {peak:>8.0f}MB  <= 400 MB")
    out = REPO / "bench" / "results" / "lock_scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**results, "noop_to_uv_ratio": round(ratio, 2),
                               "second_project_to_uv_ratio": round(second_ratio, 2), "peak_rss_mb": peak,
                               "cores": os.cpu_count(), "measured": time.strftime("%Y-%m-%d")}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
