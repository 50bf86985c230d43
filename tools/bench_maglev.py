#!/usr/bin/env python3
"""Build time of a weighted Maglev table in pure Python, for N backends with equal
and with mixed weights. Prints figures; asserts nothing.

    .venv/bin/python tools/bench_maglev.py [--size 65537] [--rounds 5] [-n 2 10 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

from pyxlb.datapath.maglev import DEFAULT_SIZE, build_table

# Spread across HAProxy's 1..256 weight range, fixed so runs compare.
MIXED = [1, 256, 10, 100, 3, 50]


def build_ms(backends: list[tuple[str, int]], size: int, rounds: int) -> float:
    """Median over rounds of one build's wall time, in ms."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        build_table(backends, size)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, nargs="+", default=[2, 10, 100])
    args = parser.parse_args()

    print(f"table size {args.size}, median of {args.rounds} builds")
    print(f"{'backends':>8}  {'equal weights':>13}  {'mixed 1..256':>12}")
    for n in args.n:
        names = [f"10.0.{i // 256}.{i % 256}:80" for i in range(n)]
        equal = build_ms([(name, 1) for name in names], args.size, args.rounds)
        mixed = build_ms(
            [(name, MIXED[i % len(MIXED)]) for i, name in enumerate(names)], args.size, args.rounds
        )
        print(f"{n:>8}  {equal:>10.1f} ms  {mixed:>9.1f} ms")


if __name__ == "__main__":
    main()
