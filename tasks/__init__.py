"""mochi-pybridge: typed bindings from PyPI packages for Mochi programs.

One subpackage per stage of the pipeline (resolve, fetch, stubs, surface, codegen, build, audit, lock),
each a core with its own data types, over a shared edge (errors, the subprocess runner, the cache, the
console, the environment facts); :mod:`tasks.graph` wires them into a doit task graph.
"""

__version__ = "0.1.0"
TOOL_NAME = "mochi-pybridge"

__all__ = ["TOOL_NAME", "__version__"]
