"""Counters of several processes added up (`nbthread`: pyxlb.workers).

Each process keeps its own StatsRegistry of plain ints (nothing shared on the
request path). Whoever shows stats asks for every process's figures as flat
lists (`counter_values`, the same layout everywhere: the registries are built
from the same config), combines them (`Combiner`: sums, and the larger for
peaks) and renders a copy of its registry holding the totals (`with_values`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyxlb.stats.counters import BackendStats, FrontendStats, ServerStats, StatsRegistry

# Per slot: (attribute, combined by max) in list order. Attributes not listed
# are the config's (names, weights, limits) or the daemon's (status), the
# same in every process; tests/stats/test_stats_totals.py checks that no
# counter is left out.
# A list-valued counter (`hrsp`) adds up element by element.
FRONTEND_COUNTERS = (("connections", False), ("requests", False), ("intercepted", False),
                     ("bad_requests", False), ("bytes_in", False), ("bytes_out", False),
                     ("current", False), ("peak", True), ("denied", False), ("hrsp", False))
BACKEND_COUNTERS = (("requests", False), ("bytes_in", False), ("bytes_out", False),
                    ("hrsp", False), ("unassigned_errors", False))
SERVER_COUNTERS = (("requests", False), ("retries", False), ("redispatches", False),
                   ("connect_errors", False), ("bytes_in", False), ("bytes_out", False),
                   ("hrsp", False), ("connects", False), ("reuses", False),
                   ("current", False), ("peak", True))


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


def counter_values(registry: StatsRegistry) -> list[int]:
    """Every counter of the registry, in one flat list."""
    values: list[int] = []
    for slot in _slots(registry):
        for name, _ in _layout(slot):
            value = getattr(slot, name)
            if isinstance(value, list):
                values.extend(value)
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
            else:
                setattr(slot, name, next(at))
        if not isinstance(slot, FrontendStats):
            slot.queue = QueueCount(next(at), next(at))
            slot.queue_time.total, slot.queue_time.top = next(at), next(at)
    return totals
