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
from ..surface.typedesc import mochi_type
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
    totals = [0, 0, 0]
    for s in surfaces:
        translated, skipped, partial = s.counts()
        totals = [totals[0] + translated, totals[1] + skipped, totals[2] + partial]
        bound = {f.item for f in s.functions}
        reasons = Counter(k.reason for k in s.skipped if k.reason != "PartiallyBound" and k.item not in bound)
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) or "none"
        lines.append(f"{s.dist} {s.version} ({s.provenance}): {translated} translated, {skipped} skipped [{by_reason}]"
                     + (f", {partial} partially bound" if partial else ""))
    lines.append(f"total: {len(surfaces)} packages, {totals[0]} translated, {totals[1]} skipped"
                 + (f", {totals[2]} partially bound" if totals[2] else ""))
    return "\n".join(lines)


def _rows(surfaces: list[Surface]) -> list[tuple[str, ...]]:
    """(package, item, status, extern or reason, Mochi signature or detail, suggested override, private) rows."""
    rows = []
    for s in surfaces:
        names = [t.mochi_name for t in s.types]
        for f in s.functions:
            params = ", ".join(f"{p.mochi_name}: {mochi_type(p.type, names)}" for p in f.params)
            sig = f"{f.mochi_name}({params})" + ("" if f.ret == "n" else f": {mochi_type(f.ret, names)}")
            status = "translated" if not f.foreign else "member of a handed-out class"
            rows.append((s.dist, f.item or f.mochi_name, status, f.form or f.kind, sig, "", ""))
        for k in s.skipped:
            private = "private" if k.reason == "PrivateName" else ""
            status = "partially bound" if k.reason == "PartiallyBound" else "skipped"
            rows.append((s.dist, k.item, status, k.reason, k.detail, k.suggestion, private))
    return sorted(rows)


def render_html(surfaces: list[Surface], attestations: list[str] | None = None) -> str:
    """One page: a filterable, sortable table of every item, private names hidden unless asked for;
    *attestations* are `attestation_lines` (who published each locked package, PEP 740)."""
    rows = _rows(surfaces)
    packages = sorted({s.dist for s in surfaces})
    body = "\n".join(
        f'<tr data-pkg="{html.escape(r[0])}"{" data-private" if r[6] else ""}>'
        + "".join(f"<td>{html.escape(c)}</td>" for c in r[:6]) + "</tr>" for r in rows)
    summary = html.escape(render_text(surfaces)).replace("\n", "<br>")
    publishers = "".join(f"<li>{html.escape(line)}</li>" for line in attestations or [])
    if publishers:
        publishers = f'<h2>Publishers (PEP 740 attestations)</h2><ul id="attestations">{publishers}</ul>'
    options = "".join(f'<option value="{html.escape(p)}">{html.escape(p)}</option>' for p in packages)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mochi-pybridge report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}}
th{{background:#eee;cursor:pointer}}input{{width:30em;padding:4px;margin:1em 0}}
td:nth-child(5),td:nth-child(6){{font-family:monospace;font-size:12px}}</style></head>
<body><h1>Python bindings report</h1><p>{summary}</p>{publishers}
<input id="q" placeholder="filter: item, status, reason, signature..." oninput="filter()">
<select id="pkg" onchange="filter()"><option value="">every package</option>{options}</select>
<label><input type="checkbox" id="private" onchange="filter()" style="width:auto"> show private names</label>
<table id="t"><thead><tr><th onclick="sort(0)">package</th><th onclick="sort(1)">item</th>
<th onclick="sort(2)">status</th><th onclick="sort(3)">form or reason</th>
<th onclick="sort(4)">Mochi signature or detail</th><th onclick="sort(5)">suggested override</th>
</tr></thead><tbody>
{body}
</tbody></table>
<script>
function filter() {{
  const words = document.getElementById("q").value.toLowerCase().split(/\\s+/).filter(Boolean);
  const pkg = document.getElementById("pkg").value;
  const priv = document.getElementById("private").checked;
  for (const row of document.querySelectorAll("#t tbody tr")) {{
    const text = row.textContent.toLowerCase();
    const shown = words.every(w => text.includes(w)) && (!pkg || row.dataset.pkg === pkg)
      && (priv || !row.hasAttribute("data-private"));
    row.style.display = shown ? "" : "none";
  }}
}}
let order = [-1, 1];
function sort(col) {{
  order = [col, order[0] === col ? -order[1] : 1];
  const body = document.querySelector("#t tbody");
  const rows = [...body.rows];
  rows.sort((a, b) => order[1] * a.cells[col].textContent.localeCompare(b.cells[col].textContent));
  rows.forEach(r => body.appendChild(r));
}}
filter();
</script></body></html>
"""
