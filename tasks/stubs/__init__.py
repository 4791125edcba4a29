"""Stub stage: the PEP 561 ladder (DESIGN §5): inline types, `-stubs`, typeshed, then stubgen in a sandbox.

`ladder` walks the tiers and records the provenance, `stubgen` runs mypy's stubgen sandboxed, and
`heuristics` adds the R1 docstring and re-export heuristics of `stubgen.aggressive`.
"""
