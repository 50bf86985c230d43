"""The stats' rates, average times and lastsess (pyxlb.stats.counters), as HAProxy
2.6 keeps them, without a network: arithmetic at given instants."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.stats import totals
from pyxlb.stats.counters import (
    TIME_STATS_SAMPLES,
    BackendStats,
    Rate,
    ServerStats,
    StatsRegistry,
    add_times,
    loop_ms,
)
from pyxlb.stats.page import CSV_FIELDS, render_csv

CONFIG = """
frontend fe
    mode http
    bind *:80
    default_backend be

backend be
    mode http
    server a 10.0.0.1:80
    server b 10.0.0.2:80
"""


def registry() -> StatsRegistry:
    config = parse_text(CONFIG, "t.cfg", env={})
    return StatsRegistry.build(config.frontends, config.backends)


def rows(reg: StatsRegistry) -> dict[str, dict[str, str]]:
    out = {}
    for line in render_csv(reg).splitlines()[1:]:
        cells = dict(zip(CSV_FIELDS, line.split(",")[:-1], strict=True))
        out[cells["svname"]] = cells
    return out


def test_a_rate_counts_the_events_of_the_last_second_and_keeps_the_busiest() -> None:
    rate = Rate()
    for _ in range(5):
        rate.hit(10_000)
    assert (rate.read(10_000), rate.top) == (5, 5)
    # The next period: 2 events; the window still holds most of the previous 5.
    rate.hit(11_000)
    rate.hit(11_000)
    assert rate.read(11_000) == 5 + 2
    assert rate.read(11_500) == 2 + 5 // 2
    assert rate.top == 5  # the largest count of one period, not the sliding read
    # Two quiet seconds later nothing is recent; the maximum stays.
    assert (rate.read(14_000), rate.top) == (0, 5)
    for _ in range(7):
        rate.hit(20_000)
    assert (rate.read(20_000), rate.top) == (7, 7)


def test_a_rate_below_two_per_second_shows_the_last_count() -> None:
    rate = Rate()
    rate.hit(10_000)
    # HAProxy's flapping correction: 1 event in the previous period reads 1.
    assert [rate.read(t) for t in (10_000, 10_999, 11_500)] == [1, 1, 1]


def test_loop_times_become_the_same_ticks_as_ms_tick() -> None:
    assert loop_ms(12.3456) == 12_345
    assert loop_ms(2**32 / 1000 + 1.0) == 1000  # wraps as a u32


def test_times_average_the_last_512_requests_and_keep_the_longest() -> None:
    srv = ServerStats("a", 1, 1, False)
    for ms in (10, 20, 31):
        srv.requests += 1
        add_times(srv, ms, 2 * ms, 3 * ms)
    assert (srv.connect_time.average(3), srv.response_time.average(3),
            srv.total_time.average(3)) == (21, 41, 61)  # rounded up, as swrate_avg
    assert (srv.connect_time.top, srv.response_time.top, srv.total_time.top) == (31, 62, 93)
    # Past the window, each new sample takes the place of an average one.
    for _ in range(TIME_STATS_SAMPLES):
        srv.requests += 1
        add_times(srv, 100, 100, 100)
    avg = srv.connect_time.average(srv.requests)
    assert 90 < avg <= 100
    assert srv.connect_time.top == 100


def test_the_page_shows_rates_times_and_lastsess_as_of_its_now() -> None:
    reg = registry()
    fe, be = reg.frontend("fe"), reg.backend("be")
    a = be.server("a")
    for _ in range(3):
        fe.rate.hit(loop_ms(50.0))
        fe.conn_rate.hit(loop_ms(50.0))
    for _ in range(4):
        fe.req_rate.hit(loop_ms(50.2))
    for slot in (be, a):
        slot.requests += 1
        slot.session(50.2)
        add_times(slot, 1, 4, 7)
    reg.now = 57.9
    by = rows(reg)
    front, srv_a, srv_b, back = by["FRONTEND"], by["a"], by["b"], by["BACKEND"]
    # 7 s later the rates read 0; the maxima stay.
    assert [front[f] for f in ("rate", "rate_max", "conn_rate", "conn_rate_max",
                               "req_rate", "req_rate_max")] == ["0", "3", "0", "3", "0", "4"]
    for row in (srv_a, back):
        assert [row[f] for f in ("rate", "rate_max", "lastsess", "ctime", "rtime", "ttime",
                                 "ctime_max", "rtime_max", "ttime_max")] == [
            "0", "1", "7", "1", "4", "7", "1", "4", "7"]
    # A server never used: lastsess -1, times 0, as HAProxy shows it.
    assert [srv_b[f] for f in ("rate", "rate_max", "lastsess", "ctime", "rtime", "ttime")] == [
        "0", "0", "-1", "0", "0", "0"]
    reg.now = 50.5
    assert rows(reg)["FRONTEND"]["req_rate"] == "4"
    assert rows(reg)["a"]["lastsess"] == "0"


def test_tcp_mode_leaves_rtime_empty() -> None:
    config = parse_text(CONFIG.replace("mode http", "mode tcp"), "t.cfg", env={})
    reg = StatsRegistry.build(config.frontends, config.backends)
    by = rows(reg)
    assert by["BACKEND"]["rtime"] == by["BACKEND"]["rtime_max"] == ""
    assert by["BACKEND"]["ttime"] == "0"


def test_processes_add_their_rates_and_times_and_take_the_latest_session() -> None:
    regs = [registry(), registry()]
    for n, reg in enumerate(regs, start=1):
        fe = reg.frontend("fe")
        fe.req_rate.top = 10 * n
        be: BackendStats = reg.backend("be")
        be.last_session = 100 * n
        a = be.server("a")
        a.requests = n
        add_times(a, n, n, n)
    for reg in regs:
        for _ in range(3):
            reg.frontend("fe").req_rate.hit(loop_ms(30.0))
    combine = totals.Combiner(regs[0])
    total = totals.counter_values(regs[0], 30.5)
    combine(total, totals.counter_values(regs[1], 30.5))
    sums = totals.with_values(regs[0], total)
    fe = sums.frontend("fe")
    assert fe.req_rate.top == 20
    assert fe.req_rate.read(0) == 3 + 3  # read once per process, then added
    assert sums.backend("be").last_session == 200
    a = sums.backend("be").server("a")
    assert (a.requests, a.connect_time.total, a.connect_time.top) == (3, 3, 2)
    assert a.connect_time.average(a.requests) == 1
