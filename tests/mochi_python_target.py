"""Stand-in for `mochi build --target=python PROGRAM --out DIR` (the Mochi compiler is not installed here).

It writes the Mochi Python-target layout of mochi-language.md §4.1 (the files `writePackageLayout`
of mochi-python's transpiler3 writes): `src/mochi_user_<m>/{__init__,__main__}.py`, `py.typed`,
`generated/__init__.py`, `generated/<m>.py` with a `main()`, and the sidecar copied byte for byte to
`src/mochi_user_<m>_externs.py`. The program is translated for the tiny subset the tests use: `let`
bindings and `print(...)` of calls, whose Mochi spelling is also Python; every `extern python fun`
is imported eagerly from the sidecar, as the real target does.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    program, out = Path(argv[0]), Path(argv[argv.index("--out") + 1])
    module = program.name.removesuffix(".mochi").replace("-", "_")
    source = program.read_text(encoding="utf-8")
    externs = sorted(set(re.findall(r"^extern python fun (\w+)\(", source, re.M)))
    body = []
    for line in source.splitlines():
        let = re.match(r"^let (\w+)(?:: \w+)? = (.+)$", line)
        if let:
            body.append(f"    {let[1]} = {let[2]}")
        elif line.startswith("print("):
            body.append(f"    {line.replace('true', 'True').replace('false', 'False')}")
    pkg = out / "src" / f"mochi_user_{module}"
    (pkg / "generated").mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"from __future__ import annotations\n\nfrom .generated.{module} import main as "
                                     'main\n\n__all__ = ["main"]\n')
    (pkg / "__main__.py").write_text(f"from __future__ import annotations\n\nfrom .generated.{module} import main\n\n"
                                     'if __name__ == "__main__":\n    main()\n')
    (pkg / "py.typed").write_text("")
    (pkg / "generated" / "__init__.py").write_text("")
    imports = f"from mochi_user_{module}_externs import {', '.join(externs)}\n\n\n" if externs else ""
    (pkg / "generated" / f"{module}.py").write_text(
        f"from __future__ import annotations\n\n{imports}def main() -> None:\n"
        + "\n".join(body or ["    pass"]) + "\n")
    sidecar = program.with_name(f"{module}_externs.py")
    if externs:
        shutil.copyfile(sidecar, out / "src" / f"mochi_user_{module}_externs.py")
    (out / "pyproject.toml").write_text(f'[project]\nname = "mochi_user_{module}"\nversion = "0.1.0"\n')
    print(f"emitted {pkg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
