"""Fetch stage: pinned wheels from the index (PEP 691/503) into the content-addressed cache, hash-verified.

`index` is the simple-index client and wheel selection, `wheel` reads archives defensively, and
`download` fetches (or builds, for path and git sources) each pinned wheel.
"""
