"""Compile stage: one generated CMake/Ninja project, one abi3 module per distribution (DESIGN §7).

Compiled modules are content-addressed in the cache under a key of the generated C source, the
runtime sources, the compiler identity, the ABI floor and the flags; a hit is copied and compiles
nothing (R2). Each entry has its BLAKE3 stored beside it and is verified on every use: a module
whose bytes changed in the cache (poisoned, truncated) is compiled again, never installed. Misses
are built together by a single `cmake --build -j`, never by two ninja runs in one build directory.

The runtime (`wrappers/*.c`) is compiled once per build configuration into a static library with
the modules' flags and ABI floor, position-independent and with hidden visibility, and linked into
every module, so each module stays self-contained (its only export is `PyInit_<module>`) while a
project compiles only its per-distribution tables. The library is a cache entry of its own
(`stages/runtime/`, keyed by the runtime sources, the compiler, the floor and the flags, verified on
every use); when it is missing or corrupt, the same CMake project builds it beside the modules.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from .. import __version__
from ..cache import StageEntry, atomic_write, file_lock, stage_key, stage_lookup, stage_store
from ..errors import BridgeError, SubprocessFailed
from ..resolve.urls import is_hex
from ..run import run
from .launcher import LauncherStats, launched

__all__ = [
    "COMPILE_FLAGS",
    "RUNTIME_ARCHIVE",
    "WrapperJob",
    "build_wrappers",
    "cached_wrapper",
    "compiler_identity",
    "find_tool",
    "render_cmakelists",
    "runtime_dir",
    "runtime_key",
    "store_wrapper",
    "wrapper_key",
]

COMPILE_FLAGS = ("-O2", "-fno-plt", "-Wall", "-Werror=implicit-function-declaration", "-fvisibility=hidden")
RUNTIME_SOURCES = ("rt_module.c", "rt_convert.c", "rt_callback.c", "rt_capi.c")
RUNTIME_FILES = ("mochi_bridge.h", *RUNTIME_SOURCES)
RUNTIME_ARCHIVE = "libmochi_rt.a"
PCH_FROM = 4
"""Modules in one build from which a precompiled header pays for itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapperJob:
    dist: str
    module: str
    c_source: Path
    dest_dir: Path


def runtime_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "wrappers"
    if not (here / "mochi_bridge.h").is_file():
        raise BridgeError(f"the wrapper runtime is missing from {here}", "reinstall mochi-pybridge")
    return here


def find_tool(name: str) -> str:
    """`cmake` / `ninja` from their PyPI packages (system CMake is too old for USE_SABI), else PATH."""
    try:
        if name == "cmake":
            import cmake
            cand = Path(cmake.CMAKE_BIN_DIR) / "cmake"
        else:
            import ninja
            cand = Path(ninja.BIN_DIR) / "ninja"
        if cand.is_file():
            return str(cand)
    except (ImportError, AttributeError):
        pass
    found = shutil.which(name)
    if found is None:
        raise BridgeError(f"{name} is not installed", f"pip install {name}")
    return found


def compiler_identity() -> str:
    cc = os.environ.get("CC", "cc")
    try:
        return run([cc, "--version"], timeout=30).splitlines()[0].strip()
    except SubprocessFailed as exc:
        if exc.returncode != 127:
            raise
        raise BridgeError(f"no C compiler: `{cc}` is not on PATH (the wrappers are C extension modules)",
                          "install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: "
                          "xcode-select --install), or point the CC variable at yours") from None


def runtime_key(runtime: Path, compiler: str, abi_floor: tuple[int, int]) -> str:
    """The cache key of the compiled runtime: its sources, the compiler, the ABI floor and the flags."""
    sources = {name: hashlib.sha256((runtime / name).read_bytes()).hexdigest() for name in RUNTIME_FILES}
    return stage_key("runtime", {"sources": sources, "compiler": compiler, "floor": list(abi_floor),
                                 "flags": list(COMPILE_FLAGS), "archive": RUNTIME_ARCHIVE})


def wrapper_key(c_source: str, runtime: Path, compiler: str, abi_floor: tuple[int, int]) -> str:
    h = hashlib.sha256()
    for part in (__version__, c_source, compiler, f"{abi_floor[0]}.{abi_floor[1]}", " ".join(COMPILE_FLAGS)):
        h.update(part.encode() + b"\0")
    for name in RUNTIME_FILES:
        h.update((runtime / name).read_bytes() + b"\0")
    return h.hexdigest()


