"""`python -m tasks` runs the mochi-py command line."""

from .cli import entrypoint

entrypoint()
