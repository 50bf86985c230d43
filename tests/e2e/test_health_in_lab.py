"""Health checks drive the l7 pools in the lab: a killed backend leaves the
rotation within fall x inter (+1 s), comes back after rise checks, and the
backup serves when every primary is down."""

from __future__ import annotations

import re
import time

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config

INTER_S, RISE, FALL = 0.5, 2, 3  # health.cfg


def csv_rows(lab) -> dict[str, dict[str, str]]:
    text = lab.run("client", ["curl", "-s", "-m", "2",
                              f"http://{lab.topo.addr('lb')}/haproxy?stats;csv"]).stdout
    header, *rows = text.splitlines()
    columns = header.lstrip("# ").split(",")
    cells = [dict(zip(columns, row.split(","), strict=False)) for row in rows]
    return {c["svname"]: c for c in cells if c["pxname"] == "http_back"}


def wait_status(lab, server: str, prefix: str, within_s: float) -> float:
    """Seconds until `server`'s stats status starts with `prefix`."""
    start = time.monotonic()
    while not csv_rows(lab)[server]["status"].startswith(prefix):
        assert time.monotonic() - start < within_s, \
            f"{server} not {prefix} after {within_s}s: {csv_rows(lab)[server]['status']}"
        time.sleep(0.05)
    return time.monotonic() - start


def served_by(lab, path: str = "/") -> str:
    return lab.run("client", ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w",
                              "%{http_code} %header{x-server}",
                              f"http://{lab.topo.addr('lb')}{path}"]).stdout.strip()



def next_line(syslog, containing: str) -> str:
    while True:
        line = syslog.recv(4096).decode()
        if containing in line:
            return line


@pytest.fixture
def checked(lab, syslog):
    lb = LabBalancer(lab, lab_config("health"))
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()
        alive = {s.role for s in lab.status().servers if s.alive}
        for role in ("web1", "web2"):
            if role not in alive:
                lab.start_server(role)


def test_a_dead_backend_leaves_and_returns(lab, checked, syslog):
    assert csv_rows(lab)["web1"]["status"] == "UP"
    assert {served_by(lab) for _ in range(4)} == {"200 web1", "200 web2"}

    lab.stop_server("web2")
    wait_status(lab, "web2", "DOWN", FALL * INTER_S + 1)
    assert [served_by(lab) for _ in range(6)] == ["200 web1"] * 6
    assert "Server http_back/web2 is DOWN" in checked.log()
    # HAProxy's event at alert on local0 (PRI 129), with what is left.
    down = next_line(syslog, "web2 is DOWN")
    assert re.fullmatch(r"<129>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: Server "
                        r"http_back/web2 is DOWN, reason: Layer7? ?.*\. 1 active and 1 backup "
                        r"servers left\. 0 sessions active, 0 requeued, 0 remaining in "
                        r"queue\.\n", down), down

    lab.start_server("web2")
    wait_status(lab, "web2", "UP", RISE * INTER_S + 2)
    assert next_line(syslog, "web2 is UP").startswith("<133>")
    assert {served_by(lab) for _ in range(4)} == {"200 web1", "200 web2"}


def test_the_backup_serves_when_every_primary_is_down(lab, checked, syslog):
    assert csv_rows(lab)["backup1"]["stot"] == "0"
    lab.stop_server("web1")
    lab.stop_server("web2")
    wait_status(lab, "web1", "DOWN", FALL * INTER_S + 1)
    wait_status(lab, "web2", "DOWN", FALL * INTER_S + 1)
    # The WebSocket backend answers plain GETs of /status, which is all we need.
    assert [served_by(lab, "/status")[:3] for _ in range(3)] == ["200"] * 3
    assert csv_rows(lab)["backup1"]["stot"] == "3"
    first, second = next_line(syslog, "is DOWN"), next_line(syslog, "is DOWN")
    assert "1 active and 1 backup servers left" in first
    assert "0 active and 1 backup servers left" in second
