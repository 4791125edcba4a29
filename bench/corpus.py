"""Corpus: lock each package of the spec's 25-package corpus and five untyped packages, one project each,
against the index the environment configures (this reaches the network), and write bench/corpus.md.

Per package: stub provenance, public items, translated, skipped by reason, whether the wrapper compiled
and imports, and one smoke call through the wrapper (a zero-argument extern, constants first).
Run: .venv/bin/python bench/corpus.py [--only NAME ...] [--jobs N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from mochi_subset import check_shim  # noqa: E402 - the test suite's checker of the DESIGN §6 subset

CORPUS = ["numpy", "pandas", "scipy", "scikit-learn", "requests", "httpx", "urllib3", "pillow", "pydantic", "attrs",
          "click", "typer", "rich", "tqdm", "sqlalchemy", "fastapi", "starlette", "uvicorn", "aiohttp", "pyyaml",
          "toml", "tomli", "msgpack", "orjson", "pytest"]
UNTYPED = ["six", "colorama", "boltons", "art", "pyjokes"]  # no inline types: typeshed and stubgen tiers

SMOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
surface = json.loads(open(sys.argv[2]).read())
mod = __import__(sys.argv[3])
result = {"imports": True, "smoke": ""}
for fn in sorted(surface["functions"], key=lambda f: (f["kind"] != "constant", f["mochi_name"])):
    if fn["params"] and any(p["required"] for p in fn["params"]):
        continue
    try:
        value = getattr(mod, fn["mochi_name"])()
        result["smoke"] = f"{fn['mochi_name']}() -> {type(value).__name__}"
        break
    except Exception as exc:  # a failing call is still information: try the next one
        result["smoke"] = f"{fn['mochi_name']}() raised {type(exc).__name__}"
print(json.dumps(result))
"""


