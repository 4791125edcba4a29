"""What runs, verified: `python_wrap/<dist>/` against the files the lock generated and compiled, and
`python_wrap/site-packages/` against the `RECORD` of each locked (hash-verified) wheel.

Both `lock` (an up-to-date test of the codegen, compile and site tasks, and the install itself) and
`check` ask the same questions here, so a tree `check` rejects is never one `lock` calls up to date.
Every problem names the file (relative to `python_wrap/`) and what is wrong with it. Nothing is written.

Bytecode caches are the one kind of file nothing records: Python writes `__pycache__/*.pyc` beside
the sources it imports, and a `.pyc` whose header matches its source runs *instead of* the source. So
each one is verified by the target interpreter: it must unmarshal to the code its (verified) source
compiles to; one it cannot read (another interpreter's) cannot be verified and counts as drift.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INSTALLER_FILES",
    "Problem",
    "file_sha256",
    "pyc_problems",
    "site_problems",
    "tree_problems",
    "wheel_record",
]

INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"})
"""dist-info files an installer (uv, pip) adds and lists in the installed RECORD: data about the
install, never imported or executed."""
_SITE_EXTRA = frozenset({".lock", ".mochi-site.json"})
"""Top-level files of the site directory that are no package's: uv's lock of the target, the lock's marker."""


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    """Relative to `python_wrap/`."""
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.digest()


def file_sha256(path: Path) -> str:
    return _sha256(path).hex()


def _record_hash(path: Path) -> str:
    """A file's digest in RECORD's spelling (`sha256=<urlsafe base64, unpadded>`)."""
    return "sha256=" + base64.urlsafe_b64encode(_sha256(path)).rstrip(b"=").decode()


def _parse_record(text: str) -> dict[str, str]:
    """{path: hash} of a RECORD (hash "" for RECORD itself and for entries without one)."""
    out: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if row:
            out[row[0]] = row[1] if len(row) > 1 else ""
    return out


def wheel_record(wheel: Path) -> tuple[str, dict[str, str]]:
    """(the dist-info directory, {path: hash}) of the RECORD inside *wheel*.

    :raises ValueError: the wheel has no single RECORD.
    """
    with zipfile.ZipFile(wheel) as zf:
        records = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise ValueError(f"{wheel.name}: {len(records)} RECORD files, expected one")
        text = zf.read(records[0]).decode("utf-8")
    return records[0].split("/", 1)[0], _parse_record(text)


def _installed_path(path: str) -> str | None:
    """Where an installer puts a wheel member (`--target`): `.data/purelib|platlib` at the top, the other
    `.data` schemes elsewhere (None: not checked by path, the installed RECORD lists them)."""
    first, _, rest = path.partition("/")
    if first.endswith(".data") and rest:
        scheme, _, inner = rest.partition("/")
        return inner if scheme in ("purelib", "platlib") else None
    return path


