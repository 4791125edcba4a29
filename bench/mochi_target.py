"""Programs that import real packages, built and run on the real Mochi Python target; output compared with Python.

For each program: a project with its `mochi.toml`, `mochi-py lock` (against the index the environment
configures; this reaches the network), `mochi-py build`, then `$MOCHI_RUNNER PROGRAM.mochi --sidecar-dir DIR`
(a command that compiles with the Mochi Python target and runs the result, printing its stdout), and the
same calls made directly in Python with the locked packages. Writes bench/mochi-target.md.

The Mochi toolchain is not part of this repository and not in CI: build it from its public sources and
point MOCHI_RUNNER at your runner. MOCHI_TARGET_PYTHON names the CPython (>= 3.12, as the target needs)
the projects lock for; default: the interpreter the runner uses, else `python3.12` on PATH.
Run: MOCHI_RUNNER=... .venv/bin/python bench/mochi_target.py [--only NAME ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


@dataclass(frozen=True)
class Program:
    name: str
    deps: dict[str, str]
    mochi: str
    python: str
    """The same calls made directly in Python, printing what the Mochi program prints."""
    what: str
    fixtures: tuple[str, ...] = ()
    """Test-suite fixture packages served from a local index instead (the bridge's own behaviours)."""


HELLO = (REPO / "examples" / "hello" / "hello.mochi").read_text(encoding="utf-8")

PROGRAMS = [
    Program("hello", {"inflection": "^0.5", "humanize": ">=4.9,<5"}, HELLO, """
        import inflection, humanize
        print(inflection.camelize("mochi_bridge"))
        print(inflection.camelize("mochi_bridge", False))
        print(inflection.pluralize("package"))
        print(humanize.intcomma(1234567))
        print(humanize.naturalsize(3000000))
        print(humanize.naturalsize(3000000, True))
        print(humanize.metric(1500, "V"))
        """, "the bundled example"),
    Program("inflection", {"inflection": "^0.5"}, """
        import python "inflection" as inf
        print(inf_underscore("DeviceType"))
        print(inf_singularize("posts"))
        print(inf_titleize("x-men: the last stand"))
        print(inf_ordinalize(3))
        print(inf_parameterize("Donald E. Knuth"))
        print(inf_dasherize("puni_puni"))
        """, """
        import inflection as inf
        print(inf.underscore("DeviceType"))
        print(inf.singularize("posts"))
        print(inf.titleize("x-men: the last stand"))
        print(inf.ordinalize(3))
        print(inf.parameterize("Donald E. Knuth"))
        print(inf.dasherize("puni_puni"))
        """, "plain names; an int argument"),
    Program("humanize", {"humanize": ">=4.9,<5"}, """
        import python "humanize" as hz
        print(hz_intcomma(1234567))
        print(hz_intword(1200000000))
        print(hz_ordinal(22))
        print(hz_apnumber(4))
        print(hz_naturalsize_binary(3000000, true))
        print(hz_scientific(500))
        print(hz_fractional_float(0.5))
        """, """
        import humanize as hz
        print(hz.intcomma(1234567))
        print(hz.intword(1200000000))
        print(hz.ordinal(22))
        print(hz.apnumber(4))
        print(hz.naturalsize(3000000, True))
        print(hz.scientific(500))
        print(hz.fractional(0.5))
        """, "number | str unions offered as int; positional forms"),
    Program("dateutil", {"python-dateutil": ">=2.9"}, """
        import python "python-dateutil" as du
        let d = du_parser_parse("2024-03-05T10:00:00")
        print(du_datetime_datetime_year(d))
        print(du_datetime_datetime_month(d))
        print(du_datetime_datetime_isoformat(d))
        print(du_datetime_datetime_isoformat_sep(d, " "))
        try {
          let bad = du_parser_parse("not a date at all")
          print("parsed")
        } catch e {
          print("caught")
        }
        """, """
        from dateutil import parser
        d = parser.parse("2024-03-05T10:00:00")
        print(d.year)
        print(d.month)
        print(d.isoformat())
        print(d.isoformat(" "))
        try:
            parser.parse("not a date at all")
            print("parsed")
        except ValueError:
            print("caught")
        """, "a datetime handle read through its own (typeshed) members; a ValueError caught in Mochi"),
    Program("httpx", {"httpx": ">=0.27,<0.29"}, """
        import python "httpx" as hx
        let u = hx_URL_new_url("https://example.org/a/b?c=1")
        print(hx_URL_host(u))
        print(hx_URL_path(u))
        print(hx_URL_scheme(u))
        let r = hx_Request_new("GET", "https://example.org/x")
        print(mb_field_string(r, "method"))
        print(hx_codes_get_reason_phrase(404))
        print(hx_codes_is_client_error(404))
        """, """
        import httpx as hx
        u = hx.URL("https://example.org/a/b?c=1")
        print(u.host)
        print(u.path)
        print(u.scheme)
        r = hx.Request("GET", "https://example.org/x")
        print(r.method)
        print(hx.codes.get_reason_phrase(404))
        print(str(hx.codes.is_client_error(404)).lower())
        """, "URL and Request handles built without network, fields read through their getters and mb_field_string"),
    Program("rich", {"rich": ">=13"}, """
        import python "rich" as rc
        let s = rc_style_Style_parse("bold red")
        let t = rc_style_Style_copy(s)
        print(mb_field_bool(t, "bold"))
        print(rc_markup_escape("[bold]"))
        let x = rc_text_Text_new_text("hi there")
        print(rc_text_Text_plain(x))
        print(rc_text_Text_cell_len(x))
        """, """
        from rich.style import Style
        from rich.markup import escape
        from rich.text import Text
        t = Style.parse("bold red").copy()
        print(str(t.bold).lower())
        print(escape("[bold]"))
        x = Text("hi there")
        print(x.plain)
        print(x.cell_len)
        """, "a Style handle round trip; Text built and read"),
    Program("attrs", {"attrs": ">=23"}, """
        import python "attrs" as at
        print(at_attr_converters_to_bool("yes"))
        print(at_attr_converters_to_bool("off"))
        """, """
        import attr
        print(str(attr.converters.to_bool("yes")).lower())
        print(str(attr.converters.to_bool("off")).lower())
        """, "a second import name of the distribution under the alias (attr.* as at_attr_*)"),
    Program("together", {"inflection": "^0.5", "humanize": ">=4.9,<5", "python-dateutil": ">=2.9"}, """
        import python "inflection" as inf
        import python "humanize" as hz
        import python "python-dateutil" as du
        let d = du_parser_parse("2021-07-04")
        let y = du_datetime_datetime_year(d)
        print(inf_ordinalize(y))
        print(hz_intcomma(y * 1000))
        print(inf_camelize(inf_underscore("DateTimeBridge")))
        """, """
        import inflection as inf, humanize as hz
        from dateutil import parser
        y = parser.parse("2021-07-04").year
        print(inf.ordinalize(y))
        print(hz.intcomma(y * 1000))
        print(inf.camelize(inf.underscore("DateTimeBridge")))
        """, "three packages in one program"),
    Program("bridge", {"tablefix": "1.0"}, """
        import python "tablefix" as tf
        extern python fun shout(s: string): string
        print(tf_add(1, 2))
        print(shout(tf_greet("mochi")))
        let s = tf_widen(tf_Span { start: 2, end: 5 }, 1)
        print(mb_field_int(s, "start"))
        let b = tf_bounds(mb_list_append_int(mb_list_append_int(mb_list_new(), 4), 9))
        print(mb_field_int(b, "item1"))
        print(mb_variant(tf_next_color(tf_Color_BLUE)))
        print(tf_apply(fun(x: int): int => x * 10, 4))
        print(tf_render(7))
        print(mb_len(tf_ticks(3)))
        let h = tf_anything(tf_of_string("kept"))
        print(tf_as_string(h))
        print(mb_is_none(tf_maybe_len_with(mb_none())))
        try {
          print(tf_fail_later("boom"))
        } catch e {
          print("caught")
        }
        """, """
        import tablefix as tf
        print(tf.add(1, 2))
        print(tf.greet("mochi").upper() + "!")
        print(tf.widen(tf.Span(2, 5), 1).start)
        print(tf.bounds([4, 9])[1])
        print("tf_Color_RED")
        print(tf.apply(lambda x: x * 10, 4))
        print(tf.render(7))
        print(3)
        print("kept")
        print("true")
        print("caught")
        """, "what the tests' emulation assumes: records and enums in, values out through the prelude, "
        "callbacks, a value round trip, a Python exception caught", fixtures=("tablefix",)),
]

SIDECARS = {"bridge": "def shout(s):\n    return s.upper() + '!'\n"}


def _target_python(runner: str) -> str:
    if os.environ.get("MOCHI_TARGET_PYTHON"):
        return os.environ["MOCHI_TARGET_PYTHON"]
    if os.environ.get("MOCHI_RUNNER_PYTHON"):
        return os.environ["MOCHI_RUNNER_PYTHON"]
    for cand in ("python3.12", "python3.13"):
        path = shutil.which(cand)
        if path and subprocess.run([path, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return path
    raise SystemExit("no CPython >= 3.12 found: set MOCHI_TARGET_PYTHON")


def _fixture_index(names: tuple[str, ...], work: Path) -> object | None:
    if not names:
        return None
    from helpers import build_wheel, fixture_index, package_files
    return fixture_index([build_wheel(work / "wheels", n, "1.0", package_files(n)) for n in names])


def run_program(p: Program, work: Path, runner: list[str], python: str) -> dict[str, object]:
    root = work / p.name
    root.mkdir(parents=True)
    idx = _fixture_index(p.fixtures, work)
    indexes = f'indexes = [{{ url = "{idx.url}" }}]\n' if idx is not None else ""  # type: ignore[attr-defined]
    deps = "".join(f'"{n}" = "{c}"\n' for n, c in p.deps.items())
    (root / "mochi.toml").write_text(f'[python-dependencies]\n{deps}\n[python]\nrequires-python = ">=3.12"\n'
                                     f'interpreter = "{python}"\n{indexes}')
    (root / "prog.mochi").write_text(textwrap.dedent(p.mochi).lstrip())
    if p.name in SIDECARS:
        (root / "prog_externs.py").write_text(SIDECARS[p.name])
    row: dict[str, object] = {"program": p.name, "packages": ", ".join(p.deps), "what": p.what}
    env = {**os.environ, "MOCHI_CACHE_DIR": str(work / "cache")}
    try:
        lock = subprocess.run([sys.executable, "-m", "tasks", "lock", str(root), "-q"], env=env, capture_output=True,
                              text=True, check=False, timeout=1200)
        if lock.returncode != 0:
            return {**row, "built": "no", "detail": ("lock: " + (lock.stdout + lock.stderr).strip()[-300:])}
        build = subprocess.run([sys.executable, "-m", "tasks", "build", str(root / "prog.mochi")], env=env,
                               capture_output=True, text=True, check=False, timeout=300)
        if build.returncode != 0:
            return {**row, "built": "no", "detail": "mochi-py build: " + build.stderr.strip()[-300:]}
        tree = root / "build" / "prog"
        ran = subprocess.run([*runner, str(tree / "prog.mochi"), "--sidecar-dir", str(tree)], capture_output=True,
                             text=True, check=False, timeout=300)
        if ran.returncode == 3:
            return {**row, "built": "no", "detail": "mochi build --target=python: " + ran.stderr.strip()[-300:]}
        site = root / "python_wrap" / "site-packages"
        direct = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n"
                                 + textwrap.dedent(p.python)], capture_output=True, text=True, check=False)
        equal = ran.returncode == 0 and direct.returncode == 0 and ran.stdout == direct.stdout
        detail = "" if equal else (f"mochi: {ran.stdout.strip()!r} {ran.stderr.strip()[-200:]!r}; "
                                   f"python: {direct.stdout.strip()!r} {direct.stderr.strip()[-200:]!r}")
        return {**row, "built": "yes", "ran": "yes" if ran.returncode == 0 else f"exit {ran.returncode}",
                "equal": "yes" if equal else "no", "lines": len(ran.stdout.splitlines()),
                "declarations": build.stdout.count("\n") and (tree / "prog.mochi").read_text().count("extern python"),
                "detail": detail}
    finally:
        if idx is not None:
            idx.stop()  # type: ignore[attr-defined]


def render(rows: list[dict[str, object]], date: str, runner: str) -> str:
    ok = sum(r.get("equal") == "yes" for r in rows)
    lines = [f"# Programs on the real Mochi Python target ({date})", "",
             f"{ok} of {len(rows)} programs built with `mochi-py build`, compiled and run by the real Mochi "
             "Python-target compiler, and printed exactly what the same calls print in Python.", "",
             f"Runner: `{runner}` (the Mochi parser, type checker and Python-target compiler built from their public "
             "sources; not part of this repository). Regenerate with "
             "`MOCHI_RUNNER=... .venv/bin/python bench/mochi_target.py`.", "",
             "| program | packages | what it shows | built | ran | output equal | externs declared |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['program']} | {r['packages']} | {r['what']} | {r.get('built', '')} | {r.get('ran', '')} "
                     f"| {r.get('equal', '')} | {r.get('declarations', '')} |")
    failed = [r for r in rows if r.get("detail")]
    if failed:
        lines += ["", "Failures:", ""] + [f"- {r['program']}: {r['detail']}" for r in failed]
    lines += ["", "The programs, and the Python they are compared with, are in `bench/mochi_target.py`."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these programs")
    parser.add_argument("--keep", type=Path, help="keep the projects in this directory")
    args = parser.parse_args()
    runner_text = os.environ.get("MOCHI_RUNNER")
    if not runner_text:
        print("MOCHI_RUNNER is not set: point it at a command `RUNNER PROGRAM.mochi --sidecar-dir DIR` that compiles "
              "with the Mochi Python target and runs the result (the toolchain is not part of this repository)",
              file=sys.stderr)
        return 2
    runner = shlex.split(runner_text)
    python = _target_python(runner_text)
    chosen = [p for p in PROGRAMS if not args.only or p.name in args.only]
    work = args.keep or Path(tempfile.mkdtemp(prefix="mochi-target-"))
    try:
        rows = []
        for p in chosen:
            row = run_program(p, work, runner, python)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if not args.only:
        date = datetime.date.today().isoformat()
        (REPO / "bench" / "mochi-target.md").write_text(render(rows, date, Path(runner[0]).name))
        (REPO / "bench" / "results").mkdir(exist_ok=True)
        (REPO / "bench" / "results" / "mochi_target.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r.get("equal") == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
