"""Publish stage (DESIGN §11): compile, sdist, wheel from the sdist, gates, PEP 740 attestations, and an
upload through Trusted Publishing only."""
