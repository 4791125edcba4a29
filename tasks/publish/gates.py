"""The gates every file passes before any upload (DESIGN §11); `--dry-run` runs them all and stops.

Each gate is a function of the built files that raises :class:`_Fail` with what is wrong and how to
fix it. All of them run (a failing one does not hide the next); the caller reports every failure
at once. The checks are the real tools: `packaging.metadata` and
`packaging.licenses`, `twine check --strict`, `check-wheel-contents`, `abi3audit`, `auditwheel show`
and an install into a fresh virtual environment.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.metadata import Metadata, parse_email
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..audit.capabilities import scan_wheel
from ..errors import SubprocessFailed
from ..lock.lockfile import LockEntry
from ..run import run
from .plan import PublishPlan, scrubbed_env
from .sdist import WRAPPERS_DIR, requirements

__all__ = ["GATES", "GateResult", "expected_tags", "run_gates"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class _Fail(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


@dataclass(frozen=True, slots=True)
class GateResult:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Files:
    plan: PublishPlan
    sdist: Path
    wheel: Path
    entries: list[LockEntry]


def _tool(module: str, *args: str, timeout: float = 300) -> str:
    """Run a checker that is a dependency of this tool (`python -m <module>`); its output, colourless."""
    out = run([sys.executable, "-m", module, *args], env=scrubbed_env({"NO_COLOR": "1", "TERM": "dumb"}),
              timeout=timeout)
    return _ANSI.sub("", out)


def _json_in(text: str) -> Any:
    """The JSON document in a tool's output (its log lines, merged from stderr, come around it)."""
    m = re.search(r"^\{", text, re.M)
    if m is None:
        return None
    try:
        return json.JSONDecoder().raw_decode(text[m.start():])[0]
    except ValueError:
        return None


def _metadata_texts(f: _Files) -> dict[str, str]:
    with tarfile.open(f.sdist) as tf:
        member = tf.extractfile(f"{f.plan.file_stem}/PKG-INFO")
        pkg_info = member.read().decode() if member else ""
    with zipfile.ZipFile(f.wheel) as zf:
        metadata = zf.read(f"{f.plan.file_stem}.dist-info/METADATA").decode()
    return {f.sdist.name: pkg_info, f.wheel.name: metadata}


def _parsed(name: str, text: str) -> Metadata:
    raw, _ = parse_email(text)
    try:
        return Metadata.from_raw(raw, validate=True)
    except Exception as exc:  # packaging raises an ExceptionGroup of InvalidMetadata
        problems = "; ".join(str(e) for e in getattr(exc, "exceptions", [exc]))
        raise _Fail(f"{name}: invalid core metadata: {problems}", "report this as a bug") from None


def gate_metadata(f: _Files) -> str:
    """Metadata 2.4 with every field an index page and an installer need, the same in both files."""
    p = f.plan
    want = sorted(str(Requirement(r)) for r in requirements(f.entries))
    for name, text in _metadata_texts(f).items():
        meta = _parsed(name, text)
        missing = []
        if tuple(int(x) for x in meta.metadata_version.split(".")) < (2, 4):
            raise _Fail(f"{name}: Metadata-Version {meta.metadata_version}, not 2.4 (PEP 639)", "report this as a bug")
        if canonicalize_name(meta.name) != canonicalize_name(p.name) or str(meta.version) != p.version:
            raise _Fail(f"{name}: it describes {meta.name} {meta.version}, not {p.name} {p.version}",
                        "rebuild: mochi-py publish")
        if not meta.summary:
            missing.append(("Summary", f'add description = "one line about the program" under [package] '
                                       f"({p.at('package.description')})"))
        if not (meta.author or meta.author_email):
            missing.append(("Author-email", f'add authors = [{{ name = "…", email = "…" }}] under [package] '
                                            f"({p.at('package.authors')})"))
        if not meta.license_expression:
            missing.append(("License-Expression", f'add license = "MIT" (an SPDX expression) under [package] '
                                                  f"({p.at('package.license')})"))
        if str(meta.requires_python or "") != str(p.requires_python):
            missing.append(("Requires-Python", f"it must be {p.requires_python!r}, [python].requires-python"))
        if missing:
            raise _Fail(f"{name}: missing {', '.join(m for m, _ in missing)}", "; ".join(fix for _, fix in missing))
        got = sorted(str(r) for r in meta.requires_dist or [])
        if got != want:
            raise _Fail(f"{name}: Requires-Dist {got} is not the locked direct dependencies {want}",
                        "rebuild after `mochi-py lock`: mochi-py publish")
    return "Metadata 2.4, complete, Requires-Dist = the lock's direct dependencies"