def lock_one(name: str, work: Path, cache: Path) -> dict[str, object]:
    root = work / name
    root.mkdir(parents=True)
    (root / "mochi.toml").write_text(f'[python-dependencies]\n"{name}" = "*"\n[python]\nrequires-python = ">=3.11"\n')
    env = {**os.environ, "MOCHI_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tasks", "lock", str(root), "-q"], env=env, capture_output=True,
                          text=True, check=False, timeout=1800)
    row: dict[str, object] = {"package": name, "locked": proc.returncode == 0,
                              "seconds": round(time.perf_counter() - start, 1)}
    if proc.returncode != 0:
        row["error"] = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["?"]
        return row
    from packaging.utils import canonicalize_name
    dist = canonicalize_name(name)
    surface = json.loads((root / ".mochi" / "deps" / dist / "surface.json").read_text())
    module = "_mochi_" + dist.replace("-", "_").replace(".", "_")
    wrap = root / "python_wrap" / dist
    # Count public items, not externs: the forms and overload variants of one item share it; members of other
    # distributions' classes and the casts are not the package's items; a partially bound item is translated.
    translated = {f["item"] for f in surface["functions"] if f["item"] and not f.get("foreign")}
    skipped = {s["item"]: s["reason"] for s in surface["skipped"]
               if s["item"] not in translated and s["reason"] != "PartiallyBound"}
    problems = check_shim((wrap / "shim.mochi").read_text(encoding="utf-8"))
    real = ""
    if os.environ.get("MOCHI_CHECK"):  # the real Mochi parser and type checker, when you have built them
        proc_check = subprocess.run([os.environ["MOCHI_CHECK"], str(wrap / "shim.mochi")], capture_output=True,
                                    text=True, check=False, timeout=600)
        real = "yes" if proc_check.returncode == 0 else "no: " + (proc_check.stdout + proc_check.stderr)[:100]
    row.update(provenance=surface["provenance"], translated=len(translated), externs=len(surface["functions"]),
               skipped=len(skipped), reasons=dict(Counter(skipped.values())),
               compiled=(wrap / f"{module}.abi3.so").is_file(), types=len(surface.get("types", [])),
               subset_problems=len(problems), subset_first=problems[:1], real_checker=real)
    smoke = subprocess.run([sys.executable, "-I", "-c", SMOKE, str(wrap), str(root / ".mochi" / "deps" / dist /
                            "surface.json"), module], capture_output=True, text=True, check=False, timeout=300)
    try:
        row.update(json.loads(smoke.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        row.update(imports=False, smoke=(smoke.stderr.strip().splitlines() or ["?"])[-1][:120])
    return row


def _public(row: dict[str, object]) -> int:
    """Public items: translated plus skipped, private names (reported as PrivateName) left out."""
    reasons = dict(row.get("reasons", {}))  # type: ignore[call-overload]
    return int(row["translated"]) + int(row["skipped"]) - int(reasons.get("PrivateName", 0))  # type: ignore[call-overload]


def render(rows: list[dict[str, object]], date: str) -> str:
    corpus = [r for r in rows if r["package"] in CORPUS]
    ok = [r for r in corpus if r.get("locked") and r.get("compiled") and r.get("imports")]
    shares = [int(r["translated"]) / max(1, _public(r)) for r in corpus if r.get("locked")]  # type: ignore[call-overload]
    locked = [r for r in rows if r.get("locked")]
    valid = [r for r in locked if r.get("subset_problems") == 0]
    lines = [f"# Corpus ({date})", "",
             f"Locked, compiled and imported: {len(ok)} of {len(corpus)} corpus packages. "
             f"Median translated share of public items: {statistics.median(shares) * 100 if shares else 0:.1f}%.",
             "Regenerate with `.venv/bin/python bench/corpus.py` (reaches the package index).", "",
             "Public items exclude private names (the PrivateName column counts them apart); an overloaded item "
             "counts as translated when one of its variants is.", "",
             f"Shims that pass the Mochi subset checker (tests/mochi_subset.py): {len(valid)} of {len(locked)}."
             + (f" Shims the real Mochi parser and type checker accept (`MOCHI_CHECK`): "
                f"{sum(r.get('real_checker') == 'yes' for r in locked)} of {len(locked)}."
                if any(r.get("real_checker") for r in locked) else ""), "",
             "| package | provenance | public | translated | types | skipped by reason | valid Mochi | compiled "
             "| imports | smoke call | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("locked"):
            lines.append(f"| {r['package']} | lock failed: {' '.join(map(str, r.get('error', [])))[:100]} "
                         f"| | | | | | | | | {r['seconds']} |")
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(dict(r["reasons"]).items()))  # type: ignore[call-overload]
        public = _public(r)
        valid_mochi = "yes" if r.get("subset_problems") == 0 else f"no: {' '.join(map(str, r.get('subset_first', [])))}"
        lines.append(f"| {r['package']} | {r['provenance']} | {public} | {r['translated']} | {r.get('types', 0)} | "
                     f"{reasons} | {valid_mochi[:120]} | {'yes' if r['compiled'] else 'no'} | "
                     f"{'yes' if r.get('imports') else 'no'} | {r.get('smoke', '')} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="lock only these packages")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--render", action="store_true", help="only re-render corpus.md from results/corpus.json")
    args = parser.parse_args()
    if args.render:
        rows = json.loads((REPO / "bench" / "results" / "corpus.json").read_text())
        (REPO / "bench" / "corpus.md").write_text(render(rows, datetime.date.today().isoformat()))
        return 0
    names = args.only or CORPUS + UNTYPED
    with tempfile.TemporaryDirectory(prefix="mochi-corpus-") as tmp:
        cache = Path(tmp) / "cache"
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda n: lock_one(n, Path(tmp) / "work", cache), names))
    date = datetime.date.today().isoformat()
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "corpus.json").write_text(json.dumps(rows, indent=1) + "\n")
    if not args.only:
        (REPO / "bench" / "corpus.md").write_text(render(rows, date))
    print(render(rows, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
