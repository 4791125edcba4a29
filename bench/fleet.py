"""Benchmark: CI at fleet scale, two fresh machines sharing compiles through sccache and Redis (issue 18).

Builds a local PEP 691 index of 10 synthetic typed packages (60 to 240 functions each) and a project
depending on all of them. Machine 1 clones it with an empty MOCHI_CACHE_DIR and locks; machine 2 clones the
committed mochi.toml, mochi.lock and program with an empty MOCHI_CACHE_DIR of its own and runs
`mochi-py lock --frozen`. Both use `[python].compiler-cache = "auto"` with SCCACHE_REDIS_ENDPOINT pointing at
one Debian `redis-server` on 127.0.0.1 that this script starts and stops, and separate SCCACHE_DIRs. A third
machine locks with `compiler-cache = "none"` as the baseline. Prints the compile step's time (the `compile`
task, from `.mochi/compiler-cache.json`), the whole lock's time and the launcher's hit rate for each, with
the ratio, and writes bench/results/fleet.json. Needs no network, and `redis-server` on PATH.
Run: .venv/bin/python bench/fleet.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import build_wheel, fixture_index  # noqa: E402 - the tests' real wheel builder and index
from lock_scaling import package_source  # noqa: E402 - the same synthetic typed packages

N = 10
MOCHI_PY = Path(sys.executable).parent / "mochi-py"


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


def machine(base: Path, name: str, files: dict[str, bytes], args: list[str], env: dict[str, str]) -> dict[str, object]:
    """One fresh CI machine: a clone of the committed files, caches of its own, one lock."""
    root = base / name / "proj"
    root.mkdir(parents=True)
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    env = {**os.environ, **env, "MOCHI_CACHE_DIR": str(base / name / "cache"),
           "SCCACHE_DIR": str(base / name / "sccache")}
    started = time.perf_counter()
    proc = subprocess.run([str(MOCHI_PY), *args, "-q"], cwd=root, capture_output=True, text=True, env=env,
                          check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name}: mochi-py {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    stats = json.loads((root / ".mochi" / "compiler-cache.json").read_text(encoding="utf-8"))
    hits, misses = int(stats.get("hits", 0)), int(stats.get("misses", 0))
    return {"root": str(root), "lock_s": round(elapsed, 2), "compile_s": float(stats["seconds"]),
            "tool": stats.get("tool", "none"), "hits": hits, "misses": misses,
            "hit_rate": round(hits / (hits + misses), 3) if hits + misses else 0.0}


def one_round(base: Path, index_url: str, redis: str) -> dict[str, dict[str, object]]:
    deps = "\n".join(f'synth{i:02d} = "==1.0"' for i in range(N))
    program = "".join(f'import python "synth{i:02d}" as s{i:02d}\n' for i in range(N))
    manifest = (f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\ncompiler-cache = "auto"\n'
                f'indexes = [{{ url = "{index_url}" }}]\n')
    shared = {"SCCACHE_REDIS_ENDPOINT": redis}
    first = machine(base, "machine-1", {"mochi.toml": manifest.encode(), "app.mochi": program.encode()}, ["lock"],
                    shared)
    root = Path(str(first["root"]))
    committed = {n: (root / n).read_bytes() for n in ("mochi.toml", "mochi.lock", "app.mochi")}
    second = machine(base, "machine-2", committed, ["lock", "--frozen"], shared)
    plain = {**committed, "mochi.toml": committed["mochi.toml"].replace(b'compiler-cache = "auto"',
                                                                        b'compiler-cache = "none"')}
    baseline = machine(base, "no-launcher", plain, ["lock", "--frozen"], {})
    for dist in (f"synth{i:02d}" for i in range(N)):
        so = f"python_wrap/{dist}/_mochi_{dist}.abi3.so"
        if (root / so).read_bytes() != (Path(str(second["root"])) / so).read_bytes():
            raise SystemExit(f"{so} differs between the machines")
    return {"machine 1 (cold, sccache misses)": first, "machine 2 (cold, sccache from Redis)": second,
            "no launcher (cold, plain compiler)": baseline}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (fresh machines and a fresh Redis each)")
    opts = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="mochi-fleet-") as tmp:
        base = Path(tmp)
        wheels = [build_wheel(base / "wheels", f"synth{i:02d}", "1.0",
                              {f"synth{i:02d}/__init__.py": package_source(i, 60 + (i * 53) % 181),
                               f"synth{i:02d}/py.typed": b""}) for i in range(N)]
        index = fixture_index(wheels)
        try:
            for r in range(opts.repeat):
                redis, url = start_redis(base)
                try:
                    rounds.append(one_round(base / f"round-{r}", index.url, url))
                finally:
                    redis.terminate()
                    redis.wait(timeout=20)
        finally:
            index.stop()
    rows = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        rows[name] = {"compile_s": round(statistics.median(float(str(x["compile_s"])) for x in runs), 2),
                      "lock_s": round(statistics.median(float(str(x["lock_s"])) for x in runs), 2),
                      "hits": runs[-1]["hits"], "misses": runs[-1]["misses"], "hit_rate": runs[-1]["hit_rate"]}
    first, second, plain = (rows[n] for n in rounds[0])
    ratio = round(first["compile_s"] / second["compile_s"], 2)
    print(f"{N} packages, {opts.repeat} round(s), medians; 2 cores; sccache with a Redis backend on 127.0.0.1\n")
    print(f"{'machine':<38} {'compile step':>12} {'whole lock':>11} {'sccache hits':>13}")
    for name, row in rows.items():
        hits = f"{row['hits']}/{int(str(row['hits'])) + int(str(row['misses']))}" if name != list(rows)[-1] else "-"
        print(f"{name:<38} {row['compile_s']:>10.2f} s {row['lock_s']:>9.2f} s {hits:>13}")
    print(f"\nsecond machine's compile step: {ratio}x faster than the first (issue 18 asks >= 3x); "
          f"the first costs {round(first['compile_s'] / plain['compile_s'], 2)}x a plain compile")
    out = REPO / "bench" / "results" / "fleet.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"packages": N, "rounds": opts.repeat, "rows": rows, "ratio": ratio}, indent=1) + "\n",
                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