def gate_license(f: _Files) -> str:
    """The License-Expression of both files is a canonical SPDX expression, the one mochi.toml declares."""
    p = f.plan
    for name, text in _metadata_texts(f).items():
        raw, _ = parse_email(text)
        expr = str(raw.get("license_expression", ""))
        fix = f'set license = "<SPDX expression>" under [package] ({p.at("package.license")})'
        if not expr:
            raise _Fail(f"{name}: no License-Expression", fix)
        try:
            canonical = str(canonicalize_license_expression(expr))
        except InvalidLicenseExpression as exc:
            raise _Fail(f"{name}: License-Expression {expr!r} is not valid SPDX ({exc})", fix) from None
        if canonical != expr or expr != p.license:
            raise _Fail(f"{name}: License-Expression {expr!r} is not the canonical {canonical!r} mochi.toml "
                        f"declares ({p.license!r})", f"rebuild with license = {canonical!r}: mochi-py publish")
    return f"SPDX {p.license}"


def gate_twine(f: _Files) -> str:
    try:
        _tool("twine", "check", "--strict", str(f.sdist), str(f.wheel))
    except SubprocessFailed as exc:
        raise _Fail(f"twine check --strict: {_ANSI.sub('', exc.output).strip()}",
                    "a long description is required: add a README.md beside mochi.toml or set [package].readme "
                    f"({f.plan.at('package.readme')}); fix what twine reports") from None
    return "twine check --strict passed"


def gate_wheel_contents(f: _Files) -> str:
    from .compiled import toplevel
    top = toplevel(Path(f.plan.state) / "compiled" / "src")
    try:
        _tool("check_wheel_contents", "--toplevel", ",".join(t.rstrip("/") for t in top), str(f.wheel))
    except SubprocessFailed as exc:
        raise _Fail(f"check-wheel-contents: {_ANSI.sub('', exc.output).strip()}",
                    "the compiled tree's src/ must hold only the program's package and modules, with no "
                    "duplicates, bytecode or empty files; fix the compiler's output") from None
    return f"check-wheel-contents passed (top level: {', '.join(top)})"


def expected_tags(policy: str, floor: tuple[int, int], platforms: frozenset[str]) -> frozenset[Tag]:
    """The wheel tags *policy* stands for (PEP 425 / PEP 803), on each of *platforms*."""
    interp = f"cp{floor[0]}{floor[1]}"
    abis = {"abi3": ("abi3",), "abi3t": ("abi3t",), "both": ("abi3", "abi3t")}[policy]
    return frozenset(Tag(interp, abi, plat) for abi in abis for plat in platforms)


def gate_abi_tag(f: _Files) -> str:
    _, _, _, tags = parse_wheel_filename(f.wheel.name)
    want = expected_tags(f.plan.policy, f.plan.floor, frozenset(t.platform for t in tags))
    if tags != want:
        raise _Fail(f"{f.wheel.name} carries {sorted(map(str, tags))}, but abi-tag-policy {f.plan.policy!r} "
                    f"with the ABI floor {f.plan.floor[0]}.{f.plan.floor[1]} stands for {sorted(map(str, want))}",
                    f"check abi-tag-policy ({f.plan.at('publish.abi-tag-policy')}) and rebuild: mochi-py publish")
    return f"{', '.join(sorted(str(t) for t in tags))} ({f.plan.policy})"


