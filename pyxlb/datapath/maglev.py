"""Weighted Maglev lookup tables for the kernel tier's layer-4 backend choice.

This module owns building the table (Eisenbud et al., "Maglev", NSDI 2016, §3.4),
weighted the way Katran's MaglevHashV2 weights it: backends take turns, and on each
turn every backend adds its weight to a running credit and claims one slot each
time the credit reaches the largest weight, so slot counts follow the weights. A
claim walks the backend's own permutation of the slots, (offset + j * skip) mod
size, to the first free one. The kernel hashes a flow to a slot and reads the
backend index stored there.

Permutations come from BLAKE2b of the backend's key, so a table depends only on
its input: the same in every process and run, whatever PYTHONHASHSEED is, and the
same key keeps its permutation when other backends come and go.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

DEFAULT_SIZE = 65537
NO_BACKEND = -1
# Domain separation: another BLAKE2b use of the same key gives unrelated bits.
_PERSON = b"pyxlb-maglev-v1"


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def permutation(key: str | bytes, size: int) -> tuple[int, int]:
    """(offset, skip) of a backend's walk; skip is in 1..size-1, so with a prime
    size the walk visits every slot once. A str key hashes as its UTF-8 bytes."""
    digest = hashlib.blake2b(_key_bytes(key), digest_size=16, person=_PERSON).digest()
    offset = int.from_bytes(digest[:8], "little") % size
    skip = int.from_bytes(digest[8:], "little") % (size - 1) + 1
    return offset, skip


def _claim_order(weights: Sequence[int], size: int) -> list[int]:
    """Which backend claims each slot, in order: the sequence Katran's V2 loop
    produces, computed without running its rounds one by one.

    After r rounds a backend of weight w has claimed floor(r * w / W) slots (W the
    largest weight, so at most one claim a round), i.e. its k-th claim falls in
    round ceil(k * W / w). Sorting claims by (round, backend) gives V2's order; the
    loop itself would spend W / w rounds per claim of a light backend, which is
    millions of idle iterations for weights such as 256 against 1.
    """
    top = max(weights)
    total = sum(weights)
    count = len(weights)
    rounds = -(-size * top // total)  # fewer rounds cannot hold `size` claims
    while sum(rounds * w // top for w in weights) < size:
        rounds += 1
    claims = [
        -(-k * top // w) * count + i
        for i, w in enumerate(weights)
        if w
        for k in range(1, rounds * w // top + 1)
    ]
    claims.sort()
    return [claim % count for claim in claims[:size]]


def build_table(backends: Sequence[tuple[str | bytes, int]], size: int = DEFAULT_SIZE) -> list[int]:
    """The lookup table: slot -> index into `backends`, or NO_BACKEND for every
    slot when no backend has a positive weight (all down: nothing to pick).

    A weight of 0 leaves the backend out while keeping everyone's index, so the
    kernel's backend array need not be renumbered when a server goes down.
    Keys of backends in the table must be distinct.
    """
    if not is_prime(size):
        raise ValueError(f"Maglev table size {size} is not a prime (65537 is the default)")
    weights = [weight for _, weight in backends]
    for index, (key, weight) in enumerate(backends):
        if not isinstance(weight, int) or weight < 0:
            raise ValueError(f"backend {index} ({key!r}): weight {weight!r} is not an int >= 0")
    present = [i for i, w in enumerate(weights) if w]
    if len(present) > size:
        raise ValueError(f"{len(present)} backends do not fit a Maglev table of {size} slots")
    seen: dict[bytes, int] = {}
    for i in present:
        key = _key_bytes(backends[i][0])
        if key in seen:
            raise ValueError(f"backends {seen[key]} and {i} have the same key {key!r}")
        seen[key] = i
    if not present:
        return [NO_BACKEND] * size
    if len(present) == 1:
        return [present[0]] * size

    # Next slot each backend would try: its walk is kept as a position, not as j,
    # so a probe is an add and a compare instead of a multiply and a modulo.
    nexts = [0] * len(backends)
    skips = [0] * len(backends)
    for i in present:
        nexts[i], skips[i] = permutation(backends[i][0], size)
    table = [NO_BACKEND] * size
    for i in _claim_order(weights, size):
        slot, skip = nexts[i], skips[i]
        while table[slot] >= 0:
            slot += skip
            if slot >= size:
                slot -= size
        table[slot] = i
        slot += skip
        nexts[i] = slot - size if slot >= size else slot
    return table
