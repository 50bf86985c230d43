"""The queue columns of the stats (qcur, qmax, qlimit, qtime, qtime_max) as HAProxy
2.6.12 filled them in the lab: servers and backends the l7 tier queues for, qlimit
only for a server with maxqueue, qtime the wait of requests that reached a server
divided by all the requests seen (the window's exact sum until 512 requests)."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.l7.upstream import Upstreams
from pyxlb.stats.counters import TIME_STATS_SAMPLES, QueueTime, StatsRegistry
from pyxlb.stats.page import CSV_FIELDS, render_csv, render_html

CONFIG = """
defaults
    mode http
    timeout connect 2s
frontend fe
    bind *:80
    default_backend be
backend be
    server web1 10.0.0.1:80 maxconn 1 maxqueue 2
    server web2 10.0.0.2:80 maxconn 1
"""


def csv_rows(registry: StatsRegistry) -> dict[str, dict[str, str]]:
    lines = render_csv(registry).splitlines()[1:]
    return {cells[1]: dict(zip(CSV_FIELDS, cells, strict=True))
            for cells in (line[:-1].split(",") for line in lines)}


def test_queue_columns_follow_the_queues() -> None:
    config = parse_text(CONFIG)
    registry = StatsRegistry.build(config.frontends, config.backends)
    upstreams = Upstreams(config.backends, registry)
    queues = upstreams.backend("be").queues
    web1, web2 = upstreams.backend("be").servers
    queues.admit("a", 0.0, persist=web1)
    queues.admit("b", 0.0, persist=web1)
    queues.admit("c", 0.0, persist=web2)
    queues.admit("d", 0.0)
    rows = csv_rows(registry)
    assert [rows["web1"][k] for k in ("qcur", "qmax", "qlimit")] == ["1", "1", "2"]
    assert [rows["web2"][k] for k in ("qcur", "qmax", "qlimit")] == ["0", "0", ""]
    assert [rows["BACKEND"][k] for k in ("qcur", "qmax", "qlimit")] == ["1", "1", ""]
    assert [rows["FRONTEND"][k] for k in ("qcur", "qmax", "qtime")] == ["", "", ""]
    queues.release(web1)
    queues.release(web2)
    rows = csv_rows(registry)
    assert (rows["web1"]["qcur"], rows["BACKEND"]["qcur"], rows["BACKEND"]["qmax"]) == (
        "0", "0", "1")
    page = render_html(registry)
    assert "<th colspan=3>Queue</th>" in page
    assert "</tr>\n<tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th>" in page
    assert '<td class="name">web1</td><td>0</td><td>1</td><td>2</td>' in page


def test_qtime_averages_over_every_request_seen() -> None:
    # The lab's numbers: web1 saw 5 requests that waited 0, 260, 0, 281 and 0 ms
    # (a 6th refused and a 7th timed out count for nothing): qtime 109.
    times = QueueTime()
    for requests, ms in enumerate((0, 260, 0, 281, 0), start=1):
        times.add(ms, requests)
    assert (times.average(5), times.top) == (109, 281)
    # The backend had 10 requests, only 7 of which reached a server: 804 / 10.
    backend = QueueTime()
    for requests, ms in enumerate((0, 0, 263, 260, 0, 0, 281), start=1):
        backend.add(ms, requests)
    assert backend.average(10) == 81
    assert QueueTime().average(0) == 0


def test_qtime_slides_past_the_window() -> None:
    times = QueueTime()
    for requests in range(1, TIME_STATS_SAMPLES + 1):
        times.add(100, requests)
    assert times.average(TIME_STATS_SAMPLES) == 100
    for requests in range(TIME_STATS_SAMPLES + 1, 4 * TIME_STATS_SAMPLES):
        times.add(0, requests)
    assert times.average(4 * TIME_STATS_SAMPLES) < 10
    assert times.top == 100
