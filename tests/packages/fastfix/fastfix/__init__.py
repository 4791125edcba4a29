"""Fixture: containers of scalars crossing both ways, for the runtime's fast paths (wrappers/rt_convert.c).

Each `give_*` returns `SAMPLES[key]` (a value another reference keeps alive: the wrapper must copy
it), each `fresh_*` a new container of the sample's items (its only reference is the wrapper's), and
each `take_*` reports what Python received, so a test can set any value, good or bad, on either side.
"""

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SAMPLES: dict[str, Any] = {}


@dataclass
class Row:
    name: str
    qty: int
    tags: list[str]


def give_ints(key: str) -> list[int]:
    return SAMPLES[key]


def give_floats(key: str) -> list[float]:
    return SAMPLES[key]


def give_bools(key: str) -> list[bool]:
    return SAMPLES[key]


def give_opt_ints(key: str) -> list[int | None]:
    return SAMPLES[key]


def give_tuple(key: str) -> tuple[int, ...]:
    return SAMPLES[key]


def give_seq(key: str) -> Sequence[str]:
    return SAMPLES[key]


def give_map(key: str) -> dict[str, int]:
    return SAMPLES[key]


def give_int_map(key: str) -> dict[int, float]:
    return SAMPLES[key]


def give_set(key: str) -> set[str]:
    return SAMPLES[key]


def give_float_set(key: str) -> set[float]:
    return SAMPLES[key]


def give_nested(key: str) -> list[dict[str, int]]:
    return SAMPLES[key]


def give_row(key: str) -> Row:
    return SAMPLES[key]


def fresh_ints(key: str) -> list[int]:
    return list(SAMPLES[key])


def fresh_floats(key: str) -> list[float]:
    return list(SAMPLES[key])


def fresh_map(key: str) -> dict[str, int]:
    return dict(SAMPLES[key])


def fresh_int_map(key: str) -> dict[int, float]:
    return dict(SAMPLES[key])


def fresh_set(key: str) -> set[str]:
    return set(SAMPLES[key])


def fresh_float_set(key: str) -> set[float]:
    return set(SAMPLES[key])


def weak_set(key: str) -> set[str]:
    """A new set a weak reference (kept in SAMPLES["weak"]) still reaches: the wrapper must copy it."""
    out = set(SAMPLES[key])
    SAMPLES["weak"] = weakref.ref(out)
    return out


def take_ints(xs: list[int]) -> list[str]:
    SAMPLES["taken"] = xs
    return [type(x).__name__ for x in xs]


def take_floats(xs: list[float]) -> list[str]:
    return [f"{type(x).__name__}:{x!r}" for x in xs]


def take_strs(xs: list[str]) -> int:
    return len(xs)


def take_map(m: dict[str, float]) -> list[str]:
    SAMPLES["taken"] = m
    return sorted(f"{k}={type(v).__name__}" for k, v in m.items())


def take_int_map(m: dict[int, str]) -> int:
    return len(m)


def take_set(s: set[int]) -> list[int]:
    return sorted(s)


def take_row(r: Row) -> int:
    return len(r.tags)


def dedupe(words: set[str]) -> set[str]:
    """A set in, a new set out (bench/call_overhead.py's set row)."""
    return set(words)
