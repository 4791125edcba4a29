"""Benchmark: a no-op `mochi-py lock` against a warm `uv pip compile` of the same requirements.

Locks a copy of examples/hello (against the index the environment configures; this reaches the
network) with a fresh cache, then times, side by side in one run, repeated no-op locks and warm
`uv pip compile` runs. Prints the medians, their ratio and the DESIGN §10 budget, and writes
bench/results/noop_lock.json. Run: .venv/bin/python bench/noop_lock.py [--repeat N]
"""

from __future__ import annotations

import argparse
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


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tasks.graph import detect_context
    from tasks.resolve.manifest import load_manifest
    from tasks.resolve.resolver import find_uv

    with tempfile.TemporaryDirectory(prefix="mochi-bench-") as tmp:
        project = Path(tmp) / "hello"
        shutil.copytree(REPO / "examples" / "hello", project, ignore=shutil.ignore_patterns(
            ".mochi", "python_wrap", "mochi.lock", "pylock.toml"))
        env = {**os.environ, "MOCHI_CACHE_DIR": str(Path(tmp) / "cache")}
        lock = [sys.executable, "-m", "tasks", "lock", str(project)]
        cold = _timed(lock, env)
        os.environ["MOCHI_CACHE_DIR"] = env["MOCHI_CACHE_DIR"]
        ctx = detect_context(project)
        req = Path(tmp) / "requirements.in"
        req.write_text("".join(f"{d.requirement}\n" for d in load_manifest(project / "mochi.toml").dependencies))
        uv = [find_uv(), "pip", "compile", str(req), "--python", ctx.interpreter, "--no-python-downloads",
              "--no-config", "--default-index", ctx.default_index, "--quiet", "--cache-dir", str(Path(tmp) / "uvcache"),
              "-o", str(Path(tmp) / "requirements.txt")]
        _timed(uv, env)  # warm uv's cache
        noop, uv_warm = [], []
        for _ in range(args.repeat):  # interleaved, so load on the machine hits both alike
            noop.append(_timed(lock, env))
            uv_warm.append(_timed(uv, env))
    result = {"cold_lock_s": round(cold, 3), "noop_lock_median_s": round(statistics.median(noop), 3),
              "uv_compile_warm_median_s": round(statistics.median(uv_warm), 3)}
    result["ratio_noop_to_uv"] = round(result["noop_lock_median_s"] / result["uv_compile_warm_median_s"], 2)
    print(f"{'measure':32} {'value':>9}  budget (DESIGN §10)")
    print(f"{'cold lock, 2 deps':32} {result['cold_lock_s']:>8.3f}s")
    print(f"{'no-op lock (median)':32} {result['noop_lock_median_s']:>8.3f}s  <= 1 s")
    print(f"{'warm uv pip compile (median)':32} {result['uv_compile_warm_median_s']:>8.3f}s")
    print(f"{'no-op / uv ratio':32} {result['ratio_noop_to_uv']:>8.2f}x  <= 2x")
    out = REPO / "bench" / "results" / "noop_lock.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
