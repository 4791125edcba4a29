"""The `mochi-py` commands: one `opts_<name>` (its options) and one `cmd_<name>` (what it does) per command.

`tasks.cli` builds the parser from them. Every command finds its project with :func:`project_root` (from
`--project` or the positional alias, else the current directory, upward to the nearest `mochi.toml`) and
prints through :func:`tasks.console.say`, so `-q` and `-v` mean the same everywhere.

Over 500 lines on purpose: a pair of small functions per command (fourteen commands), kept in one file so
the command line reads as one list; the work itself is in the stages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .console import QUIET, VERBOSE, say, warn
from .errors import BridgeError

if TYPE_CHECKING:
    from .context import Context
    from .lock.lockfile import LockEntry
    from .resolve.manifest import Manifest
    from .resolve.sources import PythonImport

EXIT_OK, EXIT_DRIFT, EXIT_INPUT, EXIT_UNVERIFIED = 0, 1, 2, 3
"""0 ok; 1 drift; 2 bad usage or input (a lock that cannot be made included); 3 check could not verify."""


def _dir_alias(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project_dir", nargs="?", type=Path, metavar="PROJECT_DIR",
                        help="the same as --project PROJECT_DIR")


def _offline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", action="store_true",
                        help="no network at all: everything from the caches (also MOCHI_OFFLINE=1)")


def _trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh-trust-root", action="store_true",
                        help="first update sigstore's trust root from its TUF repository (online); PEP 740 "
                        "attestations are always verified offline, against the trust root on this machine")


def refresh_trust(args: argparse.Namespace) -> None:
    """--refresh-trust-root, before the command runs."""
    if getattr(args, "refresh_trust_root", False):
        from .fetch.attest import refresh_trust_root
        refresh_trust_root()
        say(_verbosity(args), "sigstore trust root refreshed")


def _verbosity(args: argparse.Namespace) -> int:
    return QUIET if args.quiet else VERBOSE if args.verbose else 0


def _start(args: argparse.Namespace) -> Path:
    alias = getattr(args, "project_dir", None)
    if alias is not None and args.project is not None and alias.resolve() != args.project.resolve():
        raise BridgeError(f"two projects given: {alias} and --project {args.project}", "give one of them")
    return alias or args.project or Path.cwd()


def project_root(args: argparse.Namespace) -> Path:
    from .resolve.project import find_project
    return find_project(_start(args))


def _go_offline(args: argparse.Namespace) -> None:
    if getattr(args, "offline", False):
        os.environ["MOCHI_OFFLINE"] = "1"  # read by detect_context and by every URL the fetch stage opens


# --- lock, sync, update ---------------------------------------------------------------------------------------

def opts_lock(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    _jobs(p)
    p.add_argument("--check", action="store_true", help="do not lock: verify the existing lock (as `check`)")
    p.add_argument("--frozen", action="store_true",
                   help="resolve nothing: build what mochi.lock says, fetching its files by hash; exit 1 if "
                   "mochi.toml and mochi.lock disagree (for CI)")
    _offline(p)
    _trust(p)


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="tasks to run at once, in worker processes (default: every core)")


def cmd_lock(args: argparse.Namespace) -> int:
    if args.check:
        return cmd_check(args)
    _go_offline(args)
    return _lock(project_root(args), args.jobs, _verbosity(args), frozen=args.frozen)


def opts_sync(p: argparse.ArgumentParser) -> None:
    _jobs(p)
    _offline(p)
    _trust(p)


def cmd_sync(args: argparse.Namespace) -> int:
    _go_offline(args)
    return _lock(project_root(args), args.jobs, _verbosity(args), frozen=True)


def _watchdog(seconds: float) -> threading.Timer:
    """End the process if the run outlives *seconds*: a stuck worker must not hang a lock (doit#461). Every
    process the lock started ends with it (:mod:`tasks.reaper`)."""
    from .reaper import stop

    def expire() -> None:
        stop(f"error: the lock did not finish within {seconds:.0f} s; it was stopped, and every process it started "
             "with it\n  hint: rerun it (finished stages are kept); set MOCHI_LOCK_TIMEOUT to allow longer", EXIT_INPUT)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _frozen_precheck(root: Path) -> int | None:
    """--frozen: mochi.lock must exist and agree with mochi.toml before anything runs."""
    from .lock.frozen import manifest_disagreements
    from .lock.lockfile import read_lock
    from .resolve.manifest import load_manifest
    if not (root / "mochi.lock").is_file():
        raise BridgeError(f"{root / 'mochi.lock'} does not exist: --frozen builds what a lock says",
                          "run `mochi-py lock` once and commit mochi.lock")
    disagree = manifest_disagreements(load_manifest(root / "mochi.toml"), read_lock(root / "mochi.lock"))
    if not disagree:
        return None
    print("error: mochi.toml and mochi.lock disagree (--frozen resolves nothing):\n"
          + "\n".join(f"  {d}" for d in disagree)
          + "\n  hint: run `mochi-py lock` (without --frozen) and commit the new mochi.lock", file=sys.stderr)
    return EXIT_DRIFT


def _lock(root: Path, jobs: int, verbosity: int, release: tuple[str, ...] = (), elevation: str = "ignore",
          frozen: bool = False) -> int:
    # What this lock creates in a project that had none of it, a failed lock takes away again (no debris);
    # `update` keeps .mochi/, where it leaves the elevation it refused for the question that follows.
    fresh = [] if elevation == "refuse" else [p for p in (root / ".mochi", root / "python_wrap") if not p.exists()]
    rc = EXIT_INPUT
    try:
        rc = _lock_once(root, jobs, verbosity, release, elevation, frozen)
    finally:
        if rc != EXIT_OK:
            for path in fresh:
                shutil.rmtree(path, ignore_errors=True)
    return rc


def _lock_once(root: Path, jobs: int, verbosity: int, release: tuple[str, ...], elevation: str,
               frozen: bool) -> int:
    from .reaper import guarded

    # Ctrl-C, SIGTERM, the watchdog, a dead worker and the end of the run end every process the lock started
    with guarded():
        watchdog = _watchdog(float(os.environ.get("MOCHI_LOCK_TIMEOUT", "3600")))
        try:
            return _lock_guarded(root, jobs, verbosity, release, elevation, frozen)
        finally:
            watchdog.cancel()


def _lock_guarded(root: Path, jobs: int, verbosity: int, release: tuple[str, ...], elevation: str,
                  frozen: bool) -> int:
    from .detect import detect_context
    from .noop import read_unchanged

    started = time.monotonic()
    ran_after = time.time()
    if frozen and (rc := _frozen_precheck(root)) is not None:
        return rc
    ctx = detect_context(root, release=release, elevation=elevation, frozen=frozen, verbosity=verbosity)
    if release == () and elevation == "ignore":
        unchanged = read_unchanged(ctx)
        if unchanged is not None:
            if verbosity > QUIET:
                from .lock.summary import summary
                if not sys.stdout.isatty() or verbosity >= VERBOSE:
                    print("".join(f"-- {name}\n" for name in unchanged), end="")
                print(summary(root, started, ran_after, noop=True))
            return EXIT_OK
    return _run_graph(ctx, jobs, started, ran_after)


def _run_graph(ctx: Context, jobs: int, started: float, ran_after: float) -> int:
    from doit.cmd_base import ModuleTaskLoader

    from .actions import FROZEN_DRIFT
    from .doit_main import BridgeDoitMain
    from .graph import doit_config, make_tasks
    from .lock.summary import summary
    from .noop import write_stamp
    from .reporter import ProgressReporter, QuietReporter, VerboseReporter

    reporter = {QUIET: QuietReporter, VERBOSE: VerboseReporter}.get(ctx.verbosity, ProgressReporter)
    config = {**doit_config(Path(ctx.root)), "reporter": reporter}
    loader = ModuleTaskLoader({**make_tasks(ctx), "DOIT_CONFIG": config})
    argv = ["run"]  # doit reads options only before the task names
    if jobs > 1:
        argv += ["-n", str(jobs), "-P", "process"]
        from . import actions  # noqa: F401 - imported once here, so forked workers inherit it instead of each importing it
    argv.append("lock")
    from .reaper import stop, watch_workers
    unwatch = watch_workers(lambda code: stop(
        f"error: a worker process of the lock died ({_death(code)}); the lock was stopped, and every process it "
        "started with it\n  hint: rerun it (finished stages are kept)", EXIT_INPUT))
    try:
        rc = int(BridgeDoitMain(loader, config_filenames=()).run(argv))
    finally:
        unwatch()
    if rc == 0:
        say(ctx.verbosity, summary(Path(ctx.root), started, ran_after))
        write_stamp(ctx, make_tasks(ctx))
        return EXIT_OK
    if ctx.frozen and (Path(ctx.root) / FROZEN_DRIFT).is_file():
        return EXIT_DRIFT
    # doit says 1 (task failed) or 3 (error); for `lock` both mean the input could not be locked.
    return EXIT_INPUT


def _death(exitcode: int) -> str:
    if exitcode < 0:
        import signal
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def opts_update(p: argparse.ArgumentParser) -> None:
    p.add_argument("packages", nargs="*", help="distributions to update (default: all)")
    p.add_argument("--allow-capability-elevation", action="store_true", help="accept packages that gain capabilities")
    _offline(p)
    _trust(p)


def cmd_update(args: argparse.Namespace) -> int:
    from packaging.utils import canonicalize_name

    from .lock.lockfile import read_lock
    _go_offline(args)
    root = project_root(args)
    before = (root / "mochi.lock").read_bytes() if (root / "mochi.lock").is_file() else b""
    known = sorted({e.name for e in read_lock(root / "mochi.lock")} | {d.name for d in _manifest(root).dependencies})
    for raw in args.packages:
        if canonicalize_name(raw) not in known:
            raise BridgeError(f"{raw!r} is neither locked nor in mochi.toml, so there is nothing to update",
                              _did_you_mean(raw, known, "the project's packages are: " + (", ".join(known) or "none")))
    release = tuple(sorted(canonicalize_name(p) for p in args.packages)) or ("*",)
    verbosity = _verbosity(args)
    marker = root / ".mochi" / "elevation.json"
    marker.unlink(missing_ok=True)
    rc = _lock(root, 1, verbosity, release, "allow" if args.allow_capability_elevation else "refuse")
    if rc != 0 and marker.is_file() and sys.stdin.isatty():
        answer = input("Some packages gain capabilities (see above). Accept them? [y/N] ").strip().lower()
        if answer in ("y", "yes"):
            rc = _lock(root, 1, verbosity, release, "allow")
    if rc == 0 and (root / "mochi.lock").read_bytes() == before:
        say(verbosity, "nothing to update: every package is already at the newest version mochi.toml allows")
    return rc


def _did_you_mean(name: str, candidates: list[str], otherwise: str) -> str:
    import difflib

    from packaging.utils import canonicalize_name
    close = difflib.get_close_matches(canonicalize_name(name), candidates, n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise


def _manifest(root: Path) -> Manifest:
    from .resolve.manifest import load_manifest
    return load_manifest(root / "mochi.toml")


# --- check ----------------------------------------------------------------------------------------------------

def opts_check(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    _offline(p)
    _trust(p)


def cmd_check(args: argparse.Namespace) -> int:
    from .detect import detect_context
    from .lock.check import check_project, format_drifts

    _go_offline(args)
    verbosity = _verbosity(args)
    drifts, checked = check_project(detect_context(project_root(args), write_state=False, verbosity=verbosity))
    real = [d for d in drifts if not d.unverified]
    unverified = [d for d in drifts if d.unverified]
    if verbosity >= VERBOSE:
        from .lock.lockfile import read_lock
        flagged = {d.package for d in drifts}
        for e in read_lock(project_root(args) / "mochi.lock"):
            if e.name not in flagged:
                say(verbosity, f"{e.name} {e.version}: every field matches", VERBOSE)
    if real:
        print(f"mochi.lock drifted ({len(real)} finding(s)):\n{format_drifts(real)}")
    if unverified:
        print(f"could not verify ({len(unverified)} field(s); offline, or the index did not answer):\n"
              f"{format_drifts(unverified)}")
    if real:
        print("hint: run `mochi-py lock` to bring the lock up to date, or restore what changed")
        return EXIT_DRIFT
    if unverified:
        say(verbosity, f"no drift in what could be checked ({checked} package(s)); rerun with the network to verify "
            "the rest")
        return EXIT_UNVERIFIED
    say(verbosity, f"mochi.lock holds: {checked} package(s) checked")
    return EXIT_OK


# --- init, add, remove ----------------------------------------------------------------------------------------

def opts_init(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", nargs="?", type=Path, help="where to start the project (default: --project, else "
                   "the current directory); created when missing")
    p.add_argument("--name", help="the project's name (default: the directory's)")


def cmd_init(args: argparse.Namespace) -> int:
    from .errors import InterpreterNotFound
    from .resolve.interpreter import detect_interpreter
    from .resolve.project import init_project
    target = args.directory or args.project or Path.cwd()
    try:
        found = detect_interpreter(">=3.11", None).version
        requires = ">=3.12" if found[:2] >= (3, 12) else ">=3.11"
    except InterpreterNotFound:
        requires = ">=3.12"
    written = init_project(target, args.name, requires)
    verbosity = _verbosity(args)
    for path in written:
        say(verbosity, f"wrote {path}")
    say(verbosity, "next: mochi-py add NAME (a package from the index), then mochi-py lock")
    return EXIT_OK


def opts_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("requirements", nargs="+", metavar="NAME[@CONSTRAINT]",
                   help='distributions to add or change: "tabulate", "httpx@^0.27", "extrafix[fast]@^1"')
    _offline(p)


def cmd_add(args: argparse.Namespace) -> int:
    from .resolve.edit import add_dependencies
    _go_offline(args)
    root = project_root(args)
    verbosity = _verbosity(args)
    lines = add_dependencies(root / "mochi.toml", args.requirements, lambda m: _resolve_for_add(root, m, verbosity))
    for line in lines:
        say(verbosity, f"mochi.toml: {line}")
    say(verbosity, "next: mochi-py lock")
    return EXIT_OK


def _resolve_for_add(root: Path, manifest: Manifest, verbosity: int) -> dict[str, str]:
    """Resolve the would-be manifest the way `lock` will (sticky pins kept); {name: version}, else raise."""
    import tempfile

    from .actions import unknown_names_hint
    from .detect import detect_context
    from .errors import ResolveError
    from .lock.lockfile import read_lock, sticky_pins
    from .resolve.resolver import resolve
    ctx = detect_context(root, write_state=False, verbosity=verbosity)
    requested = {d.name: d.fingerprint for d in manifest.dependencies}
    with tempfile.TemporaryDirectory(prefix="mochi-add-") as tmp:
        try:
            pins, used = resolve(manifest, ctx.interpreter, ctx.python_version, ctx.marker_env, ctx.default_index,
                                 Path(ctx.cache), Path(tmp), sticky_pins(read_lock(root / "mochi.lock"), requested),
                                 offline=ctx.offline,
                                 on_fallback=lambda e: warn(verbosity, f"uv could not resolve; trying pip's resolver. "
                                                            f"uv said:\n{e}"))
        except ResolveError as exc:
            failed = unknown_names_hint(exc, ctx, manifest, adding=True)
            if failed is exc:
                raise ResolveError(exc.message, f"{exc.hint} (mochi.toml was not changed)") from None
            raise failed from None
    say(verbosity, f"resolved {len(pins)} package(s) with {used}: "
        + ", ".join(f"{p.name} {p.version}" for p in pins), VERBOSE)
    return {p.name: p.version for p in pins}


def opts_remove(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME", help="distributions to remove from [python-dependencies]")


def cmd_remove(args: argparse.Namespace) -> int:
    from packaging.utils import canonicalize_name

    from .resolve.edit import remove_dependencies
    from .resolve.sources import scan_project
    root = project_root(args)
    verbosity = _verbosity(args)
    removed = remove_dependencies(root / "mochi.toml", args.names)
    gone = {canonicalize_name(k) for k in removed}
    for key in removed:
        say(verbosity, f"mochi.toml: removed {key}")
    try:
        still = [imp for imp in scan_project(root) if imp.name in gone]
    except BridgeError:
        still = []
    for imp in still:
        warn(verbosity, f"{imp.where}: still imports {imp.name}; the next lock fails until that line goes")
    say(verbosity, "next: mochi-py lock")
    return EXIT_OK


# --- tree, graph, report, export-pylock, build, clean ---------------------------------------------------------

def opts_tree(p: argparse.ArgumentParser) -> None:
    p.add_argument("packages", nargs="*", metavar="PKG", help="show only these packages' trees")
    p.add_argument("-i", "--invert", action="store_true",
                   help="show what requires each package (from the packages nothing else requires, or from PKG)")


def _locked(root: Path) -> tuple[list[LockEntry], list[PythonImport]]:
    from .lock.lockfile import read_lock
    from .resolve.sources import scan_project
    if not (root / "mochi.lock").is_file():
        raise BridgeError(f"{root / 'mochi.lock'} does not exist", "run `mochi-py lock` first")
    return read_lock(root / "mochi.lock"), scan_project(root)


def cmd_tree(args: argparse.Namespace) -> int:
    from .lock.tree import render_tree
    root = project_root(args)
    entries, imports = _locked(root)
    print(render_tree(entries, imports, root, args.packages, args.invert))
    return EXIT_OK


def opts_graph(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    p.add_argument("-o", "--output", type=Path, help="the DOT file, or - for stdout (default: PROJECT/.mochi/"
                   "packages.dot, or tasks.dot with --tasks)")
    p.add_argument("--tasks", action="store_true", help="the doit task graph instead of the package graph")


def cmd_graph(args: argparse.Namespace) -> int:
    from .cache import atomic_write
    root = project_root(args)
    if args.tasks:
        from .detect import detect_context
        from .dot import render_dot
        from .graph import make_tasks, task_dicts
        text = render_dot(task_dicts(make_tasks(detect_context(root))))
    else:
        from .lock.tree import render_package_dot
        text = render_package_dot(*_locked(root), root)
    if args.output is not None and str(args.output) == "-":
        print(text, end="")
        return EXIT_OK
    dest = args.output or root / ".mochi" / ("tasks.dot" if args.tasks else "packages.dot")
    atomic_write(dest, text.encode())
    verbosity = _verbosity(args)
    say(verbosity, f"wrote {dest}")
    dot = shutil.which("dot")
    if dot is None:
        say(verbosity, "Graphviz's `dot` is not installed, so no SVG: install graphviz, or open the DOT file in a "
            "viewer")
        return EXIT_OK
    from .run import run
    svg = dest.with_suffix(".svg")
    run([dot, "-Tsvg", str(dest), "-o", str(svg)], hint="Graphviz could not render the graph")
    say(verbosity, f"wrote {svg}")
    return EXIT_OK


def opts_report(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    p.add_argument("--html", type=Path, help="where to write the HTML report (default: PROJECT/.mochi/report.html)")


def cmd_report(args: argparse.Namespace) -> int:
    from .cache import atomic_write
    from .lock.attestations import attestation_lines
    from .lock.lockfile import read_lock
    from .lock.report import load_surfaces, render_html, render_text

    root = project_root(args)
    surfaces = load_surfaces(root)
    print(render_text(surfaces))
    publishers = attestation_lines(read_lock(root / "mochi.lock"))
    print("publishers (PEP 740 attestations):\n" + "\n".join(f"  {line}" for line in publishers))
    out = args.html or root / ".mochi" / "report.html"
    atomic_write(out, render_html(surfaces, publishers).encode())
    say(_verbosity(args), f"wrote {out}")
    return EXIT_OK


def opts_export(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    p.add_argument("-o", "--output", type=Path, help="where to write (default: PROJECT/pylock.toml; "
                   "the name must be pylock.toml or pylock.<name>.toml)")


def cmd_export(args: argparse.Namespace) -> int:
    from packaging.pylock import is_valid_pylock_path

    from .cache import atomic_write
    from .lock.lockfile import read_lock, render_pylock

    root = project_root(args)
    dest = args.output or root / "pylock.toml"
    if not is_valid_pylock_path(dest):
        raise BridgeError(f"{dest}: a PEP 751 lock must be named pylock.toml or pylock.<name>.toml",
                          "choose such a name with -o")
    if not (root / "mochi.lock").is_file():
        raise BridgeError(f"{root / 'mochi.lock'} does not exist", "run `mochi-py lock` first")
    entries = read_lock(root / "mochi.lock")
    atomic_write(dest, render_pylock(entries, _manifest(root).python.requires_python).encode())
    say(_verbosity(args), f"wrote {dest} ({len(entries)} packages)")
    return EXIT_OK


def opts_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", type=Path, help="the .mochi program")
    p.add_argument("-o", "--output", type=Path, help="the build tree's directory")


def cmd_build(args: argparse.Namespace) -> int:
    from .codegen.program import build_program, mochi_module_name
    from .resolve.sources import find_mochi_files
    program: Path = args.program
    if not program.is_file():
        try:
            found = [str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)
                     for p in find_mochi_files(project_root(args))]
        except BridgeError:
            found = []
        raise BridgeError(f"{program}: no such file", f"the project's programs are: {', '.join(found)}" if found
                          else "pass the path of a .mochi program")
    if program.suffix != ".mochi":
        raise BridgeError(f"{program}: not a .mochi file", "pass the program to build: mochi-py build app.mochi")
    out, findings = build_program(program, args.output)
    module = mochi_module_name(program)
    verbosity = _verbosity(args)
    for finding in findings:  # the target view's notes (substitutions) and warnings (calls nothing declares)
        if finding.level == "warning" or verbosity != QUIET:
            print(finding, file=sys.stderr)
    say(verbosity, f"wrote {out / (module + '.mochi')} and {out / (module + '_externs.py')}")
    say(verbosity, f"next: mochi build --target=python {out / (module + '.mochi')}")
    return EXIT_OK


def opts_publish(p: argparse.ArgumentParser) -> None:
    _dir_alias(p)
    p.add_argument("--dry-run", action="store_true", help="build and run every gate; upload nothing")
    p.add_argument("--repository", metavar="URL", help="the index's upload URL (default: "
                   "[python.publish].repository, else the default index's); https, or http on 127.0.0.1")
    p.add_argument("--from", dest="from_dir", type=Path, metavar="DIR", help="a tree `mochi build "
                   "--target=python` already wrote (holding src/), instead of running the compile command")


def cmd_publish(args: argparse.Namespace) -> int:
    from doit.cmd_base import ModuleTaskLoader

    from .detect import detect_context
    from .doit_main import BridgeDoitMain
    from .graph import doit_config, make_tasks
    from .publish.plan import PublishOptions, make_plan
    from .publish_graph import FAILED_GATES, publish_tasks
    from .reporter import ProgressReporter, QuietReporter, VerboseReporter

    root = project_root(args)
    verbosity = _verbosity(args)
    options = PublishOptions(dry_run=args.dry_run, repository=args.repository,
                             from_dir=str(args.from_dir.resolve()) if args.from_dir else None)
    plan = make_plan(detect_context(root), options)  # a release that cannot be made fails here, exit 2
    rc = _lock(root, os.cpu_count() or 1, QUIET)
    if rc != 0:
        return rc
    ctx = detect_context(root, verbosity=verbosity)
    (plan.state / FAILED_GATES).unlink(missing_ok=True)
    reporter = {QUIET: QuietReporter, VERBOSE: VerboseReporter}.get(verbosity, ProgressReporter)
    config = {**doit_config(Path(ctx.root)), "reporter": reporter}
    loader = ModuleTaskLoader({**make_tasks(ctx), **publish_tasks(ctx, options), "DOIT_CONFIG": config})
    rc = BridgeDoitMain(loader, config_filenames=()).run(["run", "publish-gates" if args.dry_run else "publish"])
    if rc != 0:
        return EXIT_DRIFT if (plan.state / FAILED_GATES).is_file() else EXIT_INPUT
    if args.dry_run:
        say(verbosity, f"dry run: every gate passed; nothing was uploaded (a release would go to {plan.repository})")
    return EXIT_OK


def opts_clean(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", action="store_true",
                   help="also empty the shared cache (MOCHI_CACHE_DIR: wheels and compiled wrappers of every project)")


def cmd_clean(args: argparse.Namespace) -> int:
    from .cache import cache_root
    verbosity = _verbosity(args)
    root = project_root(args)
    targets = [root / ".mochi", root / "python_wrap"] + ([cache_root()] if args.cache else [])
    for path in targets:
        if path.is_dir():
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
            shutil.rmtree(path)
            say(verbosity, f"removed {path} ({size / 1e6:.1f} MB)")
    say(verbosity, "mochi.toml, mochi.lock, pylock.toml and your programs are untouched; `mochi-py lock` rebuilds "
        "the rest", VERBOSE)
    return EXIT_OK


