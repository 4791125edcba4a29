"""Resolve stage: the project's inputs (`mochi.toml`, `import python` lines, the target interpreter) to exact pins.

`manifest` parses and validates `mochi.toml`, `edit` changes it keeping its formatting, `sources` reads the
`import python` lines of `.mochi` files, `interpreter` finds the target CPython, and `resolver` pins the
dependencies with uv (pip as the fallback).
"""
