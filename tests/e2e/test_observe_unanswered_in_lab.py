"""`observe layer4` for a server that stops answering SYNs at all (its
replies blackholed, as a hung host or a lost route would): the datapath
cannot see a missing answer, so the sweep gives up each flow whose SYN went
unanswered past `timeout connect` and counts it against the server; after
`fall 3` of them (error-limit 1) the backup takes new connections, long
before the next 2-minute check (observe.cfg)."""

from __future__ import annotations

import time

import pytest
from test_observe_in_lab import attempt


@pytest.fixture
def observed(pyxlb_up):
    return pyxlb_up("observe")


def test_unanswered_syns_send_new_connections_to_the_backup(lab, observed):
    assert attempt(lab).startswith("b'GET /")  # db1, the echo server, answers
    blackhole = ["ip", "route", "add", "blackhole", f"{lab.topo.addr('lb')}/32"]
    lab.run("tcp1", blackhole)
    try:
        start = time.monotonic()
        outcomes = [attempt(lab)]
        assert outcomes[0].startswith("error")  # timed out: no answer at all
        while not outcomes[-1].startswith("b'HTTP/"):
            # connect 5s + a 5 s sweep, three times over at worst, plus slack
            assert time.monotonic() - start < 30, (outcomes, observed.log())
            outcomes.append(attempt(lab))
        assert "Server msql_databases/db1 is DOWN" in observed.log()
        assert sum(o.startswith("error") for o in outcomes) >= 3, outcomes
    finally:
        lab.run("tcp1", ["ip", "route", "del", "blackhole", f"{lab.topo.addr('lb')}/32"],
                check=False)
