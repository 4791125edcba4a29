"""mochi-pybridge: typed bindings from PyPI packages for Mochi programs.

The package is a set of small stage modules (manifest, resolve, index, cache, fetch, stubs, surface,
codegen, build, lockfile) with pure cores, wired into a doit task graph by :mod:`tasks.graph`.
"""

__version__ = "0.1.0"
TOOL_NAME = "mochi-pybridge"

__all__ = ["TOOL_NAME", "__version__"]
