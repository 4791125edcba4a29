"""The natural calls of popular packages: bound? the Mochi call a user writes, and the same result as Python?

Locks one project holding the packages below against the index the environment configures (this reaches
the network), then for each call evaluates the Mochi call through the wrappers' Python face exactly as a
Mochi program would make it (externs by name, results read through handles and the `_as_*` casts, values
built with the `_of_*` casts, sum-type variants as the classes the Mochi side has) and the direct Python
call, and compares the results (a Mochi list stands for a Python tuple, a list<int> for bytes). Writes
bench/entrypoints.md.
Run: .venv/bin/python bench/entrypoints.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DEPS = {"inflection": "*", "humanize": "*", "pyyaml": "*", "python-dateutil": "*", "tabulate": "*", "numpy": "*",
        "rich": "*", "click": "*", "httpx": "*", "requests": "*", "toml": "*", "tomli": "*", "orjson": "*",
        "msgpack": "*", "sqlalchemy": "*", "scipy": "*", "pillow": "*"}


@dataclass(frozen=True)
class Call:
    python: str
    """The call as a Python programmer writes it (evaluated for the reference result)."""
    mochi: str
    """The Mochi call, in the language view's names (`shim.mochi` under python_wrap/)."""
    setup: str = ""
    """Python imports the reference call needs."""
    output: bool = False
    """Compare what the call prints instead of what it returns."""


CALLS = [
    Call('inflection.camelize("mochi_bridge")', 'inflection_camelize("mochi_bridge")', "import inflection"),
    Call('inflection.camelize("mochi_bridge", False)', 'inflection_camelize_with("mochi_bridge", false)',
         "import inflection"),
    Call("humanize.naturalsize(3000000)", "humanize_naturalsize(3000000)", "import humanize"),
    Call("humanize.naturalsize(3000000, True)", "humanize_naturalsize_binary(3000000, true)", "import humanize"),
    Call("humanize.intcomma(1234567)", "humanize_intcomma(1234567)", "import humanize"),
    Call('yaml.safe_load("a: 1\\nb: [1, 2]")["b"][1]',
         'yaml_as_int(yaml_as_list(yaml_as_map(yaml_safe_load("a: 1\\nb: [1, 2]"))["b"])[1])', "import yaml"),
    Call('yaml.safe_dump({"a": 1})', 'yaml_as_string(yaml_safe_dump(yaml_of_map({"a": yaml_of_int(1)})))',
         "import yaml"),
    Call('dateutil.parser.parse("2024-03-05T10:00:00").year',
         'dateutil_datetime_datetime_year(dateutil_parser_parse("2024-03-05T10:00:00"))', "import dateutil.parser"),
    Call('tabulate.tabulate([["a", 1], ["b", 2]], headers=["k", "v"])',
         'tabulate_tabulate_headers_list([[tabulate_of_string("a"), tabulate_of_int(1)], '
         '[tabulate_of_string("b"), tabulate_of_int(2)]], ["k", "v"])', "import tabulate"),
    Call("numpy.zeros(3).shape", "numpy_ndarray_shape(numpy_zeros(3))", "import numpy"),
    Call("numpy.array([1.0, 2.0, 3.0]).mean()", "numpy_as_float(numpy_ndarray_mean(numpy_array([1.0, 2.0, 3.0])))",
         "import numpy"),
    Call('rich.markup.escape("[bold]")', 'rich_markup_escape("[bold]")', "import rich.markup"),
    Call('rich.text.Text("hi").plain', 'rich_text_Text_plain(rich_text_Text_new_text("hi"))', "import rich.text"),
    Call('click.style("hi", fg="red")', 'click_style_fg_string(click_of_string("hi"), "red")', "import click"),
    Call('click.echo("hi")', 'click_echo_message(click_of_string("hi"))', "import click", output=True),
    Call('httpx.URL("https://example.org/a?b=1").host', 'httpx_URL_host(httpx_URL_new_url("https://example.org/a?b=1"))',
         "import httpx"),
    Call('httpx.Request("GET", "https://example.org", headers={"x": "1"}).headers["x"]',
         'httpx_Headers_get(httpx_Request_headers(httpx_Request_new_headers("GET", "https://example.org", '
         '{"x": "1"})), "x")', "import httpx"),
    Call('requests.Request("GET", "https://example.org", params={"q": "1"}).prepare().url',
         'requests_PreparedRequest_url(requests_Request_prepare(requests_Request_new_url_params_map("GET", '
         '"https://example.org", {"q": "1"})))', "import requests"),
    Call('toml.loads("a = 1")["a"]', 'toml_as_int(toml_loads("a = 1")["a"])', "import toml"),
    Call('tomli.loads("a = 1")["a"]', 'tomli_as_int(tomli_loads("a = 1")["a"])', "import tomli"),
    Call("orjson.loads('{\"a\": 1}')[\"a\"]", 'orjson_as_int(orjson_as_map(orjson_loads("{\\"a\\": 1}"))["a"])',
         "import orjson"),
    Call('orjson.dumps({"a": 1})', 'orjson_dumps(orjson_of_map({"a": orjson_of_int(1)}))', "import orjson"),
    Call("msgpack.unpackb(msgpack.packb([1, 2]))",
         "msgpack_as_list(msgpack_unpackb(msgpack_packb(msgpack_of_list([msgpack_of_int(1), msgpack_of_int(2)]))))",
         "import msgpack"),
    Call('sqlalchemy.text("select 1").text',
         'sqlalchemy_as_string(sqlalchemy_attr(sqlalchemy_text("select 1"), "text"))', "import sqlalchemy"),
    Call("scipy.special.comb(5, 2)", "scipy_as_float(scipy_special_comb(5, 2))", "import scipy.special"),
    Call('PIL.Image.new("RGB", (4, 4)).size',
         'PIL_Image_Image_size(PIL_Image_new("RGB", PIL_Tuple_Int_Int { item0: 4, item1: 4 }))',
         "import PIL.Image"),
]

