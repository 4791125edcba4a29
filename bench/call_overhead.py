"""Benchmark: the cost of a call through a generated wrapper, against the runtime checkers a user would
pick instead, side by side in one run (DESIGN §10).

Builds the tablefix and fastfix fixture wheels (tests/packages), serves them from a local index, locks a
project with them (no network), then times, per row, the same Python function called:

- `direct`: the function itself; `forward`: a hand-written forwarding sidecar (`def f(*a): return g(*a)`);
- `ours`: the wrapper's Python face (`_mochi_tablefix.<extern>`), which checks every argument and every
  element of the return value and copies containers;
- `beartype` (`@beartype`, which samples one element of a container), `typeguard` (`@typechecked` with
  `collection_check_strategy=ALL_ITEMS`, every element) and `pydantic`
  (`validate_call(config=ConfigDict(strict=True), validate_return=True)`, every element).

Rows: `add(int, int) -> int`; `scale(list[float] x 1000, float) -> list[float]`;
`index_words(list[str] x 200) -> dict[str, int]` (200 distinct words); `fastfix.dedupe(set[str] x 200)
-> set[str]`; a record round trip `restock(Item, int) -> Item`; a handle method call `Shape.area()`.
Timings are the calling thread's CPU time (so other load on a shared machine is not counted), best of
interleaved rounds; "per element" is the overhead over the direct call divided by the elements crossing
(in and out). The C ABI (`bench/call_host.c`) is timed against `PyObject_Vectorcall` from C
(`bench/call_direct.c`), both taking the GIL per call.

Writes bench/results/call_overhead.json. Needs the `bench` extra (`pip install -e '.[test,bench]'`).
Run: .venv/bin/python bench/call_overhead.py [--rounds N]
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
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ("direct", "forward", "ours", "beartype", "typeguard", "pydantic")

PY_FACE = textwrap.dedent("""
    import json, sys, time, timeit, warnings
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/../fastfix"]
    import _mochi_tablefix as m, tablefix_externs as x, _mochi_fastfix as mf
    import tablefix, fastfix
    from beartype import beartype
    from pydantic import ConfigDict, validate_call
    from typeguard import CollectionCheckStrategy, typechecked

    warnings.simplefilter("ignore")
    strict = validate_call(config=ConfigDict(strict=True, arbitrary_types_allowed=True), validate_return=True)
    every = typechecked(collection_check_strategy=CollectionCheckStrategy.ALL_ITEMS)

    def forward(f):
        def call(*args):
            return f(*args)
        return call

    floats = [float(i) for i in range(1000)]
    words = [f"w{i}" for i in range(200)]
    unique = set(words)
    tags = ["red", "metal"]
    item = tablefix.Item(name="bolt", qty=3, tags=tags, color=tablefix.Color.RED)
    record = x.tablefix_Item(name="bolt", qty=3, tags=tags, color=x.tablefix_Color_RED())
    shape, handle = tablefix.Shape(1.5), m.tablefix_Shape_new(1.5)
    rows = {  # name: (python function, its arguments, the extern, its arguments, elements crossing)
        "add(int, int) -> int": (tablefix.add, (1, 2), m.tablefix_add, (1, 2), 0),
        "scale(list[float] x 1000, float) -> list[float]": (tablefix.scale, (floats, 2.0), m.tablefix_scale,
                                                            (floats, 2.0), 2000),
        "index_words(list[str] x 200) -> dict[str, int]": (tablefix.index_words, (words,), m.tablefix_index_words,
                                                           (words,), 400),
        "dedupe(set[str] x 200) -> set[str]": (fastfix.dedupe, (unique,), mf.fastfix_dedupe, (unique,), 400),
        "restock(Item, int) -> Item (record round trip)": (tablefix.restock, (item, 1), m.tablefix_restock,
                                                           (record, 1), 0),
        "Shape.area() (handle method)": (tablefix.Shape.area, (shape,), m.tablefix_Shape_area, (handle,), 0),
    }
    rounds = int(sys.argv[2])
    out = {}
    for name, (fn, args, ext, ext_args, elements) in rows.items():
        calls = {"direct": (fn, args), "forward": (forward(fn), args), "ours": (ext, ext_args),
                 "beartype": (beartype(fn), args), "typeguard": (every(fn), args), "pydantic": (strict(fn), args)}
        for label, (f, a) in calls.items():
            f(*a)  # warm: the wrapper resolves its target, the checkers build their validators
        number = {}
        for label, (f, a) in calls.items():
            t = timeit.Timer(lambda f=f, a=a: f(*a), timer=time.thread_time)
            n, _ = t.autorange()
            number[label] = n  # about 0.2 s of calls per measurement
        best = {label: float("inf") for label in calls}
        for _ in range(rounds):  # interleaved: drift on the machine hits every column alike
            for label, (f, a) in calls.items():
                t = timeit.Timer(lambda f=f, a=a: f(*a), timer=time.thread_time)
                best[label] = min(best[label], t.timeit(number[label]) / number[label] * 1e9)
        out[name] = {"ns": best, "elements": elements}
    print(json.dumps(out))
