"""`mochi-py`: the console script. It embeds doit, so a project needs no dodo.py.

Exit codes (DESIGN §9): 0 ok, 1 a check found drift, 2 bad usage or input (a failed lock included).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import BridgeError

__all__ = ["entrypoint", "main"]


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Typed bindings from PyPI packages for Mochi programs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lock = sub.add_parser("lock", help="resolve, fetch, stub, wrap and compile the Python dependencies; write "
                          "mochi.lock and pylock.toml",
                          description="Run the lock task graph of a Mochi project. Tasks whose inputs did not "
                          "change are skipped; a second run with nothing changed does nothing.")
    lock.add_argument("project", nargs="?", default=".", type=Path,
                      help="the project directory holding mochi.toml (default: the current directory)")
    lock.add_argument("-n", "--jobs", type=int, default=1, help="doit tasks to run at once (default: 1)")
    lock.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "mochi-py") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        if args.command == "lock":
            return _lock(args.project, args.jobs, args.quiet)
    except BridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 2


def _lock(project: Path, jobs: int, quiet: bool) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from .graph import detect_context, doit_config, make_tasks

    ctx = detect_context(project)
    loader = ModuleTaskLoader({**make_tasks(ctx), "DOIT_CONFIG": doit_config(Path(ctx.root))})
    argv = ["run"]  # doit reads options only before the task names
    if jobs > 1:
        argv += ["-n", str(jobs), "-P", "process"]
    if quiet:
        argv += ["--reporter", "error-only"]
    argv.append("lock")
    rc = int(DoitMain(loader, config_filenames=()).run(argv))
    # doit says 1 (task failed) or 3 (error); for `lock` both mean the input could not be locked.
    return 0 if rc == 0 else 2


def entrypoint() -> None:
    sys.exit(main())