def site_problems(site: Path, wheels: Iterable[Path], prefix: str = "site-packages") -> list[Problem]:
    """Every way *site* differs from an install of *wheels*: a file whose bytes are not its RECORD's, an
    installed RECORD that is not the wheel's (beyond the installer's own lines), a recorded file that is
    missing, and any file no RECORD lists. Bytecode caches are left to :func:`pyc_problems`."""
    problems: list[Problem] = []
    if not site.is_dir():
        return [Problem(prefix, "missing")]
    listed: set[str] = set()
    for wheel in sorted(wheels):
        try:
            dist_info, record = wheel_record(wheel)
        except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            problems.append(Problem(prefix, f"cannot read the RECORD of {wheel.name}: {exc}"))
            continue
        installed_record = site / dist_info / "RECORD"
        try:
            installed = _parse_record(installed_record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            problems.append(Problem(f"{prefix}/{dist_info}/RECORD", f"missing (from {wheel.name})"))
            continue
        expected: dict[str, str] = {}
        elsewhere = set()  # `.data` members of other schemes (headers, data): placed where the installer chooses
        for path, digest in record.items():
            target = _installed_path(path)
            if target is None:
                elsewhere.add(digest)
            else:
                expected[target] = digest
        for path, digest in installed.items():
            name = path.rsplit("/", 1)[-1]
            if path in expected:
                if digest != expected[path]:
                    problems.append(Problem(f"{prefix}/{dist_info}/RECORD",
                                            f"lists {path} with {digest or 'no hash'}, the wheel {expected[path]}"))
            elif not ((path.startswith(f"{dist_info}/") and name in INSTALLER_FILES) or _is_pyc(path)
                      or path.startswith(("../", "bin/")) or (digest and digest in elsewhere)):
                problems.append(Problem(f"{prefix}/{dist_info}/RECORD", f"lists {path}, which {wheel.name} does not"))
        problems += [Problem(f"{prefix}/{dist_info}/RECORD", f"does not list {path}, which {wheel.name} holds")
                     for path in sorted(set(expected) - set(installed))]
        for raw, digest in sorted(installed.items()):
            parts = raw.split("/")
            while parts and parts[0] == "..":  # pip --target: scripts and data, relative to its staging lib dir
                parts.pop(0)
            path = "/".join(parts)
            if not parts or any(part in ("", ".", "..") for part in parts) or _is_pyc(path) or (
                    path != raw and not (site / path).is_file()):
                continue  # outside the target directory (not on sys.path), or bytecode (pyc_problems)
            listed.add(path)
            where = site / path
            if path == f"{dist_info}/RECORD":
                continue
            if not where.is_file():
                problems.append(Problem(f"{prefix}/{path}", "missing"))
            elif digest and _record_hash(where) != digest:
                problems.append(Problem(f"{prefix}/{path}", f"changed (RECORD of {wheel.name} says {digest})"))
    for path in _walk(site):
        if path in listed or path in _SITE_EXTRA or _is_pyc(path):
            continue
        problems.append(Problem(f"{prefix}/{path}", "not in any locked wheel's RECORD"))
    return problems


def tree_problems(directory: Path, expected: Mapping[str, str], prefix: str) -> list[Problem]:
    """*directory* against *expected* ({relative path: sha256}): changed, missing and extra files.
    Bytecode caches are left to :func:`pyc_problems`."""
    problems = []
    if not directory.is_dir():
        return [Problem(prefix, "missing")]
    for rel, digest in sorted(expected.items()):
        path = directory / rel
        if not path.is_file():
            problems.append(Problem(f"{prefix}/{rel}", "missing"))
        elif file_sha256(path) != digest:
            problems.append(Problem(f"{prefix}/{rel}", f"changed (expected sha256 {digest})"))
    problems += [Problem(f"{prefix}/{rel}", "not written by the lock") for rel in _walk(directory)
                 if rel not in expected and not _is_pyc(rel)]
    return problems


def _walk(root: Path) -> list[str]:
    """Every non-directory under *root* (symlinks included, not followed), as sorted relative POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():  # a link to a directory is an entry of its own, never walked into
                dirnames.remove(d)
                filenames.append(d)
        out += [(base / f).relative_to(root).as_posix() for f in filenames]
    return sorted(out)


def _is_pyc(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) >= 2 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


def pyc_sources(root: Path) -> list[tuple[str, str]]:
    """(pyc, source) pairs of every bytecode cache under *root*, as relative POSIX paths; the source is
    the module the name says it caches (`__pycache__/m.cpython-312.pyc` caches `m.py`), "" when no file
    could be cached as it."""
    out = []
    for rel in _walk(root):
        if _is_pyc(rel):
            *parents, _, name = rel.split("/")
            source = "/".join([*parents, f"{name.split('.', 1)[0]}.py"])
            out.append((rel, source if (root / source).is_file() and not (root / source).is_symlink() else ""))
    return out


_VERIFY_PYC = r"""
import importlib.util, json, marshal, sys
out = []
for pyc, source in json.load(sys.stdin):
    try:
        data = open(pyc, "rb").read()
        if data[:4] != importlib.util.MAGIC_NUMBER:
            out.append("written by another interpreter than the target's: cannot be verified")
            continue
        name = pyc.rsplit("/", 1)[-1]
        level = name.split(".opt-")[1].split(".")[0] if ".opt-" in name else ""
        code = marshal.loads(data[16:])
        want = compile(open(source, "rb").read(), source, "exec", dont_inherit=True,
                       optimize={"": 0, "1": 1, "2": 2}.get(level, 0))
        out.append("" if code == want else "is not the compiled form of its source")
    except Exception as exc:
        out.append(f"cannot be read as bytecode ({type(exc).__name__})")
json.dump(out, sys.stdout)
"""


def pyc_problems(root: Path, interpreter: str, prefix: str) -> list[Problem]:
    """Bytecode caches under *root* that are not the compiled form of their (separately verified) source,
    as the target *interpreter* compiles it: code objects compare by content, not by file name."""
    pairs = pyc_sources(root)
    problems = [Problem(f"{prefix}/{pyc}", "a bytecode cache of no source file") for pyc, src in pairs if not src]
    todo = [(pyc, src) for pyc, src in pairs if src]
    if not todo:
        return problems
    try:
        proc = subprocess.run([interpreter, "-I", "-S", "-c", _VERIFY_PYC], input=json.dumps(
            [[str(root / pyc), str(root / src)] for pyc, src in todo]), capture_output=True, text=True,
            timeout=300, check=True)
        answers = json.loads(proc.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return [*problems, *(Problem(f"{prefix}/{pyc}", f"could not be verified ({exc})") for pyc, _ in todo)]
    problems += [Problem(f"{prefix}/{pyc}", what) for (pyc, _), what in zip(todo, answers, strict=True) if what]
    return problems
