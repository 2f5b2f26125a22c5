"""Seeded mutations of real files: truncations, byte flips and chunk splices, each named for what it did.

The same seed gives the same files on every machine, so a failure found once can be replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    name: str  # "<source>#<n>:<kind>", replayable from the seed
    data: bytes


def mutations(sources: Sequence[Path], count: int, *, seed: int = 12) -> Iterator[Mutation]:
    """``count`` mutated files drawn from ``sources`` (read once each), deterministic for a ``seed``."""
    rng = random.Random(seed)  # noqa: S311 (reproducible damage, not secrecy)
    # An empty file has no bytes to mutate.
    originals = [(path.name, data) for path in sources if (data := path.read_bytes())]
    kinds = (_truncate, _flip_bytes, _splice, _zero_run, _duplicate_chunk)
    for number in range(count):
        name, data = rng.choice(originals)
        kind = rng.choice(kinds)
        yield Mutation(f"{name}#{number}:{kind.__name__.lstrip('_')}", kind(rng, data, originals))


def _truncate(rng: random.Random, data: bytes, _originals: list) -> bytes:
    # Mostly inside the first few KB, where headers live, sometimes anywhere.
    limit = min(len(data), 4096) if rng.random() < 0.5 else len(data)
    return data[: rng.randrange(0, max(1, limit))]


def _flip_bytes(rng: random.Random, data: bytes, _originals: list) -> bytes:
    mutated = bytearray(data)
    head = min(len(mutated), 2048)
    for _ in range(rng.randint(1, 16)):
        position = rng.randrange(head) if rng.random() < 0.7 else rng.randrange(len(mutated))
        mutated[position] = rng.randrange(256)
    return bytes(mutated)


def _splice(rng: random.Random, data: bytes, originals: list) -> bytes:
    _, other = rng.choice(originals)
    cut = rng.randrange(len(data))
    start = rng.randrange(len(other))
    return data[:cut] + other[start : start + rng.randint(1, 65536)]


def _zero_run(rng: random.Random, data: bytes, _originals: list) -> bytes:
    start = rng.randrange(len(data))
    length = rng.randint(1, 4096)
    return data[:start] + b"\x00" * length + data[start + length :]


def _duplicate_chunk(rng: random.Random, data: bytes, _originals: list) -> bytes:
    start = rng.randrange(min(len(data), 8192))
    chunk = data[start : start + rng.randint(4, 512)]
    insert = rng.randrange(len(data))
    return data[:insert] + chunk + data[insert:]