def render_cmakelists(jobs: list[WrapperJob], runtime: Path, abi_floor: tuple[int, int],
                      runtime_archive: Path | None = None, launcher: str = "") -> str:
    """The wrapper project: the runtime library (built here, or the verified *runtime_archive*) and one
    module per job, each linking it; compiles go through *launcher* (`[python].compiler-cache`) if any."""
    floor = f"{abi_floor[0]}.{abi_floor[1]}"
    out = [
        f"# generated by mochi-pybridge {__version__} - do not edit; regenerate with `mochi-py lock`",
        "cmake_minimum_required(VERSION 3.26...4.4)",
        *([f'set(CMAKE_C_COMPILER_LAUNCHER "{launcher}")'] if launcher else []),  # [python].compiler-cache
        "project(mochi_wrappers LANGUAGES C)",
        f"find_package(Python {floor} REQUIRED COMPONENTS Interpreter Development.SABIModule)",
        f"set(MB_FLAGS {' '.join(COMPILE_FLAGS)})",
    ]
    if runtime_archive is None:
        rt = " ".join(f'"{runtime / s}"' for s in RUNTIME_SOURCES)
        out += [
            "# the runtime, compiled once and linked into every module (hidden symbols: each module self-contained)",
            f"add_library(mochi_rt STATIC {rt})",
            f"target_compile_definitions(mochi_rt PRIVATE Py_LIMITED_API=0x{abi_floor[0]:02x}{abi_floor[1]:02x}0000)",
            f'target_include_directories(mochi_rt PRIVATE "{runtime}")',
            "target_link_libraries(mochi_rt PRIVATE Python::SABIModule)",
            "target_compile_options(mochi_rt PRIVATE ${MB_FLAGS})",
            "set_target_properties(mochi_rt PROPERTIES POSITION_INDEPENDENT_CODE ON)",
        ]
    else:
        out += [
            "# the runtime, taken from the cache (verified before this file was written)",
            "add_library(mochi_rt STATIC IMPORTED)",
            f'set_target_properties(mochi_rt PROPERTIES IMPORTED_LOCATION "{runtime_archive}")',
        ]
    ordered = sorted(jobs, key=lambda j: j.module)
    for job in ordered:
        out += [
            f'Python_add_library({job.module} MODULE USE_SABI {floor} WITH_SOABI "{job.c_source}")',
            f'target_include_directories({job.module} PRIVATE "{runtime}")',
            f"target_compile_options({job.module} PRIVATE ${{MB_FLAGS}})",
            f"target_link_libraries({job.module} PRIVATE mochi_rt)",
        ]
        if len(ordered) >= PCH_FROM and not launcher:  # a compiler cache cannot cache a compile using a PCH
            # Python.h is most of a table's compile: parse it once for all of them (identical flags, and no
            # per-target _EXPORTS define, so one precompiled header serves every module)
            pch = (f'PRIVATE "{runtime / "mochi_bridge.h"}"' if job is ordered[0]
                   else f"REUSE_FROM {ordered[0].module}")
            out += [f'set_target_properties({job.module} PROPERTIES DEFINE_SYMBOL "")',
                    f"target_precompile_headers({job.module} {pch})"]
    return "\n".join(out) + "\n"


