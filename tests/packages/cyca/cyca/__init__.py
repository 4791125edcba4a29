"""Fixture: half of a dependency cycle."""