""")


def _lock(tmp: Path) -> Path:
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from helpers import build_wheel, fixture_index, package_files, run_cli, write_project

    names = ("tablefix", "fastfix")
    idx = fixture_index([build_wheel(tmp / "wheels", name, "1.0", package_files(name)) for name in names])
    try:
        root = write_project(tmp / "proj", 'tablefix = "1.0"\nfastfix = "1.0"', idx.url)
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


def _table(face: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    lines = [f"{'row (ns per call; per element: overhead over direct / elements crossing)':56}"
             + "".join(f"{c:>11}" for c in COLUMNS)]
    verdicts: dict[str, Any] = {}
    for name, row in face.items():
        ns, elements = row["ns"], row["elements"]
        lines.append(f"{name:56}" + "".join(f"{ns[c]:>11.1f}" for c in COLUMNS))
        if elements:
            per = {c: (ns[c] - ns["direct"]) / elements for c in COLUMNS if c != "direct"}
            row["per_element_ns"] = per
            lines.append(f"{'  per element':56}{'':>11}" + "".join(f"{per[c]:>11.2f}" for c in COLUMNS[1:]))
            verdicts[name] = {"per_element_ns": round(per["ours"], 2), "budget_3ns": per["ours"] <= 3.0,
                              "faster_than_pydantic": ns["ours"] < ns["pydantic"],
                              "faster_than_typeguard": ns["ours"] < ns["typeguard"]}
    add = face["add(int, int) -> int"]["ns"]
    verdicts["scalar"] = {"vs_forwarding_sidecar": round(add["ours"] / add["forward"], 2),
                          "budget_1.3x": add["ours"] <= 1.3 * add["forward"],
                          "faster_than_beartype": add["ours"] < add["beartype"],
                          "faster_than_typeguard": add["ours"] < add["typeguard"],
                          "faster_than_pydantic": add["ours"] < add["pydantic"]}
    return lines, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls per round of the C ABI timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mochi-bench-") as name:
        tmp = Path(name)
        wrap = _lock(tmp)
        proc = subprocess.run([sys.executable, "-c", PY_FACE, str(wrap / "tablefix"), str(args.rounds)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        face = json.loads(proc.stdout)
        host = _c_host(tmp, wrap, args.calls)
    lines, verdicts = _table(face)
    print("\n".join(lines))
    for name, v in verdicts.items():
        print(f"  {name}: {v}")
    c_ratio = host["cabi"] / host["direct"]
    print(f"C ABI, ns/call (GIL taken per call): api->call {host['cabi']:.1f}, PyObject_Vectorcall "
          f"{host['direct']:.1f}; ratio {c_ratio:.2f}x (budget <= 1.5x)")
    out = REPO / "bench" / "results" / "call_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"python_face": face, "verdicts": verdicts, "c_abi_ns": host,
                               "c_abi_ratio": round(c_ratio, 3), "cores": os.cpu_count(),
                               "measured": time.strftime("%Y-%m-%d")}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
