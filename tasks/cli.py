"""`mochi-py`: the console script. It embeds doit, so a project needs no dodo.py.

Every command finds its project the same way, as cargo and uv do: from `--project DIR` (given before or after
the command), else from the current directory, the nearest directory upward that holds `mochi.toml`. The
commands that took a positional PROJECT_DIR (lock, check, export-pylock, graph, report, publish) still take it, as an
alias of `--project`. `-q` prints only failures and `-v` more, on every command.

Exit codes (DESIGN §9, plus 3): 0 ok; 1 drift (`check`, or `lock --frozen`/`sync` against a lock that
disagrees); 2 bad usage or input (a lock that cannot be made included); 3 `check` could not verify every
field (offline, or the index did not answer) and found no drift in what it could; 130 Ctrl-C, 143 SIGTERM
(a lock ends every process it started first).

Each command is one entry of `_COMMANDS`: the function adding its options, the one running it (both in
`tasks.commands`), and its help texts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from . import commands as c
from .commands import EXIT_DRIFT, EXIT_INPUT, EXIT_OK, EXIT_UNVERIFIED
from .errors import BridgeError, redact_text, storage_error

__all__ = ["EXIT_DRIFT", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNVERIFIED", "entrypoint", "main"]

EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report a process ended by SIGINT (128 + 2)."""


def _common(top: bool) -> argparse.ArgumentParser:
    """--project, -q, -v: on the main parser with defaults, on each command without (so either place works)."""
    parser = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if top else (lambda _value: argparse.SUPPRESS)
    parser.add_argument("--project", metavar="DIR", type=Path, default=default(None),
                        help="the project: DIR or the nearest parent holding mochi.toml (default: from the current "
                        "directory)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False), help="print only failures")
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="print more: every task, up-to-date ones too, and the details of failures")
    return parser


# --- the parser -----------------------------------------------------------------------------------------------

_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str, str]]
_COMMANDS = {
    "init": (c.opts_init, c.cmd_init, "start a project: mochi.toml and an example program",
             "Write mochi.toml, an example main.mochi (when the directory has no .mochi file) and a .gitignore. "
             "Never overwrites: refuses a directory that already holds mochi.toml."),
    "add": (c.opts_add, c.cmd_add, "add or change dependencies in mochi.toml (resolved first)",
            "Add NAME[@CONSTRAINT] entries to [python-dependencies], keeping the file's formatting and comments. "
            "The new set is resolved first; mochi.toml is written only when that succeeds. An entry without a "
            "constraint gets a caret on the version it resolved to (tabulate -> \"^0.9.0\"). Then run lock."),
    "remove": (c.opts_remove, c.cmd_remove, "remove dependencies from mochi.toml",
               "Remove entries from [python-dependencies]; warns about import lines that still use them. The next "
               "lock drops their wrappers."),
    "lock": (c.opts_lock, c.cmd_lock, "resolve, fetch, stub, wrap and compile the Python dependencies; write "
             "mochi.lock and pylock.toml",
             "Run the lock task graph of the project. Tasks whose inputs did not change are skipped; a second run "
             "with nothing changed does nothing. Pins already in mochi.lock are kept unless their mochi.toml "
             "entry changed. Ends with a one-line summary."),
    "sync": (c.opts_sync, c.cmd_sync, "build python_wrap/ exactly as mochi.lock says (= lock --frozen)",
             "Resolve nothing: fetch the locked files by hash, regenerate and compile the wrappers, install "
             "python_wrap/site-packages. Exit 1 when mochi.toml and mochi.lock disagree."),
    "update": (c.opts_update, c.cmd_update, "re-resolve (all, or the named packages) and relock; refuses a "
               "capability elevation unless allowed",
               "Release the sticky pins of the named packages (all when none is named), resolve again, print the "
               "version and capability changes against mochi.lock, and relock. A package gaining a capability is "
               "refused unless --allow-capability-elevation is given (on a terminal, you are asked instead)."),
    "check": (c.opts_check, c.cmd_check, "verify that mochi.lock still matches reality; exit 1 on drift, 3 when "
              "something could not be verified",
              "Recompute every hash, the stub provenance and the wrapper hash of every locked package, re-verify "
              "its PEP 740 provenance, and compare them with mochi.lock. Writes nothing. Exit 0 when the lock "
              "holds, 1 with a per-package, per-field list when it drifted, 3 when some fields could not be "
              "verified (offline, or the index did not answer) and nothing else drifted."),
    "tree": (c.opts_tree, c.cmd_tree, "the locked packages as a dependency tree, with the imports that brought "
             "them in", "Print mochi.lock as a tree: each direct dependency with its version and the import "
             "python lines that use it, and what it requires below it ((*): shown above). Reads only mochi.lock "
             "and the .mochi files."),
    "graph": (c.opts_graph, c.cmd_graph, "the package graph as DOT (and SVG when Graphviz is present); --tasks for "
              "the task graph", "Write the locked packages and their requirements as Graphviz DOT (or, with "
              "--tasks, the doit task graph), and SVG when the `dot` command exists."),
    "report": (c.opts_report, c.cmd_report, "translated and skipped counts by reason per package, and an HTML report",
               "Summarise the last lock's type surfaces: translated items and skipped items by reason, per "
               "package. Writes a one-page HTML report with a filterable table."),
    "export-pylock": (c.opts_export, c.cmd_export, "write a PEP 751 pylock.toml from mochi.lock",
                      "Render pylock.toml from mochi.lock alone (no resolution, no network)."),
    "build": (c.opts_build, c.cmd_build, "write a build tree for the Mochi Python target from a program",
              "Write PROGRAM with each `import python` line replaced by that package's declarations (renamed to "
              "the import's alias), and a <module>_externs.py sidecar that holds your own sidecar plus the locked "
              "wrappers' externs, into OUTPUT (default: PROJECT/build/<module>/). Then run `mochi build "
              "--target=python` on that tree. Run `mochi-py lock` first."),
    "publish": (c.opts_publish, c.cmd_publish, "build the sdist and the wheel, run every gate, and upload them "
                "through Trusted Publishing", "Lock, write the mochi-py build tree of [python.publish].program, "
                "compile it with [python.publish].compile (or take --from DIR), build the sdist and the wheel from "
                "it, run every gate, sign each file (PEP 740) and upload the files the index does not have yet, with "
                "a short-lived token the CI's OIDC identity is exchanged for. There is no token or password option. "
                "Exit 0 ok, 1 a gate failed, 2 anything else."),
    "clean": (c.opts_clean, c.cmd_clean, "remove what mochi-py generated in the project (.mochi/, python_wrap/)",
              "Remove .mochi/ and python_wrap/ (never mochi.toml, mochi.lock, pylock.toml or your files); with "
              "--cache, the shared cache too."),
}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, parents=[_common(top=True)],
        description="Typed bindings from PyPI packages for Mochi programs. Exit codes: 0 ok, 1 drift, 2 bad usage "
        "or input, 3 check could not verify (offline).")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (options, _, short, long) in _COMMANDS.items():
        options(sub.add_parser(name, parents=[_common(top=False)], help=short, description=long))
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "mochi-py") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        c.refresh_trust(args)
        return _COMMANDS[args.command][1](args)
    except BridgeError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)  # never an index password
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a lock (a lock stops itself: tasks.reaper)
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a full or read-only disk, an unreadable file: say where and what to do
        print(f"error: {storage_error(exc)}", file=sys.stderr)
        return EXIT_INPUT


def entrypoint() -> None:
    sys.exit(main())