def gate_abi3audit(f: _Files) -> str:
    if f.plan.policy == "abi3t":
        return "not applicable: abi3audit does not know the abi3t ABI (PEP 803)"
    try:
        out, failed = _tool("abi3audit", "--strict", "--report", str(f.wheel)), False
    except SubprocessFailed as exc:
        out, failed = _ANSI.sub("", exc.output), True
    report = _json_in(out)
    if report is None:
        raise _Fail(f"abi3audit: {out.strip()[-2000:]}", "rebuild: mochi-py publish")
    audited, bad = [], []
    for spec in report.get("specs", {}).values():
        for so in spec.get("wheel", []):
            res = so["result"]
            audited.append(so["name"])
            if res.get("non_abi3_symbols") or not res.get("is_abi3_baseline_compatible", False) or \
                    res.get("future_abi3_objects"):
                bad.append(f"{so['name']} uses {', '.join(res.get('non_abi3_symbols') or []) or 'a newer ABI'} "
                           f"(baseline {res.get('baseline')}, needs {res.get('computed')})")
    with zipfile.ZipFile(f.wheel) as zf:
        native = sorted(n.rsplit("/", 1)[-1] for n in zf.namelist() if n.endswith(".so") or ".so." in n)
    if bad or failed or sorted(audited) != native:
        raise _Fail("abi3audit: " + ("; ".join(bad) or f"audited {sorted(audited)} of {native}"),
                    "a module outside the stable ABI cannot carry an abi3 tag: remove it from the compiled tree, or "
                    "report it as a bug if it is a generated wrapper")
    return f"{len(audited)} module(s) use only the stable ABI of their tag"


def _manylinux(tag: str) -> tuple[str, tuple[int, int], str] | None:
    m = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)_(.+)", tag)
    if m:
        return m[1], (int(m[2]), int(m[3])), m[4]
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", tag)
    return ("manylinux", _LEGACY[legacy[1]], legacy[2]) if legacy else None


def gate_platform(f: _Files) -> str:
    """Each platform tag promises no more than the modules' symbol versions and libraries allow (auditwheel)."""
    platforms = sorted({t.platform for t in parse_wheel_filename(f.wheel.name)[3]})
    if not all(p.startswith(("linux", "manylinux", "musllinux")) for p in platforms):
        raise _Fail(f"platform tags {platforms}: this check reads Linux (ELF) modules only",
                    "publish from Linux (a manylinux container in CI)")
    try:
        shown = _json_in(_tool("auditwheel", "show", "--json", str(f.wheel)))
    except SubprocessFailed as exc:
        raise _Fail(f"auditwheel show: {exc.output.strip()[-2000:]}", "rebuild: mochi-py publish") from None
    if not isinstance(shown, dict):
        raise _Fail("auditwheel show --json printed no report", "report this as a bug")
    if shown.get("external_libs"):
        raise _Fail(f"the modules need shared libraries no manylinux policy allows: {sorted(shown['external_libs'])}",
                    "the wrappers link only libc; remove what adds a library")
    need = _manylinux(str(shown.get("overall_tag", "")))
    symbols = "; ".join(f"{lib}: {', '.join(sorted(v))}" for lib, v in sorted(shown.get("versioned_symbols",
                                                                                      {}).items()))
    for plat in platforms:
        have = _manylinux(plat)
        if have is None:
            raise _Fail(f"{f.wheel.name} is tagged {plat}, which package indexes refuse",
                        "rebuild: mochi-py publish gives the wheel the manylinux tag its modules allow")
        if need is None or have[0] != need[0] or have[2] != need[2] or have[1] < need[1]:
            raise _Fail(f"{f.wheel.name} claims {plat}, but its modules need {shown.get('overall_tag')} "
                        f"({symbols})", "rebuild on an older system (a manylinux container), or rebuild here: "
                        "mochi-py publish tags the wheel with what its symbols allow")
    return f"{', '.join(platforms)}: consistent with {symbols or 'no versioned symbols'}"


