"""The Prometheus exporter, side by side: the real HAProxy 2.6 (its built-in
exporter) and `pyxlb up` in the lab's balancer, on the same config (`http-request
use-service prometheus-exporter`) and traffic. pyxlb's frontend, backend and
server metrics must be HAProxy's, HELP, TYPE and label sets in the same order,
but for those it leaves out (LEFT_OUT). Values are not compared: times, rates
and ages depend on when each ran; tests/stats/test_stats_prometheus.py compares
them to HAProxy's lines.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from side_by_side import BALANCERS, running

from pyxlb.lab.lab import Lab
from pyxlb.stats.prometheus import LEFT_OUT

CONFIG = """\
global
    nbthread 1

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue 2s

frontend http_front
    bind *:{web}
    maxconn 100
    http-request deny if {{ path /deny }}
    default_backend http_back

backend http_back
    balance roundrobin
    option httpchk GET /status
    server web1 {web1}:80 check inter 300ms maxconn 10 maxqueue 5
    server web2 {web2}:80 maxconn 10
    server backup1 {web2}:80 check inter 300ms backup

backend l4
    server ok {web1}:80 check inter 300ms

listen stats
    bind *:{stats}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /
"""

_OURS = re.compile(r"(# (HELP|TYPE) )?haproxy_(frontend|backend|server)_(\w+)")
# Checked servers, whose check_duration shows once their first check is over.
CHECKED = ('proxy="http_back",server="web1"', 'proxy="http_back",server="backup1"',
           'proxy="l4",server="ok"')


def shape(text: str) -> list[str]:
    """The HELP and TYPE lines and each sample's name and labels, in order, of
    the frontend, backend and server metrics measured by pyxlb."""
    lines = []
    for line in text.splitlines():
        found = _OURS.match(line)
        if found is None:
            continue
        if f"{found[3]}_{found[4]}" not in LEFT_OUT:
            lines.append(line if line.startswith("#") else line.rpartition(" ")[0])
    return lines


def metrics(lab: Lab, port: int) -> str:
    """/metrics, once every checked server has finished a check."""
    url = f"http://{lab.topo.addr('lb')}:{port}/metrics"
    for _ in range(50):
        text = lab.run("client", ["curl", "-s", "-m", "5", url]).stdout
        if all(f"haproxy_server_check_duration_seconds{{{s}}}" in text for s in CHECKED):
            return text
        time.sleep(0.2)
    raise AssertionError(f"no check ended on the servers: {text[-2000:]}")


def test_the_metrics_are_haproxys_but_the_unmeasured(lab: Lab, tmp_path: Path):
    seen = {}
    for who, web, stats in zip(BALANCERS, (8083, 8084), (8483, 8484), strict=True):
        config = tmp_path / f"{who}.cfg"
        config.write_text(CONFIG.format(web=web, stats=stats, web1=lab.topo.addr("web1"),
                                        web2=lab.topo.addr("web2")))
        with running(lab, who, config, [web, stats]):
            base = f"http://{lab.topo.addr('lb')}:{web}"
            for path in ("/", "/", "/", "/nope", "/deny"):
                lab.run("client", ["curl", "-s", "-o", "/dev/null", "-m", "5", base + path])
            seen[who] = metrics(lab, stats)
    theirs, ours = shape(seen["haproxy"]), shape(seen["pyxlb"])
    assert len(theirs) > 500  # every metric of every object, not an empty answer
    assert ours == theirs
    # And pyxlb writes nothing of HAProxy's that it does not measure.
    assert not any(f"haproxy_{name}" in seen["pyxlb"] for name in LEFT_OUT)
