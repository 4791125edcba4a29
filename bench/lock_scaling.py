"""Benchmark: locking a 50-dependency project, measured side by side in one run (DESIGN §10).

Builds a local PEP 691 index of 50 synthetic typed packages of varied sizes (5 to 200 functions,
one of them in two versions) and a project depending on all of them, then measures: a cold lock
(empty caches), a lock with a warm wheel cache and an empty wrapper cache, a no-op lock, a lock
after bumping one dependency, and a warm `uv pip compile` of the same requirements; each with the
peak memory of its process tree. Prints the table with the budgets beside the figures and writes
bench/results/lock_scaling.json. Needs no network. Run: .venv/bin/python bench/lock_scaling.py
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
            root.mkdir()
            deps = "\n".join(f'synth{i:02d} = "==1.0"' for i in range(N))
            manifest = (f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\n'
                        f'indexes = [{{ url = "{index.url}" }}]\n')
            (root / "mochi.toml").write_text(manifest)
            cache = base / "cache"
            env = {**os.environ, "MOCHI_CACHE_DIR": str(cache)}
            lock = [sys.executable, "-m", "tasks", "lock", str(root), "-q"]
            results: dict[str, dict[str, float]] = {}
            results["cold"] = measure(lock, env)
            shutil.rmtree(cache / "wrappers")
            shutil.rmtree(root / ".mochi")
            shutil.rmtree(root / "python_wrap")
            results["warm_wheels_cold_wrappers"] = measure(lock, env)
            noops = [measure(lock, env) for _ in range(5)]
            results["noop"] = {"s": statistics.median(r["s"] for r in noops),
                               "rss_mb": max(r["rss_mb"] for r in noops)}
            (root / "mochi.toml").write_text(manifest.replace('synth00 = "==1.0"', 'synth00 = "==1.1"'))
            results["bump_one"] = measure(lock, env)
            req = base / "requirements.in"
            req.write_text("".join(f"synth{i:02d}==1.0\n" for i in range(N)))
            from tasks.resolve.resolver import find_uv
            uv = [find_uv(), "pip", "compile", str(req), "--python", sys.executable, "--no-python-downloads",
                  "--no-config", "--default-index", index.url, "--quiet", "--cache-dir", str(base / "uvc"),
                  "-o", str(base / "requirements.txt")]
            measure(uv, env)
            uvs = [measure(uv, env) for _ in range(5)]
            results["uv_compile_warm"] = {"s": statistics.median(r["s"] for r in uvs),
                                          "rss_mb": max(r["rss_mb"] for r in uvs)}
        finally:
            index.stop()
    ratio = results["noop"]["s"] / results["uv_compile_warm"]["s"]
    peak = max(r["rss_mb"] for k, r in results.items() if k != "uv_compile_warm")
    rows = [("cold lock (empty caches)", results["cold"], ""),
            ("warm wheels, empty wrapper cache", results["warm_wheels_cold_wrappers"], "<= 60 s"),
            ("no-op lock (median of 5)", results["noop"], "<= 1 s"),
            ("one dependency bumped", results["bump_one"], "<= 5 s"),
            ("warm uv pip compile (median of 5)", results["uv_compile_warm"], "")]
    print(f"{'measure (50 dependencies, ' + str(os.cpu_count()) + ' cores)':40} {'time':>9} {'peak RSS':>10}  budget")
    for label, r, budget in rows:
        print(f"{label:40} {r['s']:>8.2f}s {r['rss_mb']:>8.0f}MB  {budget}")
    print(f"{'no-op / warm uv pip compile':40} {ratio:>8.2f}x {'':>10}  <= 2x")
    print(f"{'peak memory of any lock':40} {'':>9} {peak:>8.0f}MB  <= 400 MB")
    out = REPO / "bench" / "results" / "lock_scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**results, "noop_to_uv_ratio": round(ratio, 2), "peak_rss_mb": peak,
                               "cores": os.cpu_count(), "measured": time.strftime("%Y-%m-%d")}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
