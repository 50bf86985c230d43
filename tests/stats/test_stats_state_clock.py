"""lastchg, downtime and a backend's chkdown (StateClock), and how the HTML page
writes them (human_time), against HAProxy 2.6's arithmetic; the lab's side by
side run is tests/e2e/test_health_stats_vs_haproxy.py."""

from __future__ import annotations

import pytest

from pyxlb.config import parse_text
from pyxlb.stats.counters import (
    DRAINING,
    MAINT,
    RUNNING,
    STOPPED,
    StateClock,
    StatsRegistry,
    phase_of,
)
from pyxlb.stats.page import human_time, render_csv, render_html


def run(moves: list[tuple[int, str]], start: int = 100) -> StateClock:
    clock = StateClock(start)
    for now, phase in moves:
        clock.move(phase, now)
    return clock


def test_a_down_period_counts_once_over_and_while_under_way():
    clock = run([(110, STOPPED)])
    assert (clock.lastchg(115), clock.downtime(115), clock.down_transitions) == (5, 5, 1)
    clock.move(RUNNING, 120)
    assert (clock.lastchg(130), clock.downtime(130), clock.down_transitions) == (10, 10, 1)
    clock.move(STOPPED, 140)
    assert (clock.downtime(143), clock.down_transitions) == (13, 2)


def test_maintenance_is_not_downtime_once_left_but_drain_is():
    # Seen on 2.6.12: MAINT, then drain out of it, then ready.
    clock = run([(110, MAINT)])
    assert clock.downtime(112) == 2  # under way, it counts
    clock.move(DRAINING, 114)
    assert (clock.downtime(114), clock.lastchg(114)) == (0, 0)
    clock.move(RUNNING, 117)
    assert (clock.downtime(120), clock.lastchg(120)) == (3, 3)


def test_stopped_to_stopped_changes_nothing():
    clock = run([(110, STOPPED), (115, MAINT), (118, STOPPED)])
    assert (clock.lastchg(120), clock.down_transitions) == (10, 1)
    assert clock.downtime(120) == 10


def test_a_drained_server_that_stops_goes_down():
    clock = run([(110, DRAINING), (112, MAINT)])
    assert (clock.down_transitions, clock.lastchg(112)) == (1, 0)


@pytest.mark.parametrize("status, phase", [
    ("UP", RUNNING), ("UP 1/3", RUNNING), ("no check", RUNNING), ("DOWN", STOPPED),
    ("DOWN 1/2", STOPPED), ("MAINT", MAINT), ("DRAIN", DRAINING), ("DRAIN 1/3", DRAINING)])
def test_phase_of_a_status(status, phase):
    assert phase_of(status) == phase


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (5, "5s"), (60, "1m"), (65, "1m5s"), (3600, "1h"), (3605, "1h5s"),
    (3665, "1h1m"), (86400, "1d"), (90061, "1d1h"), (172805, "2d5s")])
def test_human_time_as_haproxy_writes_it(seconds, text):
    assert human_time(seconds) == text


CONFIG = """\
backend be
    server web1 10.0.0.1:80 check
    server web2 10.0.0.2:80
    server off 10.0.0.3:80 disabled
backend gone
    server only 10.0.0.4:80 disabled
"""


def registry() -> StatsRegistry:
    config = parse_text(CONFIG, "t.cfg", env={})
    reg = StatsRegistry.build(config.frontends, config.backends)
    for proxy in reg.proxies:
        assert proxy.backend is not None
        for slot in (proxy.backend, *proxy.backend.servers):
            slot.clock.last_change = 100
    reg.now = 107.5
    return reg


def csv_rows(reg: StatsRegistry) -> dict[str, dict[str, str]]:
    header, *lines = render_csv(reg).splitlines()
    names = header.removeprefix("# ").split(",")
    return {f"{r['pxname']}/{r['svname']}": r
            for r in (dict(zip(names, line.split(","), strict=False)) for line in lines)}


def test_csv_cells_by_server_and_backend():
    reg = registry()
    web1 = reg.backend("be").server("web1")
    web1.check_cells = {"chkfail": 1, "chkdown": 1, "check_status": "L4CON"}
    web1.clock.move(STOPPED, 103)
    rows = csv_rows(reg)
    cells = ("lastchg", "downtime", "chkdown", "chkfail", "check_status")
    assert {c: rows["be/web1"][c] for c in cells} == {
        "lastchg": "4", "downtime": "4", "chkdown": "1", "chkfail": "1",
        "check_status": "L4CON"}
    # Without checks: when it changed, nothing of downtime or checks.
    assert {c: rows["be/web2"][c] for c in cells} == {
        "lastchg": "7", "downtime": "", "chkdown": "", "chkfail": "", "check_status": ""}
    assert {c: rows["be/BACKEND"][c] for c in cells} == {
        "lastchg": "7", "downtime": "0", "chkdown": "0", "chkfail": "", "check_status": ""}


def test_starting_disabled_is_not_a_change():
    # A backend of disabled servers is down from the start: not a transition.
    rows = csv_rows(registry())
    assert (rows["gone/BACKEND"]["chkdown"], rows["gone/BACKEND"]["downtime"]) == ("0", "7")
    assert registry().backend("be").server("off").clock.phase == MAINT


def test_the_html_server_group_as_haproxys_page():
    reg = registry()
    web1 = reg.backend("be").server("web1")
    web1.status = "UP"
    web1.check_cells = {"chkfail": 2, "chkdown": 1, "check_status": "L7OK",
                        "check_code": 200, "check_duration": 3}
    page = render_html(reg)
    assert ("<td>7s UP</td><td>L7OK/200 in 3ms</td><td>1</td><td>Y</td><td>-</td>"
            "<td>2</td><td>1</td><td>0s</td>") in page
