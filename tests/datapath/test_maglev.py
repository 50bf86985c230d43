"""Weighted Maglev table building: balance, disruption, determinism, validation."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyxlb.datapath.maglev import DEFAULT_SIZE, NO_BACKEND, build_table, is_prime, permutation

M = DEFAULT_SIZE


def servers(weights: list[int]) -> list[tuple[str, int]]:
    return [(f"10.0.{i // 256}.{i % 256}:80", w) for i, w in enumerate(weights)]


def katran_v2(backends: list[tuple[str, int]], size: int) -> list[int]:
    """Katran's MaglevHashV2 loop, round by round, as the reference for the order
    in which build_table claims slots."""
    live = [(i, w, *permutation(k, size)) for i, (k, w) in enumerate(backends) if w]
    top = max(w for _, w, _, _ in live)
    credit = [0] * len(live)
    step = [0] * len(live)
    table = [NO_BACKEND] * size
    claimed = 0
    while True:
        for n, (i, w, offset, skip) in enumerate(live):
            credit[n] += w
            if credit[n] < top:
                continue
            credit[n] -= top
            slot = (offset + step[n] * skip) % size
            while table[slot] >= 0:
                step[n] += 1
                slot = (offset + step[n] * skip) % size
            table[slot] = i
            step[n] += 1
            claimed += 1
            if claimed == size:
                return table


@pytest.mark.parametrize(
    ("weights", "size"),
    [([1, 1, 1], 13), ([3, 1, 2, 0, 5], 101), ([256, 1, 1, 7], 1009), ([5, 3, 9, 1, 2, 8], M)],
)
def test_claims_slots_in_katran_v2_order(weights: list[int], size: int) -> None:
    backends = servers(weights)
    assert build_table(backends, size) == katran_v2(backends, size)


@pytest.mark.parametrize(
    "weights",
    [
        [1] * 10,
        [1, 2, 3, 4],
        [256] + [1] * 49,
        [100, 50, 25, 10, 1],
        [(i * 37) % 4 + 1 for i in range(100)],
    ],
    ids=["equal", "1-2-3-4", "256-vs-1s", "halving", "100-mixed"],
)
def test_slot_shares_are_within_one_percent_of_the_weights(weights: list[int]) -> None:
    # Every share here is 200+ slots, so 1% of it is more than a slot of rounding;
    # the property below bounds the error for any mix.
    counts = Counter(build_table(servers(weights)))
    total = sum(weights)
    for i, w in enumerate(weights):
        expected = M * w / total
        assert abs(counts[i] - expected) <= 0.01 * expected, (i, w, counts[i], expected)


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=256), min_size=2, max_size=40).filter(any),
    size=st.sampled_from([101, 1009, 4099, 65537]),
)
def test_each_backend_is_within_the_v2_bound_of_its_share(weights: list[int], size: int) -> None:
    # Each backend ends a whole or a partial round short of its exact share, so it
    # is off by at most 2 + N * w / sum(w) slots.
    counts = Counter(build_table(servers(weights), size))
    total, n = sum(weights), sum(1 for w in weights if w)
    for i, w in enumerate(weights):
        assert abs(counts[i] - size * w / total) <= 2 + n * w / total
    assert sum(counts.values()) == size


def owners(backends: list[tuple[str, int]], table: list[int]) -> list[str]:
    return [backends[i][0] for i in table]


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50, 100])
def test_removing_one_of_n_moves_at_most_a_nth_plus_one_percent(n: int) -> None:
    backends = servers([1] * n)
    before = owners(backends, build_table(backends))
    for gone in sorted({0, n // 2, n - 1}):
        rest = backends[:gone] + backends[gone + 1 :]
        after = owners(rest, build_table(rest))
        moved = sum(a != b for a, b in zip(before, after, strict=True))
        assert moved <= (1 / n + 0.01) * M, (gone, moved / M)


def test_a_weight_0_backend_moves_about_its_share_and_keeps_indices() -> None:
    weights = list(range(1, 11))
    table = build_table(servers(weights))
    for gone, w in enumerate(weights):
        off = build_table(servers([0 if i == gone else x for i, x in enumerate(weights)]))
        assert gone not in off
        moved = sum(a != b for a, b in zip(table, off, strict=True))
        assert moved <= (w / sum(weights) + 0.01) * M, (gone, moved / M)


def test_weight_0_is_absent() -> None:
    table = build_table(servers([0, 2, 0, 1, 0]))
    assert set(table) == {1, 3}
    # Same table as without the absent ones, once indices are mapped back.
    assert [[1, 3][i] for i in build_table([("10.0.0.1:80", 2), ("10.0.0.3:80", 1)])] == table


def test_no_backend_with_weight_fills_every_slot_with_no_backend() -> None:
    assert build_table([]) == [NO_BACKEND] * M
    assert build_table(servers([0, 0]), 13) == [NO_BACKEND] * 13


def test_a_single_backend_takes_every_slot() -> None:
    assert build_table(servers([0, 7, 0]), 13) == [1] * 13


def test_two_builds_are_identical() -> None:
    backends = servers([(i * 7) % 11 + 1 for i in range(100)])
    assert build_table(backends) == build_table(list(backends))


def digest(table: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, table)).encode()).hexdigest()


def test_a_build_in_another_process_is_identical() -> None:
    backends = servers([(i * 7) % 11 + 1 for i in range(100)])
    code = (
        "import hashlib\n"
        "from pyxlb.datapath.maglev import build_table\n"
        f"t = build_table({backends!r})\n"
        "print(hashlib.sha256(','.join(map(str, t)).encode()).hexdigest())\n"
    )
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == digest(build_table(backends))


def test_permutations_are_pinned() -> None:
    # Changing the hash reshuffles every table on upgrade: do it on purpose only.
    assert build_table([("a", 1), ("b", 1), (b"c", 2)], 13) == [
        1, 1, 2, 0, 2, 2, 2, 2, 2, 0, 0, 1, 2,
    ]  # fmt: skip
    assert permutation("a", M) == permutation(b"a", M)


@pytest.mark.parametrize("size", [0, 1, 4, 9, 65536, 65535, -7])
def test_size_must_be_prime(size: int) -> None:
    with pytest.raises(ValueError, match="not a prime"):
        build_table(servers([1, 1]), size)


@pytest.mark.parametrize("size", [2, 3, 13, 251, 65537, 1_000_003])
def test_prime_sizes_are_accepted(size: int) -> None:
    assert is_prime(size)
    assert len(build_table(servers([1, 1]), size)) == size


@pytest.mark.parametrize("weight", [-1, 1.5, "1"])
def test_weights_must_be_non_negative_ints(weight: object) -> None:
    with pytest.raises(ValueError, match=r"backend 1 .* weight"):
        build_table([("a", 1), ("b", weight)])  # type: ignore[list-item]


def test_keys_in_the_table_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="same key"):
        build_table([("a", 1), ("b", 1), ("a", 2)])
    with pytest.raises(ValueError, match="same key"):
        build_table([("é", 1), ("é".encode(), 1)])
    assert set(build_table([("a", 1), ("b", 1), ("a", 0)], 13)) == {0, 1}


def test_more_backends_than_slots_is_an_error() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        build_table(servers([1] * 14), 13)
