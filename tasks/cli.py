"""`mochi-py`: the console script. It embeds doit, so a project needs no dodo.py.

Exit codes (DESIGN §9): 0 ok, 1 a check found drift, 2 bad usage or input (a failed lock included).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import BridgeError

if TYPE_CHECKING:
    from .context import Context

__all__ = ["entrypoint", "main"]


def _project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", default=".", type=Path,
                        help="the project directory holding mochi.toml (default: the current directory)")


def _trust_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh-trust-root", action="store_true",
                        help="first update sigstore's trust root from its TUF repository (online); PEP 740 "
                        "attestations are always verified offline, against the trust root on this machine")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Typed bindings from PyPI packages for Mochi programs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lock = sub.add_parser("lock", help="resolve, fetch, stub, wrap and compile the Python dependencies; write "
                          "mochi.lock and pylock.toml",
                          description="Run the lock task graph of a Mochi project. Tasks whose inputs did not "
                          "change are skipped; a second run with nothing changed does nothing. Pins already in "
                          "mochi.lock are kept unless their mochi.toml entry changed.")
    _project_arg(lock)
    lock.add_argument("-n", "--jobs", type=int, default=os.cpu_count() or 1,
                      help="tasks to run at once, in worker processes (default: every core)")
    lock.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    lock.add_argument("--check", action="store_true", help="do not lock: verify the existing lock (as `check`)")
    _trust_arg(lock)
    update = sub.add_parser("update", help="re-resolve (all, or the named packages) and relock; refuses a "
                            "capability elevation unless allowed",
                            description="Release the sticky pins of the named packages (all when none is named), "
                            "resolve again, print the version and capability changes against mochi.lock, and relock. "
                            "A package gaining a capability is refused unless --allow-capability-elevation is given "
                            "(on a terminal, you are asked instead).")
    update.add_argument("packages", nargs="*", help="distributions to update (default: all)")
    update.add_argument("--project", type=Path, default=Path(), help="the project directory (default: .)")
    update.add_argument("--allow-capability-elevation", action="store_true",
                        help="accept packages that gain capabilities")
    _trust_arg(update)
    check = sub.add_parser("check", help="verify that mochi.lock still matches reality; exit 1 on drift",
                           description="Recompute every hash, the stub provenance and the wrapper hash of every "
                           "locked package, re-verify its PEP 740 provenance, and compare them with mochi.lock. "
                           "Writes nothing. Exit 0 when the lock holds, 1 with a per-package, per-field list when "
                           "it drifted.")
    _project_arg(check)
    _trust_arg(check)
    export = sub.add_parser("export-pylock", help="write a PEP 751 pylock.toml from mochi.lock",
                            description="Render pylock.toml from mochi.lock alone (no resolution, no network).")
    _project_arg(export)
    export.add_argument("-o", "--output", type=Path, help="where to write (default: PROJECT/pylock.toml; "
                        "the name must be pylock.toml or pylock.<name>.toml)")
    graph = sub.add_parser("graph", help="write the project's task graph as DOT (and SVG when Graphviz is present)",
                           description="Write the task graph of the project (the per-dependency chains once a "
                           "lock has pinned them) as Graphviz DOT, and as SVG when the `dot` command exists.")
    _project_arg(graph)
    graph.add_argument("-o", "--output", type=Path, help="the DOT file (default: PROJECT/.mochi/graph.dot)")
    report = sub.add_parser("report", help="translated and skipped counts by reason per package, and an HTML report",
                            description="Summarise the last lock's type surfaces: translated items and skipped "
                            "items by reason, per package. Writes a one-page HTML report with a filterable table.")
    _project_arg(report)
    report.add_argument("--html", type=Path, help="where to write the HTML report "
                        "(default: PROJECT/.mochi/report.html)")
    build = sub.add_parser("build", help="write a build tree for the Mochi Python target from a program",
                           description="Write PROGRAM with each `import python` line replaced by that package's "
                           "declarations (renamed to the import's alias), and a <module>_externs.py sidecar that "
                           "holds your own sidecar plus the locked wrappers' externs, into OUTPUT (default: "
                           "PROJECT/build/<module>/). Then run `mochi build --target=python` on that tree. "
                           "Run `mochi-py lock` first.")
    build.add_argument("program", type=Path, help="the .mochi program")
    build.add_argument("-o", "--output", type=Path, help="the build tree's directory")
    add = sub.add_parser("add", help="add or change a [python-dependencies] entry in mochi.toml",
                         description="Write NAME[@CONSTRAINT] into mochi.toml's [python-dependencies], keeping the "
                         "file's formatting and comments. Run `mochi-py lock` afterwards.")
    add.add_argument("requirement", help='the distribution, optionally with a constraint: "httpx@^0.27"')
    add.add_argument("--project", type=Path, default=Path(), help="the project directory (default: .)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "mochi-py") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        if getattr(args, "refresh_trust_root", False):
            from .fetch.attest import refresh_trust_root
            refresh_trust_root()
            print("sigstore trust root refreshed")
        if args.command == "lock" and not args.check:
            return _lock(args.project, args.jobs, args.quiet)
        if args.command == "update":
            return _update(args.project, args.packages, args.allow_capability_elevation)
        if args.command in ("lock", "check"):
            return _check(args.project)
        if args.command == "export-pylock":
            return _export(args.project, args.output)
        if args.command == "graph":
            return _graph(args.project, args.output)
        if args.command == "report":
            return _report(args.project, args.html)
        if args.command == "build":
            from .codegen.program import build_program, mochi_module_name
            out = build_program(args.program, args.output)
            module = mochi_module_name(args.program)
            print(f"wrote {out / (module + '.mochi')} and {out / (module + '_externs.py')}")
            print(f"next: mochi build --target=python {out / (module + '.mochi')}")
            return 0
        if args.command == "add":
            from .resolve.edit import add_dependency
            line = add_dependency(args.project / "mochi.toml", args.requirement)
            print(f"mochi.toml: {line}")
            return 0
    except BridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 2


def _watchdog(seconds: float) -> None:
    """End the process if the run outlives *seconds*: a stuck worker must not hang a lock (doit#461)."""
    def expire() -> None:
        sys.stderr.write(f"error: the lock did not finish within {seconds:.0f} s; it was stopped\n"
                         "  hint: rerun it (finished stages are kept); set MOCHI_LOCK_TIMEOUT to allow longer\n")
        sys.stderr.flush()
        os._exit(2)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def _lock(project: Path, jobs: int, quiet: bool, release: tuple[str, ...] = (), elevation: str = "ignore") -> int:
    from .detect import detect_context
    from .noop import read_unchanged

    started = time.monotonic()
    ran_after = time.time()
    _watchdog(float(os.environ.get("MOCHI_LOCK_TIMEOUT", "3600")))
    ctx = detect_context(project, release=release, elevation=elevation)
    if release == () and elevation == "ignore":
        unchanged = read_unchanged(ctx)
        if unchanged is not None:
            if not quiet:
                print("".join(f"-- {name}\n" for name in unchanged) if not sys.stdout.isatty() else
                      f"nothing changed: {len(unchanged)} task(s) up to date")
            return 0
    return _run_graph(ctx, jobs, quiet, started, ran_after)


def _run_graph(ctx: Context, jobs: int, quiet: bool, started: float, ran_after: float) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from .graph import doit_config, make_tasks
    from .lock.summary import summary
    from .noop import write_stamp
    from .reporter import ProgressReporter

    config = {**doit_config(Path(ctx.root)), "reporter": "error-only" if quiet else ProgressReporter}
    loader = ModuleTaskLoader({**make_tasks(ctx), "DOIT_CONFIG": config})
    argv = ["run"]  # doit reads options only before the task names
    if jobs > 1:
        argv += ["-n", str(jobs), "-P", "process"]
        from . import actions  # noqa: F401 - imported once here, so forked workers inherit it instead of each importing it
    argv.append("lock")
    rc = int(DoitMain(loader, config_filenames=()).run(argv))
    if rc == 0:
        if not quiet:
            print(summary(Path(ctx.root), started, ran_after))
        write_stamp(ctx, make_tasks(ctx))
    # doit says 1 (task failed) or 3 (error); for `lock` both mean the input could not be locked.
    return 0 if rc == 0 else 2


def _graph(project: Path, output: Path | None) -> int:
    from .detect import detect_context
    from .dot import write_graph
    from .graph import make_tasks

    ctx = detect_context(project)
    for path in write_graph(make_tasks(ctx), output or Path(ctx.root) / ".mochi" / "graph.dot"):
        print(f"wrote {path}")
    return 0


def _update(project: Path, packages: list[str], allow: bool) -> int:
    from packaging.utils import canonicalize_name

    release = tuple(sorted(canonicalize_name(p) for p in packages)) or ("*",)
    marker = project / ".mochi" / "elevation.json"
    marker.unlink(missing_ok=True)
    rc = _lock(project, 1, False, release, "allow" if allow else "refuse")
    if rc != 0 and marker.is_file() and sys.stdin.isatty():
        answer = input("Some packages gain capabilities (see above). Accept them? [y/N] ").strip().lower()
        if answer in ("y", "yes"):
            rc = _lock(project, 1, False, release, "allow")
    return rc


def _check(project: Path) -> int:
    from .detect import detect_context
    from .lock.check import check_project, format_drifts

    drifts, checked = check_project(detect_context(project, write_state=False))
    if drifts:
        print(f"mochi.lock drifted ({len(drifts)} finding(s)):\n{format_drifts(drifts)}")
        print("hint: run `mochi-py lock` to bring the lock up to date, or restore what changed")
        return 1
    print(f"mochi.lock holds: {checked} package(s) checked")
    return 0


def _export(project: Path, output: Path | None) -> int:
    from packaging.pylock import is_valid_pylock_path

    from .cache import atomic_write
    from .lock.lockfile import read_lock, render_pylock
    from .resolve.manifest import load_manifest

    dest = output or project / "pylock.toml"
    if not is_valid_pylock_path(dest):
        raise BridgeError(f"{dest}: a PEP 751 lock must be named pylock.toml or pylock.<name>.toml",
                          "choose such a name with -o")
    if not (project / "mochi.lock").is_file():
        raise BridgeError(f"{project / 'mochi.lock'} does not exist", "run `mochi-py lock` first")
    entries = read_lock(project / "mochi.lock")
    requires = load_manifest(project / "mochi.toml").python.requires_python
    atomic_write(dest, render_pylock(entries, requires).encode())
    print(f"wrote {dest} ({len(entries)} packages)")
    return 0


def _report(project: Path, dest: Path | None) -> int:
    from .cache import atomic_write
    from .lock.attestations import attestation_lines
    from .lock.lockfile import read_lock
    from .lock.report import load_surfaces, render_html, render_text

    surfaces = load_surfaces(project)
    print(render_text(surfaces))
    publishers = attestation_lines(read_lock(project / "mochi.lock"))
    print("publishers (PEP 740 attestations):\n" + "\n".join(f"  {line}" for line in publishers))
    out = dest or project / ".mochi" / "report.html"
    atomic_write(out, render_html(surfaces, publishers).encode())
    print(f"wrote {out}")
    return 0


def entrypoint() -> None:
    sys.exit(main())
