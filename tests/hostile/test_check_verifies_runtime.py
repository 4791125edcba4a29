"""Issue 14, item 3: `check` verifies the files that run, and `lock` repairs them.

Every kind of file under `python_wrap/` is tampered with in a copy of a locked project: the generated
shim and sidecar, the compiled module, SKIPPED.txt, an installed package file, the installed RECORD, a
forged bytecode cache (header matching its source, so Python would run it instead), and files dropped
beside them (a `.pth`, a `.py`). `check` must name each one and exit 1; `lock` must repair all of
them, after which `check` passes. Real bytecode caches, written by running the wrappers, are no drift.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import run_cli

PYC_TAG = sys.implementation.cache_tag


def _run_wrapper(root: Path) -> subprocess.CompletedProcess[str]:
    """Import the generated sidecar and call through it, as a Mochi program would, writing bytecode caches."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = ("import sys; sys.path.insert(0, 'python_wrap/typedfix'); import typedfix_externs as t, liarfix, typedfix; "
            "print(t.typedfix_add(1, 2), typedfix.__file__, liarfix.__file__)")
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          check=False)


def _forged_pyc(source: Path, evil: str) -> Path:
    """A bytecode cache for *source* whose header matches it (mtime, size) but whose code is *evil*."""
    st = source.stat()
    data = bytearray(importlib.util.MAGIC_NUMBER)
    data += (0).to_bytes(4, "little") + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    data += (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    data += marshal.dumps(compile(evil, str(source), "exec"))
    pyc = source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(bytes(data))
    return pyc


def test_real_bytecode_caches_are_no_drift(locked: dict[str, Any], copy_project: Any) -> None:
    root = copy_project(locked["root"])
    ran = _run_wrapper(root)
    assert ran.returncode == 0, ran.stderr
    assert list((root / "python_wrap" / "site-packages").rglob("*.pyc")), "the run wrote bytecode caches"
    assert list((root / "python_wrap" / "typedfix").rglob("*.pyc"))
    proc = run_cli("check", str(root), env=locked["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_names_every_tampered_or_added_file_and_lock_repairs_them(locked: dict[str, Any],
                                                                       copy_project: Any) -> None:
    root = copy_project(locked["root"])
    wrap, site = root / "python_wrap", root / "python_wrap" / "site-packages"
    assert run_cli("check", str(root), env=locked["env"]).returncode == 0
    (wrap / "typedfix" / "shim.mochi").write_text((wrap / "typedfix" / "shim.mochi").read_text() + "\n")
    (wrap / "typedfix" / "typedfix_externs.py").write_text(
        (wrap / "typedfix" / "typedfix_externs.py").read_text() + "\nimport os\n")
    (wrap / "liarfix" / "SKIPPED.txt").write_text("nothing to see\n")
    so = wrap / "liarfix" / "_mochi_liarfix.abi3.so"
    blob = bytearray(so.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    so.write_bytes(bytes(blob))
    impl = site / "typedfix" / "_impl.py"
    impl.write_text(impl.read_text() + "\nimport os\n")
    (site / "evil.pth").write_text("import os; os.system('true')\n")
    (site / "helperfix" / "extra.py").write_text("print('hello')\n")
    (wrap / "typedfix" / "sitecustomize.py").write_text("print('hello')\n")
    record = next(site.glob("liarfix-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + "liarfix/added.py,,\n")
    forged = _forged_pyc(site / "liarfix" / "__init__.py", "print('forged')")

    proc = run_cli("check", str(root), env=locked["env"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    for named in ("typedfix: python_wrap/typedfix/shim.mochi: changed",
                  "typedfix: python_wrap/typedfix/typedfix_externs.py: changed",
                  "liarfix: python_wrap/liarfix/SKIPPED.txt: changed",
                  "liarfix: python_wrap/liarfix/_mochi_liarfix.abi3.so: changed",
                  "typedfix: python_wrap/typedfix/sitecustomize.py: not written by the lock",
                  "python_wrap: site-packages/typedfix/_impl.py: changed",
                  "python_wrap: site-packages/evil.pth: not in any locked wheel's RECORD",
                  "python_wrap: site-packages/helperfix/extra.py: not in any locked wheel's RECORD",
                  "lists liarfix/added.py, which liarfix-1.0-py3-none-any.whl does not",
                  f"python_wrap: site-packages/liarfix/__pycache__/__init__.{PYC_TAG}.pyc: is not the compiled form"):
        assert named in out, f"{named!r} not in:\n{out}"
    assert "mochi.lock holds" not in out

    fixed = run_cli("lock", str(root), env=locked["env"])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "up to date, nothing ran" not in fixed.stdout
    again = run_cli("check", str(root), env=locked["env"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (site / "evil.pth").exists() and not forged.exists()
    assert not (wrap / "typedfix" / "sitecustomize.py").exists()
    ran = _run_wrapper(root)
    assert ran.returncode == 0 and ran.stdout.startswith("3 "), ran.stdout + ran.stderr
    assert "forged" not in ran.stdout


def test_a_project_locked_without_build_records_is_told_to_lock_again(locked: dict[str, Any],
                                                                      copy_project: Any) -> None:
    """A project an older version locked has no record of its compiled modules: check says so, lock fixes it."""
    root = copy_project(locked["root"])
    (root / ".mochi" / "compile.json").unlink()
    proc = run_cli("check", str(root), env=locked["env"])
    assert proc.returncode == 1
    assert "python_wrap/typedfix/_mochi_typedfix.abi3.so: no build record" in proc.stdout
    assert "hint: run `mochi-py lock`" in proc.stdout
    assert run_cli("lock", str(root), env=locked["env"]).returncode == 0
    assert run_cli("check", str(root), env=locked["env"]).returncode == 0


def test_wheels_with_data_schemes_and_scripts_verify_as_uv_and_pip_install_them(tmp_path: Path) -> None:
    """`.data/purelib`, scripts, headers, data and entry points land outside the wheel's own paths: both
    installers' trees verify clean, and a changed script is still named."""
    from helpers import build_wheel

    from tasks.build.site import install_site
    from tasks.build.verify import pyc_problems, site_problems
    from tasks.cache import digest_file
    wheel = build_wheel(tmp_path / "wheels", "datafix", "1.0", {
        "datafix/__init__.py": b"x = 1\n", "datafix-1.0.data/purelib/datafix_extra.py": b"y = 2\n",
        "datafix-1.0.data/scripts/datafix-run": b"#!python\nprint(1)\n",
        "datafix-1.0.data/data/share/datafix.txt": b"hello\n", "datafix-1.0.data/headers/datafix.h": b"int x;\n",
        "datafix-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndatafix-cli = datafix:main\n"})
    uv_site = tmp_path / "uv" / "site-packages"
    install_site([wheel], sys.executable, sys.version_info[:3], uv_site, tmp_path / "cache",
                 [digest_file(wheel).blake3])
    pip_site = tmp_path / "pip"
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--no-deps", "--target",
                    str(pip_site), str(wheel)], check=True, capture_output=True)
    assert list(pip_site.rglob("*.pyc")), "pip compiles bytecode, and lists it in RECORD"
    for site in (uv_site, pip_site):
        assert (site / "datafix_extra.py").is_file() and (site / "bin" / "datafix-run").is_file()
        assert site_problems(site, [wheel]) == [] and pyc_problems(site, sys.executable, "site-packages") == []
        (site / "bin" / "datafix-run").write_text("#!/bin/sh\nevil\n")
        assert [p.path for p in site_problems(site, [wheel])] == ["site-packages/bin/datafix-run"]