def gate_capabilities(f: _Files) -> str:
    """The package's own code and every locked dependency stay within [python.capabilities] (DESIGN §8)."""
    p = f.plan
    own = [x for x in scan_wheel(f.wheel)
           if not (x.capability == "cextension" and x.file.startswith(f"{p.package}/{WRAPPERS_DIR}/_mochi_"))]
    evidence: dict[str, list[str]] = {}
    for x in own:
        evidence.setdefault(x.capability, []).append(str(x))
    for e in f.entries:
        for cap in e.capabilities:
            evidence.setdefault(cap, []).append(f"{e.name} {e.version}")
    needed = sorted(evidence)
    lines = [f"{cap} = true" for cap in needed]
    if p.capabilities_declared is None:
        raise _Fail(f"mochi.toml declares no [python.capabilities]; the package needs {', '.join(needed) or 'none'}",
                    "declare what it may do: add [python.capabilities] to mochi.toml" + (
                        f" with {', '.join(lines)}" if lines else " (an empty table: it needs none)"))
    over = [c for c in needed if c not in p.capabilities_declared]
    if over:
        raise _Fail("the package needs capabilities [python.capabilities] does not allow: "
                    + "; ".join(f"{c} ({', '.join(evidence[c][:3])})" for c in over),
                    "review the evidence; if acceptable, set " + ", ".join(f"{c} = true" for c in over)
                    + " under [python.capabilities]")
    return f"needs {', '.join(needed) or 'nothing'}; allowed {', '.join(p.capabilities_declared) or 'nothing'}"


def gate_import(f: _Files) -> str:
    """Install the wheel into a fresh virtual environment (dependencies from the project's index), import the
    package and run its console script, with no credential in the environment."""
    from ..resolve.resolver import find_uv
    p = f.plan
    with tempfile.TemporaryDirectory(prefix="mochi-publish-gate.") as tmp:
        scratch = Path(tmp)
        (scratch / "no-config").mkdir()
        uv_env = {k: v for k, v in scrubbed_env().items() if not k.startswith("UV_")}
        uv_env.update(XDG_CONFIG_HOME=str(scratch / "no-config"), XDG_CONFIG_DIRS=str(scratch / "no-config"))
        uv, venv = find_uv(), scratch / "venv"
        python = venv / "bin" / "python"
        indexes = [a for i, url in enumerate(p.indexes) for a in ("--index-url" if i == 0 else "--extra-index-url",
                                                                   url)]
        try:
            run([uv, "venv", "--quiet", "--no-config", "--no-python-downloads", "--python", p.interpreter, str(venv)],
                env=uv_env, timeout=120)
            run([uv, "pip", "install", "--quiet", "--no-config", "--no-python-downloads", "--python", str(python),
                 "--cache-dir", str(Path(p.cache) / "uv"), *indexes, str(f.wheel)], env=uv_env, timeout=600)
        except SubprocessFailed as exc:
            raise _Fail(f"the wheel does not install into a fresh environment: {exc.message}",
                        "check that the locked dependencies are on the project's index") from None
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(scratch), "PYTHONNOUSERSITE": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        try:
            run([str(python), "-I", "-c", f"import {p.package}, {p.sidecar}"], cwd=scratch, env=env, timeout=120)
        except SubprocessFailed as exc:
            raise _Fail(f"the installed package does not import: {exc.message}",
                        "the compiled tree must hold everything the program imports (see the traceback)") from None
        if not p.script:
            return f"{p.package} imports in a fresh environment (no console script)"
        try:
            out = run([str(venv / "bin" / p.script)], cwd=scratch, env=env, timeout=120)
        except SubprocessFailed as exc:
            raise _Fail(f"the console script {p.script} failed: {exc.message}",
                        f"{p.package} must export main() (the Mochi Python target does), or set script = false "
                        f"under [python.publish] ({p.at('publish.script')})") from None
    first = out.strip().splitlines()[:1]
    return f"installs, imports, and `{p.script}` runs" + (f" (printed {first[0][:60]!r}…)" if first else "")


GATES: tuple[tuple[str, Callable[[_Files], str]], ...] = (
    ("metadata", gate_metadata), ("license", gate_license), ("twine-check", gate_twine),
    ("check-wheel-contents", gate_wheel_contents), ("abi-tag", gate_abi_tag), ("abi3audit", gate_abi3audit),
    ("platform-tag", gate_platform), ("capabilities", gate_capabilities), ("import", gate_import))


def run_gates(plan: PublishPlan, sdist: Path, wheel: Path, entries: list[LockEntry]) -> list[GateResult]:
    """Run every gate (a failing one does not stop the others); each result says what it found or how to fix it."""
    files = _Files(plan, sdist, wheel, entries)
    results = []
    for name, gate in GATES:
        try:
            results.append(GateResult(name, True, gate(files)))
        except _Fail as fail:
            results.append(GateResult(name, False, fail.detail, fail.fix))
    return results
