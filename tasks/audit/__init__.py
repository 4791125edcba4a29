"""Audit stage: what each locked wheel's code can do (DESIGN §8), from a static scan and the curated db.
"""