EXPLAIN = {
    "msgpack": "msgpack ships no types and typeshed has no stubs for it, so stubgen types it; its unannotated "
               "parameters and returns are `Any` (PEP 484) and cross as `value`. `unpackb` is a Cython function of "
               "the package's C accelerator: the stubgen sandbox stubs it as a function with the signature "
               "`inspect.signature` reads (`(packed, *, object_hook=None, ...)`), not as a variable of type "
               "`cython_function_or_method` (ForwardRef) nor from the docstring's C-typed names (`booluse_list`); "
               "if it is unbound again, look at its stub in .mochi/deps/msgpack/stubs and at SKIPPED.txt.",
    "scipy": "scipy's types come from scipy-stubs, which annotates `comb` with `optype` aliases; the stub "
             "distribution's typed requirements are read beside the stubs (stubs.json `stub_requirements`).",
}

_RUN = r"""
import contextlib, io, json, sys, types
dirs, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for d in dirs:
    sys.path.insert(0, d)
W = types.SimpleNamespace()
for d in dirs:
    import os
    for f in os.listdir(d):
        if f.startswith("_mochi_") and f.endswith(".abi3.so"):
            mod = __import__(f.split(".")[0])
            W.__dict__.update({k: getattr(mod, k) for k in dir(mod) if not k.startswith("__")})
        elif f.endswith("_externs.py"):
            mod = __import__(f[:-3])
            W.__dict__.update({k: getattr(mod, k) for k in dir(mod) if not k.startswith("_")})

def norm(v):
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, (tuple, list)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    import dataclasses
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # a record: a tuple's items, else its fields
        fields = [f.name for f in dataclasses.fields(v)]
        if fields and all(f == f"item{i}" for i, f in enumerate(fields)):
            return [norm(getattr(v, f)) for f in fields]
        return {f: norm(getattr(v, f)) for f in fields}
    return v

out = []
for c in calls:
    row = {}
    for side, code in (("mochi", c["face"]), ("python", c["python"])):
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                import importlib
                space = {"W": W}
                for m in c["modules"]:
                    importlib.import_module(m)
                    space[m.split(".")[0]] = sys.modules[m.split(".")[0]]
                value = eval(code, space)
            row[side] = buf.getvalue() if c["output"] else norm(value)
        except Exception as exc:
            row[side + "_error"] = f"{type(exc).__name__}: {exc}"[:300]
    out.append(row)
print(json.dumps(out, default=repr))
"""


