"""Fixture: never finishes importing (stubgen's sandbox must stop it)."""

while True:
    pass


def never() -> int:
    return 0
