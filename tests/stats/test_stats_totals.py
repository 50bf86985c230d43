"""Counters of several processes added up (pyxlb.stats.totals), without a network."""

from __future__ import annotations

import dataclasses

import pytest

from pyxlb.config import parse_text
from pyxlb.stats import totals
from pyxlb.stats.counters import BackendStats, FrontendStats, ServerStats, StatsRegistry

CONFIG = """
frontend web
    mode http
    bind *:80
    default_backend app

backend app
    mode http
    server a 10.0.0.1:80 weight 3
    server b 10.0.0.2:80 backup

listen db
    mode http
    bind *:81
    server c 10.0.0.3:80
"""


def registry() -> StatsRegistry:
    config = parse_text(CONFIG, "t.cfg", env={})
    return StatsRegistry.build(config.frontends, config.backends)


class Queue:
    def __init__(self, length: int, peak: int) -> None:
        self.length, self.peak = length, peak


def busy(reg: StatsRegistry, n: int) -> StatsRegistry:
    """`reg` with distinct counts everywhere, scaled by n."""
    fe = reg.frontend("web")
    fe.connections, fe.requests, fe.intercepted, fe.bad_requests = n, 2 * n, 3 * n, 4 * n
    fe.current, fe.peak, fe.hrsp[2] = n, 5 * n, 6 * n
    be = reg.backend("app")
    be.requests = 5 * n
    be.queue = Queue(n, 10 * n)
    be.queue_time.total, be.queue_time.top = 6 * n, 7 * n
    srv = be.server("a")
    srv.requests, srv.retries, srv.redispatches = 8 * n, 9 * n, n
    srv.queue = Queue(2 * n, 3 * n)
    srv.status = "UP 1/2"
    fe.client_aborts, fe.server_aborts = 11 * n, 12 * n
    be.failed_responses, be.client_aborts, be.server_aborts = 13 * n, 14 * n, 15 * n
    srv.failed_responses, srv.client_aborts, srv.server_aborts = 16 * n, 17 * n, 18 * n
    return reg


def test_a_registry_is_copied_with_the_values_it_was_read_into():
    live = busy(registry(), 1)
    copy = totals.with_values(live, totals.counter_values(live))
    assert copy is not live
    assert totals.counter_values(copy) == totals.counter_values(live)
    assert copy.backend("app").server("a").status == "UP 1/2"
    assert copy.backend("app").queue == totals.QueueCount(1, 10)
    assert live.backend("app").queue.peak == 10  # the live queue is left where it was
    copy.frontend("web").requests += 1
    assert live.frontend("web").requests == 2


def test_counts_add_up_and_peaks_take_the_larger():
    reg = registry()
    combine = totals.Combiner(reg)
    total = totals.counter_values(busy(registry(), 1))
    combine(total, totals.counter_values(busy(registry(), 2)))
    shown = totals.with_values(reg, total)
    fe = shown.frontend("web")
    assert (fe.requests, fe.current, fe.peak, fe.hrsp) == (2 + 4, 3, 10, [0, 0, 18, 0, 0, 0])
    be = shown.backend("app")
    assert (be.requests, be.queue.length, be.queue.peak) == (15, 3, 20)
    assert (be.queue_time.total, be.queue_time.top) == (18, 14)
    srv = be.server("a")
    assert (srv.requests, srv.retries, srv.queue.length, srv.queue.peak) == (24, 27, 6, 6)
    assert (fe.client_aborts, fe.server_aborts) == (33, 36)
    assert (be.failed_responses, be.client_aborts, be.server_aborts) == (39, 42, 45)
    assert (srv.failed_responses, srv.client_aborts, srv.server_aborts) == (48, 51, 54)


def test_a_list_of_another_layout_is_refused():
    reg = registry()
    with pytest.raises(ValueError, match="counters for a layout"):
        totals.Combiner(reg)(totals.counter_values(reg), [1, 2, 3])


# Fields that are no counters: the same in every process (config, status).
NOT_COUNTERS = {
    FrontendStats: {"name"},
    BackendStats: {"name", "servers", "queue", "queue_time", "clock"},
    ServerStats: {"name", "sid", "weight", "backup", "status", "maxqueue", "maxconn", "queue",
                  "queue_time", "checked", "clock", "check_cells"},
}


@pytest.mark.parametrize("cls, listed", [
    (FrontendStats, totals.FRONTEND_COUNTERS), (BackendStats, totals.BACKEND_COUNTERS),
    (ServerStats, totals.SERVER_COUNTERS)])
def test_every_counter_of_a_slot_is_added_up(cls, listed):
    """A counter added to a stats slot must be listed in pyxlb.stats.totals, or
    several processes would show one process's figure."""
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields - NOT_COUNTERS[cls] == {name for name, _ in listed}
