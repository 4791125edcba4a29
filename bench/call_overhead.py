"""Benchmark: the cost of a call through a generated wrapper, as the two ratios of DESIGN §10.

Builds the tablefix fixture wheel (tests/packages), serves it from a local index, locks a project
with it (no network), then times `tablefix.add(int, int) -> int`, side by side in one run:

- Python face: `_mochi_tablefix.tablefix_add(1, 2)` against calling `tablefix.add(1, 2)` directly
  (budget <= 1.3x); for context also against hand-written sidecars, one that only forwards and one
  that checks the return type the way the wrapper does;
- C ABI: `api->call` from a C host (bench/call_host.c) against the same call through
  `PyObject_Vectorcall` from C (bench/call_direct.c), both taking the GIL per call (budget <= 1.5x).

Prints ns per call, the ratios and the budgets; writes bench/results/call_overhead.json.
Run: .venv/bin/python bench/call_overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY_FACE = textwrap.dedent("""
    import json, sys, timeit
    sys.path.insert(0, sys.argv[1])
    import _mochi_tablefix as m
    import tablefix

    def forward(a, b):
        return tablefix.add(a, b)

    def checked(a, b):
        r = tablefix.add(a, b)
        if type(r) is not int:
            raise TypeError("tablefix_add: return value expected int")
        return r

    calls = {"direct": tablefix.add, "wrapper": m.tablefix_add, "forward": forward, "checked": checked}
    n = int(sys.argv[2])
    best = {k: float("inf") for k in calls}
    for _ in range(7):  # interleaved rounds: drift on the machine hits every variant alike
        for k, f in calls.items():
            best[k] = min(best[k], timeit.timeit("f(1, 2)", globals={"f": f}, number=n) / n * 1e9)
    print(json.dumps(best))
""")


def _lock(tmp: Path) -> Path:
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from helpers import build_wheel, fixture_index, package_files, run_cli, write_project

    wheel = build_wheel(tmp / "wheels", "tablefix", "1.0", package_files("tablefix"))
    idx = fixture_index([wheel])
    try:
        root = write_project(tmp / "proj", 'tablefix = "1.0"', idx.url)
        proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp / "cache")})
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
    finally:
        idx.stop()
    return root / "python_wrap"


def _c_host(tmp: Path, wrap: Path, calls: int) -> dict[str, float]:
    cc = shutil.which("gcc") or shutil.which("cc") or "cc"
    include = sysconfig.get_paths()["include"]
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION")
    exe = tmp / "call_host"
    subprocess.run([cc, "-O2", f"-I{REPO / 'wrappers'}", f"-I{include}", str(REPO / "bench/call_host.c"),
                    str(REPO / "bench/call_direct.c"), "-o", str(exe), f"-L{libdir}", f"-lpython{version}",
                    f"-Wl,-rpath,{libdir}", "-lm"], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(exe), str(wrap / "tablefix"), str(wrap / "site-packages"), str(calls)],
                         capture_output=True, text=True, env=env, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("cabi ")]
    return {"cabi": min(float(r[1]) for r in rows), "direct": min(float(r[3]) for r in rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mochi-bench-") as name:
        tmp = Path(name)
        wrap = _lock(tmp)
        face = json.loads(subprocess.run([sys.executable, "-c", PY_FACE, str(wrap / "tablefix"), str(args.calls)],
                                         capture_output=True, text=True, check=True).stdout)
        host = _c_host(tmp, wrap, args.calls)
    result = {
        "python_face_ns": face, "c_abi_ns": host,
        "python_face_ratio": face["wrapper"] / face["direct"],
        "python_face_ratio_vs_forwarding_sidecar": face["wrapper"] / face["forward"],
        "python_face_ratio_vs_checking_sidecar": face["wrapper"] / face["checked"],
        "c_abi_ratio": host["cabi"] / host["direct"],
    }
    print(f"Python face, (int, int) -> int, ns/call: direct {face['direct']:.1f}, wrapper {face['wrapper']:.1f}, "
          f"forwarding sidecar {face['forward']:.1f}, checking sidecar {face['checked']:.1f}")
    print(f"  wrapper / direct            {result['python_face_ratio']:.2f}x   (budget <= 1.3x)")
    print(f"  wrapper / forwarding sidecar {result['python_face_ratio_vs_forwarding_sidecar']:.2f}x")
    print(f"  wrapper / checking sidecar   {result['python_face_ratio_vs_checking_sidecar']:.2f}x")
    print(f"C ABI, ns/call (GIL taken per call): api->call {host['cabi']:.1f}, "
          f"PyObject_Vectorcall {host['direct']:.1f}")
    print(f"  C ABI / Vectorcall          {result['c_abi_ratio']:.2f}x   (budget <= 1.5x)")
    out = REPO / "bench" / "results" / "call_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