def _face(mochi: str, names: set[str]) -> tuple[str, list[str]]:
    """The Mochi call as Python against the wrappers: names are the wrappers', literals Python's."""
    missing = []

    def ident(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in ("true", "false"):
            return word.capitalize()
        if word in names:
            return f"W.{word}"
        if re.fullmatch(r"[a-z]+_\w+", word):
            missing.append(word)
            return f"W.{word}"
        return word

    code = re.sub(r'"(?:\\.|[^"\\])*"|[A-Za-z_]\w*', lambda m: m.group(0) if m.group(0).startswith('"') else ident(m),
                  mochi)
    # a record literal `T { f: v, ... }` is the record class called with keywords
    def record(m: re.Match[str]) -> str:
        fields = re.sub(r"(\w+): ", r"\1=", m.group(2))
        return f"{m.group(1)}({fields})"

    code = re.sub(r"(W\.\w+) \{ ([^}]*) \}", record, code)
    return code, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="lock the project in this directory and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="mochi-entrypoints-"))
    root.mkdir(parents=True, exist_ok=True)
    deps = "".join(f'"{n}" = "{c}"\n' for n, c in DEPS.items())
    (root / "mochi.toml").write_text(f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.11"\n')
    lock = subprocess.run([sys.executable, "-m", "tasks", "lock", str(root), "-q"], capture_output=True, text=True,
                          check=False, timeout=3600)
    if lock.returncode != 0:
        print(lock.stdout + lock.stderr, file=sys.stderr)
        return 1
    wraps = sorted(str(p) for p in (root / "python_wrap").iterdir() if p.name != "site-packages" and p.is_dir())
    names: set[str] = set()
    for w in wraps:
        names |= set(re.findall(r"^extern python fun (\w+)", (Path(w) / "shim.mochi").read_text(), re.M))
        names |= set(re.findall(r"^type (\w+)", (Path(w) / "shim.mochi").read_text(), re.M))
        names |= {v for line in re.findall(r"^type \w+ = (.+)$", (Path(w) / "shim.mochi").read_text(), re.M)
                  for v in re.findall(r"(\w+)(?:\(|$| )", line)}
    jobs = []
    for c in CALLS:
        face, missing = _face(c.mochi, names)
        modules = re.findall(r"import ([\w.]+)", c.setup)
        jobs.append({"face": face, "python": c.python, "modules": modules, "output": c.output, "missing": missing})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN, json.dumps(wraps), json.dumps(jobs)],
                          capture_output=True, text=True, check=False, env=env, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    results = json.loads(proc.stdout)
    rows = []
    for c, job, res in zip(CALLS, jobs, results, strict=True):
        bound = not job["missing"]
        equal = bound and "mochi" in res and "python" in res and res["mochi"] == res["python"]
        rows.append({"python": c.python, "mochi": c.mochi, "bound": bound, "equal": equal,
                     "missing": job["missing"], "result": res.get("mochi", res.get("mochi_error")),
                     "expected": res.get("python", res.get("python_error"))})
    date = datetime.date.today().isoformat()
    ok = sum(r["equal"] for r in rows)
    lines = [f"# Entry points ({date})", "",
             f"{sum(r['bound'] for r in rows)} of {len(rows)} calls bound, {ok} with a result equal to Python's "
             "(through the wrappers' Python face, as a Mochi program makes the call).",
             "Regenerate with `.venv/bin/python bench/entrypoints.py` (reaches the package index).", "",
             "| Python | the Mochi call | bound | equal | result |", "|---|---|---|---|---|"]
    for r in rows:
        note = "" if r["bound"] else f" (no {', '.join(r['missing'])})"
        shown = json.dumps(r["result"])[:60] if r["equal"] else f"{json.dumps(r['result'])[:80]} vs " \
            f"{json.dumps(r['expected'])[:60]}"
        lines.append(f"| `{r['python']}` | `{r['mochi']}` | {'yes' if r['bound'] else 'no' + note} | "
                     f"{'yes' if r['equal'] else 'no'} | {shown.replace('|', '/')} |")
    unexplained = [r for r in rows if not r["equal"]]
    if unexplained:
        lines += ["", "Not bound with an equal result:", ""]
        for r in unexplained:
            key = r["python"].split(".")[0]
            lines.append(f"- `{r['python']}`: {EXPLAIN.get(key, 'see the result column')}")
    (REPO / "bench" / "entrypoints.md").write_text("\n".join(lines) + "\n")
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "entrypoints.json").write_text(json.dumps(rows, indent=1, default=repr) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
