"""Capability audit (DESIGN §8): what a wheel's code can do, found statically, adjusted by the curated db.

Names: `net`, `fs`, `proc`, `subprocess`, `ctypes`, `cextension`, `monkey-patch`, and two for code that runs
without a `.py` source the scan could read: `startup-hook` (a `.pth` file installed into site-packages: site.py
runs its `import` lines at every interpreter start) and `bytecode` (a `.pyc` with no matching `.py`). Each finding
carries evidence (`file:line: what matched`). Nothing is imported or run: the scan reads the wheel's
`.py` files with `ast` and lists its native, `.pth` and sourceless `.pyc` files. `capabilities/db.toml` adds what
a scan misses and removes what it over-reports, per distribution and version range, with a reason.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..cache import StageEntry, stage_key, stage_lookup, stage_store
from ..errors import Location, ManifestError
from ..fetch.wheel import open_wheel, read_member, safe_members
from .scan import python_sources, too_deep

__all__ = [
    "CAPABILITIES",
    "DbEntry",
    "Finding",
    "apply_db",
    "cached_scan",
    "db_path",
    "load_db",
    "needs_trio",
    "parse_db",
    "scan_wheel",
    "scan_wheel_imports",
]

CAPABILITIES = ("net", "fs", "proc", "subprocess", "ctypes", "cextension", "monkey-patch", "startup-hook",
                "bytecode")
FREE_THREADED = ("compatible", "incompatible", "unknown")
_NET_MODULES = {"socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib",
                "poplib", "imaplib", "telnetlib", "xmlrpc", "websockets", "websocket", "socketserver", "asyncssh",
                "paramiko", "grpc", "h11", "h2", "httpcore"}
_NET_CALLS = {"urllib.request.urlopen", "asyncio.open_connection", "asyncio.start_server"}
_PROC_MODULES = {"multiprocessing", "signal", "concurrent.futures.process"}
_PROC_CALLS = {"os.fork", "os.kill", "os.killpg", "os.forkpty", "os._exit", "os.setuid", "os.setgid"}
_SUBPROCESS_CALLS = {"os.system", "os.popen", "os.execv", "os.execve", "os.execvp", "os.execl", "os.execlp",
                     "os.spawnv", "os.spawnl", "os.posix_spawn", "os.posix_spawnp", "pty.spawn"}
_FS_CALLS = {"os.remove", "os.unlink", "os.rename", "os.replace", "os.mkdir", "os.makedirs", "os.rmdir",
             "os.removedirs", "os.chmod", "os.chown", "os.truncate", "os.symlink", "os.link", "os.mkfifo",
             "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move", "shutil.rmtree",
             "shutil.make_archive", "shutil.unpack_archive", "tempfile.mkstemp", "tempfile.mkdtemp"}
_FS_METHODS = {"write_text", "write_bytes", "touch", "unlink", "rmdir", "mkdir", "symlink_to", "hardlink_to"}
_NATIVE = (".so", ".pyd", ".dylib", ".dll")


@dataclass(frozen=True, slots=True)
class Finding:
    capability: str
    file: str
    line: int
    evidence: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.evidence}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def needs_trio(imports: set[str]) -> bool:
    """R12: the distribution's async code runs on trio only. Code that imports trio next to anyio or
    sniffio picks the running library at run time (httpx does), so it runs on asyncio too."""
    return "trio" in imports and not imports & {"anyio", "sniffio"}


class _Scanner(ast.NodeVisitor):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.aliases: dict[str, str] = {}
        self.findings: list[Finding] = []
        self.imports: set[str] = set()
        """Top-level modules imported anywhere (R12 asks whether trio is among them)."""
        self.depth = 0  # function/class nesting: monkey-patching is about module-level assignments

    def add(self, cap: str, node: ast.AST, evidence: str) -> None:
        self.findings.append(Finding(cap, self.filename, getattr(node, "lineno", 0), evidence))

    def qual(self, node: ast.expr) -> str:
        text = ast.unparse(node)
        head, _, rest = text.partition(".")
        base = self.aliases.get(head, head)
        return f"{base}.{rest}" if rest else base

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            self._module(a.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            self._module(node.module, node)

    def _module(self, name: str, node: ast.AST) -> None:
        top = name.split(".", maxsplit=1)[0]
        self.imports.add(top)
        if top in _NET_MODULES:
            self.add("net", node, f"import {name}")
        if top == "subprocess":
            self.add("subprocess", node, f"import {name}")
        if top in ("ctypes", "cffi"):
            self.add("ctypes", node, f"import {name}")
        if top in _PROC_MODULES or name in _PROC_MODULES:
            self.add("proc", node, f"import {name}")

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qual(node.func)
        if name in _NET_CALLS:
            self.add("net", node, f"call {name}()")
        if name in _PROC_CALLS:
            self.add("proc", node, f"call {name}()")
        if name in _SUBPROCESS_CALLS or name.startswith("subprocess."):
            self.add("subprocess", node, f"call {name}()")
        if name in _FS_CALLS:
            self.add("fs", node, f"call {name}()")
        elif name in ("open", "io.open", "builtins.open", "os.open") and _writes(node):
            self.add("fs", node, f"call {name}() for writing")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _FS_METHODS:
            self.add("fs", node, f"call .{node.func.attr}()")
        if name in ("setattr", "builtins.setattr") and self.depth == 0 and node.args:
            target = self.qual(node.args[0])
            if target.split(".")[0] in self.aliases.values() or target in self.aliases:
                self.add("monkey-patch", node, f"setattr({ast.unparse(node.args[0])}, ...) at module level")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if self.depth == 0:
            for target in node.targets:
                if isinstance(target, ast.Attribute):
                    root = ast.unparse(target).split(".")[0]
                    if root in self.aliases:  # an imported module's attribute, replaced at import time
                        self.add("monkey-patch", node, f"assignment to {ast.unparse(target)} at module level")
        self.generic_visit(node)

    def _nested(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _nested


def _writes(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(re.search(r"[wax+]", mode.value))
    return True  # a mode computed at run time may write


def scan_wheel(wheel: Path) -> list[Finding]:
    """Every capability finding in *wheel*, sorted by file and line."""
    return scan_wheel_imports(wheel)[0]


def scan_wheel_imports(wheel: Path) -> tuple[list[Finding], set[str]]:
    """The capability findings of *wheel* and the top-level modules its code imports, in one parse."""
    findings: list[Finding] = []
    imports: set[str] = set()
    for filename, tree in python_sources(wheel):
        scanner = _Scanner(filename)
        try:
            scanner.visit(tree)
        except RecursionError:
            raise too_deep(wheel, filename) from None
        findings += scanner.findings
        imports |= scanner.imports
    with open_wheel(wheel) as zf:
        members = safe_members(zf, wheel)
        names = {info.filename for info in members}
        for info in members:
            if info.filename.endswith(_NATIVE) or ".so." in info.filename.rsplit("/", 1)[-1]:
                findings.append(Finding("cextension", info.filename, 0, "native file"))
            elif _site_top(info.filename).endswith(".pth") and "/" not in _site_top(info.filename):
                findings.append(_pth_finding(info.filename, read_member(zf, info, wheel)))
            elif info.filename.endswith(".pyc") and _source_of(info.filename) not in names:
                findings.append(Finding("bytecode", info.filename, 0,
                                        f"sourceless bytecode: no {_source_of(info.filename)} beside it"))
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.capability, f.evidence)), imports


def _site_top(member: str) -> str:
    """Where *member* lands relative to site-packages: `<dist>.data/purelib|platlib/` is unpacked there too."""
    m = re.match(r"^[^/]+\.data/(purelib|platlib)/(.+)$", member)
    return m[2] if m else member


def _pth_finding(member: str, data: bytes) -> Finding:
    """A `.pth` in site-packages: site.py adds its lines to sys.path and executes those starting with `import`."""
    text = data.decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(("import ", "import\t")):
            shown = line if len(line) <= 80 else line[:77] + "..."
            return Finding("startup-hook", member, n, f".pth file runs at every interpreter start: {shown}")
    return Finding("startup-hook", member, 0, ".pth file (path entries only, no executable import line)")


def _source_of(pyc: str) -> str:
    """The `.py` a `.pyc` member comes from: `pkg/__pycache__/m.cpython-312.pyc` and `pkg/m.pyc` -> `pkg/m.py`."""
    head, _, leaf = pyc.rpartition("/")
    stem = leaf[: -len(".pyc")]
    if head == "__pycache__" or head.endswith("/__pycache__"):
        head = head[: -len("__pycache__")].rstrip("/")
        stem = stem.split(".", 1)[0]
    return f"{head}/{stem}.py" if head else f"{stem}.py"


def cached_scan(cache: Path, wheel: Path, wheel_blake3: str, store: bool = True) -> tuple[list[Finding], set[str]]:
    """:func:`scan_wheel_imports` through the cross-project cache: the scan depends on the wheel's bytes
    and the scanner (the tool) only; the db is applied afterwards, fresh. *store* false writes nothing."""
    key = stage_key("scan", {"wheel": wheel_blake3})
    entry = stage_lookup(cache, "scan", key, remove_corrupt=store)
    if entry is not None:
        try:
            return ([Finding(**f) for f in entry.meta["findings"]], set(entry.meta["imports"]))
        except (KeyError, TypeError):
            pass  # another layout: scan again
    findings, imports = scan_wheel_imports(wheel)
    if store:
        stage_store(cache, "scan", key, StageEntry(meta={"findings": [f.to_dict() for f in findings],
                                                          "imports": sorted(imports)}))
    return findings, imports


@dataclass(frozen=True, slots=True, kw_only=True)
class DbEntry:
    name: str
    versions: str
    add: tuple[str, ...]
    remove: tuple[str, ...]
    reason: str
    free_threaded: str
    line: int


def parse_db(text: str, path: Path) -> list[DbEntry]:
    """Validate `capabilities/db.toml`; a malformed entry is a :class:`ManifestError` at its file and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        raise ManifestError(Location(path, int(m[1]) if m else 1, int(m[2]) if m else 1), f"invalid TOML: {exc}"
                            ) from None
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[package]]"]
    if set(data) - {"package"}:
        raise ManifestError(Location(path, 1, 1), f"unknown top-level key(s) {sorted(set(data) - {'package'})}",
                            "the database holds only [[package]] tables")
    out = []
    for i, pkg in enumerate(data.get("package", [])):
        where = Location(path, starts[i] if i < len(starts) else 1, 1)
        unknown = set(pkg) - {"name", "versions", "add", "remove", "reason", "free-threaded"}
        if unknown:
            raise ManifestError(where, f"package[{i}] has unknown key(s) {sorted(unknown)}",
                                "allowed: name, versions, add, remove, reason, free-threaded")
        if not isinstance(pkg.get("name"), str) or not pkg["name"]:
            raise ManifestError(where, f"package[{i}] needs a 'name'")
        try:
            SpecifierSet(str(pkg.get("versions", "")))
        except InvalidSpecifier:
            raise ManifestError(where, f"package[{i}] ({pkg['name']}): invalid versions {pkg.get('versions')!r}",
                                'write a PEP 440 specifier such as ">=1,<2"') from None
        if "versions" not in pkg:
            raise ManifestError(where, f"package[{i}] ({pkg['name']}) needs 'versions'", 'use "*" style ">=0"')
        for key in ("add", "remove"):
            caps = pkg.get(key, [])
            bad = [c for c in caps if c not in CAPABILITIES] if isinstance(caps, list) else [caps]
            if bad:
                raise ManifestError(where, f"package[{i}] ({pkg['name']}): {key} has unknown capabilities {bad}",
                                    f"capabilities are {', '.join(CAPABILITIES)}")
        if (pkg.get("add") or pkg.get("remove")) and not str(pkg.get("reason", "")).strip():
            raise ManifestError(where, f"package[{i}] ({pkg['name']}): add/remove needs a 'reason'",
                                "say why the scan is wrong, for the reviewer")
        ft = pkg.get("free-threaded", "unknown")
        if ft not in FREE_THREADED:
            raise ManifestError(where, f"package[{i}] ({pkg['name']}): free-threaded {ft!r} is not one of "
                                f"{', '.join(FREE_THREADED)}")
        out.append(DbEntry(name=canonicalize_name(pkg["name"]), versions=str(pkg["versions"]),
                           add=tuple(pkg.get("add", [])), remove=tuple(pkg.get("remove", [])),
                           reason=str(pkg.get("reason", "")), free_threaded=str(ft), line=where.line))
    return out


def db_path() -> Path:
    """`capabilities/db.toml` of this installation: the curated database, reviewed like code."""
    return Path(__file__).resolve().parents[2] / "capabilities" / "db.toml"


def load_db(path: Path | None = None) -> list[DbEntry]:
    path = path or db_path()
    return parse_db(path.read_text(encoding="utf-8"), path) if path.is_file() else []


def apply_db(name: str, version: str, found: list[Finding], db: list[DbEntry]) -> tuple[list[str], str]:
    """(capabilities, free-threaded status) of one package: the scan, adjusted by matching db entries."""
    caps = {f.capability for f in found}
    status = "unknown"
    for entry in db:
        if entry.name == canonicalize_name(name) and SpecifierSet(entry.versions).contains(Version(version), True):
            caps |= set(entry.add)
            caps -= set(entry.remove)
            status = entry.free_threaded
    return sorted(caps, key=CAPABILITIES.index), status
