"""`pyxlb up` logs every request like HAProxy's `option httplog`, to a unix datagram
socket the test binds (pyxlb/lab/configs/logs.cfg): the PRI says facility and level
(local0 info 134; errors raised to err by log-separate-errors, 131, and copied to
local1 whose max level is notice, 139), and dontlognull drops connections that sent
nothing."""

from __future__ import annotations

import re

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config

HEADER = r"\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: "
CLIENT = r"10\.111\.0\.10:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] "



@pytest.fixture
def logging_lb(lab, syslog):
    lb = LabBalancer(lab, lab_config("logs"))
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()


def get(lab, path: str, port: int = 80) -> str:
    return lab.run("client", ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{lab.topo.addr('lb')}:{port}{path}"]).stdout


def connect_and_close(lab, port: int) -> None:
    """A client that connects and leaves without sending a byte."""
    lab.run("client", [lab.python, "-c", "import socket, sys; socket.create_connection("
                       "(sys.argv[1], int(sys.argv[2])), 5).close()",
                       lab.topo.addr("lb"), str(port)])


def datagrams(syslog, count: int) -> list[str]:
    return [syslog.recv(4096).decode() for _ in range(count)]


def test_requests_are_logged_at_their_level(lab, logging_lb, syslog):
    assert get(lab, "/ok?x=1") == "200"
    [ok] = datagrams(syslog, 1)
    assert re.fullmatch(rf"<134>{HEADER}{CLIENT}web web/web1 \d+/0/\d+/\d+/\d+ 200 \d+ - - "
                        r'---- \d+/1/0/0/0 0/0 "GET /ok\?x=1 HTTP/1\.1"\n', ok), ok

    # A refused server connection: retried 3 times (a second apart, as haproxy
    # does), then a 503 at err on local0, and a copy on local1.
    assert get(lab, "/dead") == "503"
    local0, local1 = datagrams(syslog, 2)
    line = r'web dead/gone \d+/0/-1/-1/\d+ 503 \d+ - - SC-- \d+/1/0/0/3 0/0 "GET /dead HTTP/1\.1"\n'
    assert re.fullmatch(rf"<131>{HEADER}{CLIENT}{line}", local0), local0
    assert local1 == "<139>" + local0[len("<131>"):]

    assert get(lab, "/deny") == "403"
    denied, _ = datagrams(syslog, 2)
    assert re.fullmatch(rf"<131>{HEADER}{CLIENT}web web/<NOSRV> \d+/-1/-1/-1/\d+ 403 \d+ - - "
                        r'PR-- \d+/1/0/0/0 0/0 "GET /deny HTTP/1\.1"\n', denied), denied


def test_dontlognull_drops_connections_that_sent_nothing(lab, logging_lb, syslog):
    connect_and_close(lab, 80)  # dontlognull: not logged
    assert get(lab, "/after-null") == "200"
    [after] = datagrams(syslog, 1)
    assert '"GET /after-null HTTP/1.1"' in after, after

    # No dontlognull: a 400 `CR` as HAProxy logs it, an error (the client aborted).
    connect_and_close(lab, 8080)
    null, copy = datagrams(syslog, 2)
    assert re.fullmatch(rf"<131>{HEADER}{CLIENT}everything everything/<NOSRV> "
                        r'-1/-1/-1/-1/\d+ 400 0 - - CR-- \d+/1/0/0/0 0/0 "<BADREQ>"\n',
                        null), null
    assert copy == "<139>" + null[len("<131>"):]
