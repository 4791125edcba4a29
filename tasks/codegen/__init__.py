"""Codegen stage: one distribution's C wrapper, Mochi shim, re-export module and skip report, and the
`mochi-py build` tree of a program (DESIGN §6b: the language view and the target view).
"""
