"""Untyped-marker fixture whose import fails in the stubgen sandbox: a dependency it needs is absent."""

import depfix_absent_dependency  # noqa: F401 - not installed anywhere: importing depfix raises


def twice(x: int) -> int:
    return 2 * x
