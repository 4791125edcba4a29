"""Fixture: reaches for the network when imported (stubgen's sandbox must notice)."""

import socket

try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    pass


def ping(host: str) -> bool:
    return bool(host)
