"""Where a project is, and a new one: `mochi.toml` found upward from a directory (as cargo and uv do), `init`."""

from __future__ import annotations

import re
from pathlib import Path

from ..cache import atomic_write
from ..errors import BridgeError

__all__ = ["EXAMPLE_PROGRAM", "find_project", "init_project"]

EXAMPLE_PROGRAM = """\
// {name}.mochi, written by `mochi-py init`.
// To use a Python package: `mochi-py add inflection`, then `mochi-py lock`, then write
//   import python "inflection" as inflection
//   print(inflection_camelize("mochi_bridge", true))
print("hello from {name}")
"""

_MANIFEST = """\
# The manifest of the Mochi project {name} (written by `mochi-py init`).
[package]
name = "{name}"
version = "0.1.0"

# Python packages the program imports with `import python "<name>" as <alias>`:
# add them with `mochi-py add NAME`, then `mochi-py lock` builds their typed bindings.
[python-dependencies]

[python]
requires-python = "{requires}"
"""

_GITIGNORE = """\
# written by `mochi-py init`: mochi-py regenerates these
/python_wrap/
/.mochi/
/build/
"""


def find_project(start: Path) -> Path:
    """The nearest directory holding `mochi.toml`: *start* itself or one of its parents."""
    here = start.resolve()
    if here.is_file() and here.name == "mochi.toml":
        here = here.parent
    if not here.is_dir():
        raise BridgeError(f"{start}: no such directory", "pass the project directory (the one holding mochi.toml)")
    for candidate in (here, *here.parents):
        if (candidate / "mochi.toml").is_file():
            return candidate
        if (candidate / "mochi.toml").exists():  # a directory (or a socket...) of that name: say so, do not skip it
            raise BridgeError(f"{candidate / 'mochi.toml'} is not a file", "remove or rename it: the manifest "
                              "mochi.toml must be a TOML text file (`mochi-py init` writes one)")
    raise BridgeError(f"no mochi.toml in {here} or any parent directory",
                      "run `mochi-py init` to start a project here, or pass --project DIR")


def init_project(root: Path, name: str | None, requires_python: str) -> list[Path]:
    """Write `mochi.toml`, an example program and a `.gitignore` into *root*; returns what was written.

    Never overwrites: a `mochi.toml` already there is an error, and an existing program or `.gitignore`
    is left as it is.
    """
    root = root.resolve()
    manifest = root / "mochi.toml"
    if manifest.exists():
        raise BridgeError(f"{manifest} already exists", "this is a Mochi project already; edit it, or init elsewhere")
    if root.exists() and not root.is_dir():
        raise BridgeError(f"{root} is not a directory", "pass a directory to init")
    project = name or re.sub(r"[^A-Za-z0-9_]+", "_", root.name).strip("_").lower() or "app"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", project):
        raise BridgeError(f"{project!r} is not a valid project name", "use letters, digits and '_' (--name NAME)")
    written = []
    if not any(root.glob("*.mochi")):
        program = root / "main.mochi"
        atomic_write(program, EXAMPLE_PROGRAM.format(name="main").encode())
        written.append(program)
    atomic_write(manifest, _MANIFEST.format(name=project, requires=requires_python).encode())
    written.insert(0, manifest)
    ignore = root / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, _GITIGNORE.encode())
        written.append(ignore)
    return written
