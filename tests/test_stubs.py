"""The stub ladder: py.typed (and partial), <name>-stubs, typeshed types-*, stubgen in its sandbox, and deny."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FixtureIndex, build_wheel, fixture_index, package_files, run_cli, write_project

STUB_INIT = b"def double(x: int) -> int: ...\ndef label(name: str, excited: bool = ...) -> str: ...\n"

ALIAS_RUNTIME = b"def comb(n, k):\n    return n * k\n\ndef pair(x):\n    return (x, x)\n"
ALIAS_STUBS = (b"import typelibfix as tl\n\ntype _Pair[T] = tuple[T, T]\n\n"
               b"def comb(n: tl.ToInt, k: tl.ToInt) -> tl.ToInt: ...\ndef pair[T: int](x: T) -> _Pair[int]: ...\n")
TYPELIB = b'from typing_extensions import TypeAliasType\n\nToInt = TypeAliasType("ToInt", TO)\n'


@pytest.fixture(scope="module")
def stub_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureIndex]:
    out = tmp_path_factory.mktemp("stubwheels")
    wheels = [
        build_wheel(out, "untypedfix", "1.2.0", {"untypedfix/__init__.py": b"def double(x):\n    return 2 * x\n"}),
        build_wheel(out, "untypedfix-stubs", "1.2.3", {"untypedfix-stubs/__init__.pyi": STUB_INIT}),
        build_wheel(out, "untypedfix-stubs", "9.0", {"untypedfix-stubs/__init__.pyi": b"def other() -> int: ...\n"}),
        build_wheel(out, "six", "1.16.0", {"six.py": b"def ensure_str(s, encoding='utf-8'):\n    return s\n"}),
        build_wheel(out, "types-six", "1.16.21.20241105", {
            "six-stubs/__init__.pyi": b"def ensure_str(s: str, encoding: str = ...) -> str: ...\n",
            "six-stubs/METADATA.toml": b'version = "1.16.*"\n'}),
        build_wheel(out, "partialfix", "1.0", {
            "partialfix/__init__.py": b"def inline_one(x: int) -> int:\n    return x\n",
            "partialfix/extra.py": b"def more(x: int) -> int:\n    return x\n",
            "partialfix/py.typed": b"partial\n"}),
        build_wheel(out, "partialfix-stubs", "1.0",
                    {"partialfix-stubs/__init__.pyi": b"def from_stubs() -> str: ...\n"}),
        *(build_wheel(out, n, "1.0", package_files(n)) for n in ("plainfix", "netfix", "loopfix", "homefix",
                                                                  "docfix", "depfix")),
        # scipy-stubs' shape: the stubs annotate with the aliases of a typed library they require (optype),
        # which the package itself does not require; and they use PEP 695 syntax
        build_wheel(out, "aliasfix", "1.0", {"aliasfix/__init__.py": ALIAS_RUNTIME}),
        build_wheel(out, "aliasfix-stubs", "1.0", {"aliasfix-stubs/__init__.pyi": ALIAS_STUBS},
                    requires=("typelibfix>=1,<2",)),
        build_wheel(out, "typelibfix", "1.5", {"typelibfix/__init__.py": TYPELIB.replace(b"TO", b"int"),
                                               "typelibfix/py.typed": b""}),
        build_wheel(out, "typelibfix", "2.0", {"typelibfix/__init__.py": TYPELIB.replace(b"TO", b"str"),
                                               "typelibfix/py.typed": b""}),
        # msgpack's shape: no types anywhere, stubgen leaves the parameters and the return unannotated
        build_wheel(out, "barefix", "1.0", {"barefix/__init__.py": b"def packb(o, **kwargs):\n    return repr(o)\n"}),
    ]
    idx = fixture_index(wheels)
    yield idx
    idx.stop()


def _lock(tmp_path: Path, idx: FixtureIndex, deps: str, python: str = "", env: dict[str, str] | None = None,
          ok: bool = True) -> Any:
    root = write_project(tmp_path / "proj", deps, idx.url, python)
    proc = run_cli("lock", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache"), **(env or {})})
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, proc


def _entry(root: Path, name: str) -> dict[str, Any]:
    return next(p for p in tomllib.loads((root / "mochi.lock").read_text())["python-package"] if p["name"] == name)


def test_stubs_distribution_matching_the_version(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'untypedfix = "1.2.0"')
    entry = _entry(root, "untypedfix")
    assert entry["stub-provenance"] == "untypedfix-stubs"
    assert entry["stub-distribution"] == "untypedfix-stubs untypedfix_stubs-1.2.3-py3-none-any.whl"
    shim = (root / "python_wrap" / "untypedfix" / "shim.mochi").read_text()
    assert "extern python fun untypedfix_double(x: int): int" in shim
    assert run_cli("check", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")}).returncode == 0


def test_typeshed_types_distribution_through_mypy_stubinfo(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'six = "1.16.0"')
    entry = _entry(root, "six")
    assert entry["stub-provenance"] == "typeshed"
    assert entry["stub-distribution"].startswith("types-six types_six-1.16.21.20241105")
    shim = (root / "python_wrap" / "six" / "shim.mochi").read_text()
    assert "extern python fun six_ensure_str(s: string): string" in shim
    assert "extern python fun six_ensure_str_with(s: string, encoding: string): string" in shim


def test_partial_inline_types_merge_with_the_stubs(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'partialfix = "1.0"')
    assert _entry(root, "partialfix")["stub-provenance"] == "partialfix-stubs"
    stubs = sorted(p.relative_to(root / ".mochi/deps/partialfix/stubs").as_posix()
                   for p in (root / ".mochi/deps/partialfix/stubs").rglob("*.py*"))
    assert stubs == ["partialfix/__init__.pyi", "partialfix/extra.py"]  # the stubs win, the inline rest fills in
    shim = (root / "python_wrap" / "partialfix" / "shim.mochi").read_text()
    assert "partialfix_from_stubs" in shim and "partialfix_inline_one" not in shim


def test_stubgen_types_an_unmarked_package(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'plainfix = "1.0"')
    assert _entry(root, "plainfix")["stub-provenance"] == "stubgen"
    shim = (root / "python_wrap" / "plainfix" / "shim.mochi").read_text()
    assert "extern python fun plainfix_double(x: int): int" in shim
    assert "extern python fun plainfix_label(name: string): string" in shim
    assert "extern python fun plainfix_label_with(name: string, excited: bool): string" in shim


def test_deny_makes_stubgen_a_hard_error(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, proc = _lock(tmp_path, stub_index, 'plainfix = "1.0"', 'stubgen = { fallback = "deny" }\n', ok=False)
    assert proc.returncode == 2
    assert 'ships no types, no stub distribution was found, and [python].stubgen.fallback is "deny"' in proc.stderr
    assert not (root / "mochi.lock").exists()


def test_sandbox_reports_import_time_network(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, proc = _lock(tmp_path, stub_index, 'netfix = "1.0"')
    skipped = (root / "python_wrap" / "netfix" / "SKIPPED.txt").read_text()
    assert "netfix\tImportTimeNetwork\tthe package reached for the network" in skipped
    assert "  netfix: 1 module(s) without stubs: importing them reached for the network (ImportTimeNetwork" \
        in proc.stdout
    assert _entry(root, "netfix")["translated"] == 0


def test_sandbox_stops_an_import_that_never_ends(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'loopfix = "1.0"', env={"MOCHI_STUBGEN_TIMEOUT": "3"})
    skipped = (root / "python_wrap" / "loopfix" / "SKIPPED.txt").read_text()
    assert "loopfix\tNoStubs\tstub generation timed out" in skipped


def test_sandbox_hides_home(tmp_path: Path, stub_index: FixtureIndex) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text("do not read")
    root, _ = _lock(tmp_path, stub_index, 'homefix = "1.0"', env={"HOME": str(home)})
    shim = (root / "python_wrap" / "homefix" / "shim.mochi").read_text()
    assert "homefix_sealed" in shim and "homefix_leaked" not in shim


def test_aggressive_stubgen_reads_docstring_types_and_stdlib_reexports(stub_index: FixtureIndex,
                                                                       tmp_path: Path) -> None:
    plain, _ = _lock(tmp_path / "plain", stub_index, 'docfix = "1.0"')
    root, _ = _lock(tmp_path / "aggressive", stub_index, 'docfix = "1.0"', "stubgen = { aggressive = true }\n")
    before = (plain / "python_wrap/docfix/shim.mochi").read_text()
    shim = (root / "python_wrap/docfix/shim.mochi").read_text()
    # stubgen alone: no annotations, so values only (PEP 484: a missing annotation is Any)
    assert "extern python fun docfix_scale(x: value): value" in before
    assert "docfix_scale_with(x: float" not in before and "docfix_label(name: string" not in before
    for line in ("extern python fun docfix_scale_with(x: float, factor: float): float",  # Sphinx
                 "extern python fun docfix_label(name: string, count_: int): string",  # Google (count is a builtin)
                 "extern python fun docfix_options_with(level: int, verbose: bool?): map<string, int>",  # numpydoc
                 # re-exported from os.path, typed by typeshed: AnyOrLiteralStr's constraints as a sum type
                 "extern python fun docfix_basename(p: string): docfix_Str_or_Bytes",
                 "extern python fun docfix_basename_with(p: docfix_Str_or_Bytes): docfix_Str_or_Bytes"):
        assert line in shim, shim
    assert "docfix_basename" not in before
    assert "extern python fun docfix_vague(thing: value): value" in shim  # "a frobnicator" is not in the vocabulary
    assert _entry(root, "docfix")["stub-provenance"] == "stubgen"
    assert _entry(root, "docfix")["stub-sha256"] != _entry(plain, "docfix")["stub-sha256"]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import _mochi_docfix as m; "
            "import docfix_externs as x; "
            "print(m.docfix_options_with(3, True), m.docfix_scale_with(1.5, 2.0), "
            "m.docfix_basename_with(x.docfix_Str_or_Bytes_Str(v='/a/b.txt')).v)")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(root / "python_wrap/docfix")], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(maxsplit=3) == ["{'level':", "3,", "'verbose':", "1} 3.0 b.txt"]


def test_a_package_whose_import_fails_in_the_sandbox_is_stubbed_from_its_sources(stub_index: FixtureIndex,
                                                                                   tmp_path: Path) -> None:
    root, _ = _lock(tmp_path, stub_index, 'depfix = "1.0"')
    assert _entry(root, "depfix")["stub-provenance"] == "stubgen"
    assert "extern python fun depfix_twice(x: int): int" in (root / "python_wrap/depfix/shim.mochi").read_text()


def test_typed_requirements_of_a_stub_distribution_are_read_beside_the_stubs(tmp_path: Path,
                                                                             stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path, stub_index, 'aliasfix = "1.0"')
    entry = _entry(root, "aliasfix")
    assert entry["stub-provenance"] == "aliasfix-stubs"
    shim = (root / "python_wrap" / "aliasfix" / "shim.mochi").read_text()
    # the aliases resolve through the requirement's own documents, the version its specifier allows (1.5: int)
    assert "extern python fun aliasfix_comb(n: int, k: int): int" in shim
    assert "extern python fun aliasfix_pair(x: int): aliasfix_Tuple_Int_Int" in shim  # PEP 695 read on any parser
    stubs = json.loads((root / ".mochi/deps/aliasfix/stubs.json").read_text())
    wheel = "typelibfix-1.5-py3-none-any.whl"
    digest = hashlib.sha256(stub_index.files[wheel]).hexdigest()
    assert stubs["stub_requirements"] == [f"typelibfix 1.5 {wheel} {digest}"]
    assert "_mochi_deps/typelibfix/__init__.py" in stubs["files"]  # so the lock's stub-sha256 covers them
    # stub documents only: not a locked package, not installed next to the package
    names = [p["name"] for p in tomllib.loads((root / "mochi.lock").read_text())["python-package"]]
    assert names == ["aliasfix"]
    assert not list((root / "python_wrap" / "site-packages").glob("typelibfix*"))
    assert run_cli("check", str(root), env={"MOCHI_CACHE_DIR": str(tmp_path / "cache")}).returncode == 0


def test_unannotated_parameters_and_returns_cross_as_values(tmp_path: Path, stub_index: FixtureIndex) -> None:
    root, _ = _lock(tmp_path / "handle", stub_index, 'barefix = "1.0"')
    assert _entry(root, "barefix")["stub-provenance"] == "stubgen"
    shim = (root / "python_wrap" / "barefix" / "shim.mochi").read_text()
    assert "extern python fun barefix_packb(o: value): value" in shim  # PEP 484: missing means Any
    strict, _ = _lock(tmp_path / "refuse", stub_index, 'barefix = "1.0"', 'any = "refuse"\n')
    assert "barefix_packb" not in (strict / "python_wrap" / "barefix" / "shim.mochi").read_text()
    assert "barefix.packb\tUnsupportedTypingConstruct\tno return annotation" in (
        strict / "python_wrap" / "barefix" / "SKIPPED.txt").read_text()


@pytest.mark.parametrize(("source", "expected"), [
    ("type A = int | str\n", "A: TypeAlias = int | str\n"),
    ("type P[T, *Ts] = tuple[T, *Ts]\n", "P: TypeAlias = tuple[T, *Ts]\n"),
    ("class C[T: float = int](B[T]):\n    def m[S](self, x: S) -> S: ...\n",
     "class C(B[T]):\n    def m(self, x: S) -> S: ...\n"),
    ("x = d[type]\ntype = 3\n", "x = d[type]\ntype = 3\n"),
])
def test_pep695_syntax_is_rewritten_for_an_older_parser(source: str, expected: str) -> None:
    import ast

    from tasks.surface.pep695 import downlevel
    out = downlevel(source)
    assert out.startswith(expected)
    ast.parse(out)
    if "[" in source.split("=", maxsplit=1)[0] or "class" in source:
        assert "TypeVar(" in out
    if "class C" in source:
        assert "T = TypeVar('T', bound=float, default=int)" in out and "S = TypeVar('S')" in out
