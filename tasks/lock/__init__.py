"""Lock stage: the capability gates, `mochi.lock` and `pylock.toml`; `check` (the lock against reality) and
`report` (what the surfaces translated and skipped).
"""
