"""Surface stage: a distribution's public API mapped through the closed type table (DESIGN §6).

`documents` reads the stub documents, `typetable` maps annotations to type descriptors (`typedesc`, the
encoding the C runtime shares), `items` decides which public names become externs and with which
signatures, and `model` holds the result (`Surface`) and its JSON form.
"""
