"""`http-request use-service prometheus-exporter`, side by side: the real HAProxy 2.6
and `pyxlb up` in the lab's balancer run the same config in turn (the service in
a frontend's rules and in a backend's), answer the same raw requests with the
same heads, log them alike (`<PROMEX>`, `LR--`) and count them in the same
stats columns. The metrics themselves are tests/e2e/test_metrics_vs_haproxy.py's.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from side_by_side import BALANCERS, raw_answer, running
from test_stats_vs_haproxy import dechunk

from pyxlb.lab.lab import Lab

CONFIG = """\
global
    nbthread 1
    log {log} local0

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 10s
    timeout server 10s

frontend fe
    bind *:8080
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats uri /stats
    default_backend be

frontend other
    bind *:8081
    default_backend be2

backend be
    server web1 {web1}:80

backend be2
    http-request use-service prometheus-exporter if {{ path /m2 }}
    server web2 {web2}:80
"""
ASKS = [
    (8080, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    (8080, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    (8080, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"),
    (8080, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    (8081, b"GET /m2 HTTP/1.1\r\nHost: x\r\n\r\n"),
]
# A log line's frontend, backend/server, status, termination flags and request.
LINE = re.compile(r"\]: [\d.]+:\d+ \[[^]]+\] (\S+) (\S+) \S+ (\d+) \d+ - - (\S+) \S+ \S+ "
                  r"\"([^\"]*)\"")
COUNTED = ("stot", "req_tot", "hrsp_2xx", "intercepted")


def counts(lab: Lab) -> dict[str, dict[str, str]]:
    text = lab.run("client", ["curl", "-s", "-m", "5",
                              f"http://{lab.topo.addr('lb')}:8080/stats;csv"]).stdout
    header, *lines = text.splitlines()
    names = header.removeprefix("# ").split(",")
    rows = (dict(zip(names, line.split(","), strict=False)) for line in lines)
    return {f"{r['pxname']}/{r['svname']}": {c: r[c] for c in COUNTED} for r in rows}


@pytest.fixture
def syslog(tmp_path: Path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "log.sock"))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_use_service_answers_logs_and_counts_as_haproxy(lab: Lab, tmp_path: Path, syslog):
    seen = {}
    for who in BALANCERS:
        config = tmp_path / f"{who}.cfg"
        config.write_text(CONFIG.format(log=syslog.getsockname(), web1=lab.topo.addr("web1"),
                                        web2=lab.topo.addr("web2")))
        with running(lab, who, config, [8080]):
            # What the asks moved (haproxy's start-up probe counts before them).
            before = counts(lab)
            answers = [raw_answer(lab, port, ask) for port, ask in ASKS]
            after = counts(lab)
        csv = {key: {c: int(after[key][c] or 0) - int(before[key][c] or 0) for c in COUNTED}
               for key in after}
        lines = []
        while len(lines) < len(ASKS):
            m = LINE.search(syslog.recv(65536).decode())
            # Not the stats;csv requests, nor haproxy's start-up probe (<BADREQ>).
            if m is not None and m[5].startswith(("GET /m", "HEAD /m")):
                lines.append(m.groups())
        seen[who] = answers, lines, csv
    (theirs, their_lines, their_csv), (ours, our_lines, our_csv) = seen["haproxy"], seen["pyxlb"]
    for (_, ask), mine, haproxys in zip(ASKS, ours, theirs, strict=True):
        head, _, body = mine.partition(b"\r\n\r\n")
        assert head == haproxys.partition(b"\r\n\r\n")[0], ask
        if ask.startswith(b"HEAD"):
            assert body == b""
        else:
            assert b'haproxy_frontend_current_sessions{proxy="fe"}' in dechunk(body)
    assert our_lines == their_lines
    assert our_lines[-1][:2] == ("other", "be2/<PROMEX>")
    for key in ("fe/FRONTEND", "other/FRONTEND", "be2/BACKEND", "be/BACKEND"):
        assert our_csv[key] == their_csv[key], key
