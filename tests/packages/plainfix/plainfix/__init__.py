"""Fixture: annotated but unmarked (no py.typed): only stubgen can type it."""


def double(x: int) -> int:
    return 2 * x


def label(name: str, excited: bool = False) -> str:
    return name + ("!" if excited else "")
