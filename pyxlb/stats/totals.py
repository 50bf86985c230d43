"""Counters of several processes added up (`nbthread`: pyxlb.workers).

Each process keeps its own StatsRegistry of plain ints (nothing shared on the
request path). Whoever shows stats asks for every process's figures as flat
lists (`counter_values`, the same layout everywhere: the registries are built
from the same config), combines them (`Combiner`: sums, and the larger for
peaks) and renders a copy of its registry holding the totals (`with_values`).

Rates (`Rate`: rate, req_rate, conn_rate) are read in each process when its
figures are taken and add up, their maxima take the larger (a floor, as every
peak here); lastsess takes the latest session; the 512-request average times
(`QueueTime`: ctime, rtime, ttime) add their sliding sums and divide by the added
requests (capped at 512): exact until a process has seen 512 requests, then the
figures of the busiest windows, and their maxima take the larger.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyxlb.stats.counters import (
    BackendStats,
    FrontendStats,
    QueueTime,
    Rate,
    ServerStats,
    StatsRegistry,
    loop_ms,
)

# Per slot: (attribute, combined by max) in list order. Attributes not listed
# are the config's (names, weights, limits) or the daemon's (status, check
# columns, and the state clocks its messages move), the same in every process;
# tests/stats/test_stats_totals.py checks that no counter is left out.
# A list-valued counter (`hrsp`) adds up element by element; a `Rate` is two
# figures (its rate now, summed; its maximum, the larger), and so is a
# `QueueTime` (its sliding sum, summed; its maximum, the larger).
_TIMES = (("connect_time", False), ("response_time", False), ("total_time", False))
FRONTEND_COUNTERS = (("connections", False), ("requests", False), ("intercepted", False),
                     ("bad_requests", False), ("bytes_in", False), ("bytes_out", False),
                     ("current", False), ("peak", True), ("denied", False), ("hrsp", False),
                     ("rate", False), ("conn_rate", False), ("req_rate", False),
                     ("client_aborts", False), ("server_aborts", False))
_ABORTS = (("failed_responses", False), ("client_aborts", False), ("server_aborts", False))
BACKEND_COUNTERS = (("requests", False), ("bytes_in", False), ("bytes_out", False),
                    ("hrsp", False), ("unassigned_errors", False), ("denied", False), *_TIMES,
                    ("rate", False), ("last_session", True), *_ABORTS)
SERVER_COUNTERS = (("requests", False), ("retries", False), ("redispatches", False),
                   ("connect_errors", False), ("bytes_in", False), ("bytes_out", False),
                   ("hrsp", False), ("connects", False), ("reuses", False),
                   ("current", False), ("peak", True), *_TIMES, ("rate", False),
                   ("last_session", True), *_ABORTS)


@dataclass(slots=True)
class RateCount:
    """A rate as read in every process, added up: what `Rate` shows."""

    value: int = 0
    top: int = 0

    def read(self, now_ms: int) -> int:
        return self.value


@dataclass(slots=True)
class QueueCount:
    """A queue as the stats read it, added up over processes."""

    length: int = 0
    peak: int = 0


def _slots(registry: StatsRegistry) -> Iterator[FrontendStats | BackendStats | ServerStats]:
    for proxy in registry.proxies:
        if proxy.frontend is not None:
            yield proxy.frontend
        if proxy.backend is not None:
            yield proxy.backend
            yield from proxy.backend.servers


def _layout(slot: FrontendStats | BackendStats | ServerStats) -> tuple[tuple[str, bool], ...]:
    if isinstance(slot, FrontendStats):
        return FRONTEND_COUNTERS
    return BACKEND_COUNTERS if isinstance(slot, BackendStats) else SERVER_COUNTERS

# After a backend's or server's own: its queue's length now and highest, its
# waits' total and longest (QueueTime).
QUEUE_PEAKS = [False, True, False, True]


def counter_values(registry: StatsRegistry, now: float | None = None) -> list[int]:
    """Every counter of the registry, in one flat list; rates read as of ``now``
    (the loop's clock, seconds; by default the present)."""
    values: list[int] = []
    tick = loop_ms(time.monotonic() if now is None else now)
    for slot in _slots(registry):
        for name, _ in _layout(slot):
            value = getattr(slot, name)
            if isinstance(value, list):
                values.extend(value)
            elif isinstance(value, Rate | RateCount):
                values += [value.read(tick), value.top]
            elif isinstance(value, QueueTime):
                values += [value.total, value.top]
            else:
                values.append(value)
        if not isinstance(slot, FrontendStats):
            queue, waits = slot.queue, slot.queue_time
            values += [queue.length if queue is not None else 0,
                       queue.peak if queue is not None else 0, waits.total, waits.top]
    return values


class Combiner:
    """Adds one process's counter list into a total: sums, and for peaks the
    larger (a peak of the sum cannot be known; each process's is a floor)."""

    def __init__(self, registry: StatsRegistry) -> None:
        self.peaks: list[bool] = []
        for slot in _slots(registry):
            for name, peak in _layout(slot):
                value = getattr(slot, name)
                if isinstance(value, Rate | RateCount | QueueTime):
                    self.peaks += [False, True]
                else:
                    self.peaks.extend([peak] * (len(value) if isinstance(value, list) else 1))
            if not isinstance(slot, FrontendStats):
                self.peaks += QUEUE_PEAKS

    def __call__(self, total: list[int], values: list[int]) -> None:
        if len(values) != len(total):
            raise ValueError(f"{len(values)} counters for a layout of {len(total)}")
        for i, value in enumerate(values):
            if self.peaks[i]:
                if value > total[i]:
                    total[i] = value
            else:
                total[i] += value


def with_values(registry: StatsRegistry, values: list[int]) -> StatsRegistry:
    """A copy of `registry` (statuses, weights, order) holding `values`."""
    # Not copied: the live queues (their counts are among `values`) and the hooks,
    # bound to the process's own objects; the copy keeps only `control`.
    memo: dict[int, Any] = {id(slot.queue): None for slot in _slots(registry)
                            if not isinstance(slot, FrontendStats)}
    memo.update({id(registry.refresh): None, id(registry.collect): None,
                 id(registry.control): registry.control})
    totals = copy.deepcopy(registry, memo)
    at = iter(values)
    for slot in _slots(totals):
        for name, _ in _layout(slot):
            value = getattr(slot, name)
            if isinstance(value, list):
                setattr(slot, name, [next(at) for _ in value])
            elif isinstance(value, Rate | RateCount):
                setattr(slot, name, RateCount(next(at), next(at)))
            elif isinstance(value, QueueTime):
                value.total, value.top = next(at), next(at)
            else:
                setattr(slot, name, next(at))
        if not isinstance(slot, FrontendStats):
            slot.queue = QueueCount(next(at), next(at))
            slot.queue_time.total, slot.queue_time.top = next(at), next(at)
    totals.now = time.monotonic()  # lastsess, as of now
    return totals
