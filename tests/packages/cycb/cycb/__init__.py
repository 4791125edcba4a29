"""Fixture: the other half of a dependency cycle."""
