"""Fixture: a package built on trio (R12): its async items must be refused."""


async def fetch(url: str) -> str:
    import trio

    await trio.sleep(0)
    return url


def plain(x: int) -> int:
    return x
