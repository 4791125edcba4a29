"""`mochi-py report`: translated and skipped counts by reason per package, and a one-page HTML report.

It reads the surfaces the last lock wrote under `.mochi/deps/`; it changes nothing else.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from ..errors import BridgeError
from ..surface.model import Surface
from .lockfile import read_lock

__all__ = ["load_surfaces", "render_html", "render_text"]


def load_surfaces(root: Path) -> list[Surface]:
    entries = [e for e in read_lock(root / "mochi.lock") if e.direct]
    if not (root / "mochi.lock").is_file():
        raise BridgeError(f"{root / 'mochi.lock'} does not exist", "run `mochi-py lock` first")
    out = []
    for e in entries:
        path = root / ".mochi" / "deps" / e.name / "surface.json"
        if not path.is_file():
            raise BridgeError(f"{path} is missing", "run `mochi-py lock` to regenerate it")
        out.append(Surface.from_dict(json.loads(path.read_text(encoding="utf-8"))))
    return out


def render_text(surfaces: list[Surface]) -> str:
    lines = []
    for s in surfaces:
        reasons = Counter(k.reason for k in s.skipped)
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) or "none"
        lines.append(f"{s.dist} {s.version} ({s.provenance}): {len(s.functions)} translated, "
                     f"{len(s.skipped)} skipped [{by_reason}]")
    total_t = sum(len(s.functions) for s in surfaces)
    total_s = sum(len(s.skipped) for s in surfaces)
    lines.append(f"total: {len(surfaces)} packages, {total_t} translated, {total_s} skipped")
    return "\n".join(lines)


def render_html(surfaces: list[Surface], attestations: list[str] | None = None) -> str:
    """The page; *attestations* are `attestation_lines` (who published each locked package, PEP 740)."""
    rows = []
    for s in surfaces:
        for f in s.functions:
            rows.append((s.dist, f"{f.module}.{f.name}", "translated", f.mochi_name, ""))
        for k in s.skipped:
            rows.append((s.dist, k.item, "skipped", k.reason, k.detail))
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in sorted(rows))
    summary = html.escape(render_text(surfaces)).replace("\n", "<br>")
    publishers = "".join(f"<li>{html.escape(line)}</li>" for line in attestations or [])
    if publishers:
        publishers = f'<h2>Publishers (PEP 740 attestations)</h2><ul id="attestations">{publishers}</ul>'

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mochi-pybridge report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}}th{{background:#eee}}
input{{width:40em;padding:4px;margin:1em 0}}</style></head>
<body><h1>Python bindings report</h1><p>{summary}</p>{publishers}
<input id="q" placeholder="filter: package, item, status, reason..." oninput="filter()">
<table id="t"><thead><tr><th>package</th><th>item</th><th>status</th><th>extern or reason</th><th>detail</th>
</tr></thead><tbody>
{body}
</tbody></table>
<script>
function filter() {{
  const words = document.getElementById("q").value.toLowerCase().split(/\\s+/).filter(Boolean);
  for (const row of document.querySelectorAll("#t tbody tr")) {{
    const text = row.textContent.toLowerCase();
    row.style.display = words.every(w => text.includes(w)) ? "" : "none";
  }}
}}
</script></body></html>
"""
