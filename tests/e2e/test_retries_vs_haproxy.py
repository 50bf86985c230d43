"""Connection retries and `option redispatch`, side by side: the real HAProxy 2.6
and `pyxlb up` in the lab's balancer run the same config on their own ports,
with a server that refuses (a closed port) or never answers (an address
nobody holds) beside a live one; the client sees the same statuses after the
same waits (timeout connect 500ms: each wait is a multiple of it), and the
stats CSV counts the same wretr, wredis and econ."""

from __future__ import annotations

import csv
import io

import pytest
from side_by_side import BALANCERS, running

from pyxlb.lab.lab import Lab

CONFIG = """\
defaults
    mode http
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    retries 2
{options}
frontend fe
    bind *:{port}
    stats uri /stats
    default_backend be

backend be
    balance {algorithm}
    server bad {bad}
{others}"""

REFUSING = "10.111.0.22:81"   # web2's host, nothing listening there
SILENT = "10.111.0.99:80"     # no host: the SYN never leaves (no neighbour)
LIVE = "    server web1 10.111.0.21:80\n"
REQUESTS = 3
WAIT_UNIT_S = 0.5  # timeout connect: every wait is a number of these


CASES = {
    "roundrobin-refused-redispatch": dict(algorithm="roundrobin", bad=REFUSING,
                                          options="    option redispatch", others=LIVE),
    "leastconn-silent-redispatch": dict(algorithm="leastconn", bad=SILENT,
                                        options="    option redispatch", others=LIVE),
    "source-refused-redispatch": dict(algorithm="source", bad=REFUSING,
                                      options="    option redispatch", others=LIVE),
    "alone-refused": dict(algorithm="roundrobin", bad=REFUSING, options="", others=""),
    "alone-silent-redispatch": dict(algorithm="roundrobin", bad=SILENT,
                                    options="    option redispatch", others=""),
}


def run(lab: Lab, port: int) -> tuple[list[tuple[int, int]], dict[str, str]]:
    """(status, waits in timeout-connect units) per request, then the bad
    server's wretr/wredis/econ."""
    url = f"http://{lab.topo.addr('lb')}:{port}/"
    seen = []
    for _ in range(REQUESTS):
        out = lab.run("client", ["curl", "-s", "-m", "10", "-o", "/dev/null", "-w",
                                 "%{http_code} %{time_total}", url]).stdout.split()
        seen.append((int(out[0]), round(float(out[1]) / WAIT_UNIT_S)))
    body = lab.run("client", ["curl", "-s", "-m", "5", f"{url}stats;csv"]).stdout
    rows = csv.DictReader(io.StringIO(body.removeprefix("# ")))
    [bad] = [r for r in rows if (r["pxname"], r["svname"]) == ("be", "bad")]
    return seen, {k: bad[k] or "0" for k in ("wretr", "wredis", "econ")}


@pytest.mark.parametrize("case", list(CASES))
def test_retries_and_redispatches_as_haproxy(lab, tmp_path, case):
    results = {}
    for who, port in zip(BALANCERS, (8601, 8602), strict=True):
        config = tmp_path / f"{who}.cfg"
        config.write_text(CONFIG.format(port=port, **CASES[case]))
        with running(lab, who, config, [port]):
            results[who] = run(lab, port)
    assert results["pyxlb"] == results["haproxy"]