def build_wrappers(jobs: list[WrapperJob], interpreter: str, abi_floor: tuple[int, int], build_dir: Path,
                   cache: Path, launcher: str = "none", basedirs: tuple[Path, ...] = (),
                   launcher_stats: list[LauncherStats] | None = None) -> dict[str, dict[str, str]]:
    """Make `<dest_dir>/<module>.abi3.so` for every job; returns per-dist {key, file, cached}.

    Misses compile through *launcher* (`sccache`, `ccache` or `none`); its hit counts go to *launcher_stats*.
    """
    runtime = runtime_dir()
    compiler = compiler_identity()
    results: dict[str, dict[str, str]] = {}
    missing: list[tuple[WrapperJob, str]] = []
    for job in jobs:
        key = wrapper_key(job.c_source.read_text(encoding="utf-8"), runtime, compiler, abi_floor)
        blob = cached_wrapper(cache, key, job.module)
        if blob is not None:
            results[job.dist] = {"key": key, "file": f"{job.module}.abi3.so", "cached": "yes",
                                 "sha256": _install(blob, job)}
        else:
            missing.append((job, key))
    if not missing:
        return results
    stats: list[LauncherStats] = [] if launcher_stats is None else launcher_stats
    with file_lock(build_dir / ".lock"), launched(launcher, [*basedirs, runtime.parent], stats) as (exe, env):
        rt_key = runtime_key(runtime, compiler, abi_floor)
        archive = _cached_runtime(cache, rt_key, build_dir)
        cmakelists = build_dir / "CMakeLists.txt"
        text = render_cmakelists([j for j, _ in missing], runtime, abi_floor, archive, exe)
        if not cmakelists.is_file() or cmakelists.read_text(encoding="utf-8") != text:
            atomic_write(cmakelists, text.encode(), durable=False)
        out_dir = build_dir / "out"
        if not (out_dir / "build.ninja").is_file():
            run([find_tool("cmake"), "-S", str(build_dir), "-B", str(out_dir), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={find_tool('ninja')}", "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPython_EXECUTABLE={interpreter}"], env=env,
                hint="CMake could not configure the wrapper build; is a C compiler and the Python headers installed?")
        run([find_tool("cmake"), "--build", str(out_dir), "-j", str(os.cpu_count() or 2)], env=env,
            hint="the generated wrapper did not compile; this is a bug in mochi-pybridge, please report it")
        if archive is None:
            built_rt = out_dir / RUNTIME_ARCHIVE
            if not built_rt.is_file():
                raise BridgeError(f"the build produced no {RUNTIME_ARCHIVE}", "report this as a bug")
            stage_store(cache, "runtime", rt_key, StageEntry(files={RUNTIME_ARCHIVE: built_rt.read_bytes()}))
    for job, key in missing:
        built = out_dir / f"{job.module}.abi3.so"
        if not built.is_file():
            raise BridgeError(f"the build produced no {built.name}", "report this as a bug")
        blob = built.read_bytes()
        store_wrapper(cache, key, job.module, blob)
        results[job.dist] = {"key": key, "file": built.name, "cached": "no", "sha256": _install(blob, job)}
    return results


def _wrapper_entry(cache: Path, key: str, module: str) -> tuple[Path, Path]:
    if not is_hex(key) or not module.isidentifier():
        raise BridgeError(f"refusing cache path for wrapper key {key!r} and module {module!r}")
    blob = cache / "wrappers" / key / f"{module}.abi3.so"
    return blob, blob.with_name(f"{blob.name}.blake3")


def cached_wrapper(cache: Path, key: str, module: str) -> bytes | None:
    """The compiled module *key* from the cache, verified against the BLAKE3 stored beside it; None when
    absent or when its bytes are not the ones stored (a poisoned or corrupt entry is never used: the
    caller compiles it again and :func:`store_wrapper` replaces it)."""
    blob_path, digest_path = _wrapper_entry(cache, key, module)
    try:
        blob, digest = blob_path.read_bytes(), digest_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return blob if blake3(blob).hexdigest() == digest else None


def store_wrapper(cache: Path, key: str, module: str, blob: bytes) -> None:
    """Publish a compiled module and its BLAKE3 (the digest last: a reader never trusts a half entry)."""
    blob_path, digest_path = _wrapper_entry(cache, key, module)
    with file_lock(cache / "locks" / "wrappers" / f"{key}.lock"):
        atomic_write(blob_path, blob)
        atomic_write(digest_path, f"{blake3(blob).hexdigest()}\n".encode())


def _cached_runtime(cache: Path, key: str, build_dir: Path) -> Path | None:
    """The verified runtime library of *key*, copied into *build_dir* (rewritten only when its bytes
    change, so ninja relinks nothing for nothing); None when the cache has no intact one."""
    entry = stage_lookup(cache, "runtime", key)
    blob = entry.files.get(RUNTIME_ARCHIVE) if entry is not None else None
    if blob is None:
        return None
    dest = build_dir / "runtime" / RUNTIME_ARCHIVE
    if not dest.is_file() or dest.read_bytes() != blob:
        atomic_write(dest, blob, durable=False)
    return dest


def _install(blob: bytes, job: WrapperJob) -> str:
    """The verified module into the project, as a copy of its own (a hardlink would let an edit of the
    project's file change the cache every other project reads); its SHA-256, for `.mochi/compile.json`."""
    atomic_write(job.dest_dir / f"{job.module}.abi3.so", blob, durable=False)
    return hashlib.sha256(blob).hexdigest()
