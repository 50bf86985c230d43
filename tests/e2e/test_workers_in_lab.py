"""`nbthread 2`: the layer-7 tier in two processes (lab config workers.cfg),
driven with curl and socat: both serve port 80, server changes from the
runtime API reach both, the stats add both up whichever answers, a worker
that dies is replaced, and nothing is left after `pyxlb down`."""

from __future__ import annotations

import csv
import io
import os
import signal
import time

import pytest
from runtime_cli import cli

from pyxlb.lab.balancer import LabBalancer, lab_config

REQUESTS = 40


def served_by(lab, count: int) -> list[str]:
    """The x-server of `count` requests, each on a connection of its own."""
    url = f"http://{lab.topo.addr('lb')}/"
    return [lab.run("client", ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                               "%header{x-server}", url]).stdout for _ in range(count)]


def stats_rows(lab) -> dict[tuple[str, str], dict[str, str]]:
    out = lab.run("client", ["curl", "-s", "-m", "3",
                             f"http://{lab.topo.addr('lb')}/haproxy?stats;csv"]).stdout
    rows = csv.DictReader(io.StringIO(out.removeprefix("# ")))
    return {(r["pxname"], r["svname"]): r for r in rows}


def listeners(lab) -> set[int]:
    """Pids of the processes listening on port 80 in the balancer's namespace."""
    out = lab.run("lb", ["ss", "-Hltnp", "sport", "= :80"]).stdout
    return {int(part.split("=")[1]) for part in out.replace(",", " ").split()
            if part.startswith("pid=")}


@pytest.fixture
def balancer(pyxlb_up, stats_socket) -> LabBalancer:
    return pyxlb_up("workers")


def test_two_processes_serve_and_the_stats_add_both_up(lab, balancer, stats_socket):
    sock = stats_socket
    pids = listeners(lab)
    assert len(pids) == 2 and balancer.proc.pid in pids
    # Each process keeps its own round-robin position (as HAProxy's processes
    # did with nbproc): both servers serve, in about equal shares.
    served = served_by(lab, REQUESTS)
    assert len(served) == REQUESTS and set(served) == {"web1", "web2"}
    # Whichever process answers the stats, it shows every request once.
    for _ in range(6):
        rows = stats_rows(lab)
        assert int(rows[("http_back", "BACKEND")]["stot"]) == REQUESTS
        assert (int(rows[("http_back", "web1")]["stot"]) +
                int(rows[("http_back", "web2")]["stot"])) == REQUESTS
    show = cli(sock, "show stat")
    [backend] = [line for line in show.splitlines() if line.startswith("http_back,BACKEND,")]
    assert backend.split(",")[7] == str(REQUESTS)  # stot, the 8th column
    info = dict(line.split(": ", 1) for line in cli(sock, "show info").splitlines() if line)
    assert info["Nbthread"] == "2"


def test_server_changes_reach_every_process(lab, balancer, stats_socket):
    sock = stats_socket
    assert cli(sock, "disable server http_back/web1") == "\n"
    assert served_by(lab, 10) == ["web2"] * 10
    rows = stats_rows(lab)
    assert rows[("http_back", "web1")]["status"] == "MAINT"
    assert cli(sock, "enable server http_back/web1") == "\n"
    assert set(served_by(lab, 10)) == {"web1", "web2"}


def test_a_worker_that_dies_is_replaced(lab, balancer):
    [worker] = listeners(lab) - {balancer.proc.pid}
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = listeners(lab)
        if len(now) == 2 and worker not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no new worker: listening pids {listeners(lab)}")
    assert "layer-7 worker 1" in balancer.log()
    assert len(served_by(lab, 10)) == 10


def test_down_leaves_no_worker(lab, stats_socket):
    lb = LabBalancer(lab, lab_config("workers"))
    lb.start()
    [worker] = listeners(lab) - {lb.proc.pid}
    lb.stop()
    assert not listeners(lab)
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
