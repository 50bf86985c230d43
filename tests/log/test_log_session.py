"""The l7 proxy's request logs, driven through the events the proxy reports, against
what haproxy 2.6.12 sent for the same exchanges (data/haproxy_httplog_samples.txt,
captured with data/haproxy_httplog.cfg in a lab namespace; pid and local times are
the capture's, TZ=UTC). Event times are chosen to give HAProxy's timers."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from log_clock import at

from pyxlb.config import parse_text
from pyxlb.config.model import LogTarget
from pyxlb.log.sender import LogSender
from pyxlb.log.session import STATS_SERVER, ConnectionLog, FrontendLog

DATA = Path(__file__).parent / "data"
PID = 1858
CLIENT, LB = "10.111.0.10", "10.111.0.2"


def samples() -> dict[str, list[bytes]]:
    cases: dict[str, list[bytes]] = {}
    lines: list[bytes] = []
    for line in (DATA / "haproxy_httplog_samples.txt").read_text().splitlines():
        if line.startswith("== "):
            lines = cases.setdefault(line[3:], [])
        elif line.startswith("b'"):
            lines.append(ast.literal_eval(line))
    return cases


SAMPLES = samples()
CONFIG = parse_text((DATA / "haproxy_httplog.cfg").read_text(), "haproxy_httplog.cfg", env={})


class Recorder(LogSender):
    """A LogSender whose datagrams are kept instead of sent."""

    def __init__(self) -> None:
        super().__init__(pid=PID)
        self.sent: list[bytes] = []

    def _send(self, target: LogTarget, datagram: bytes) -> None:
        self.sent.append(datagram)




def connection(frontend: str, port: int, accepted: str,
               sender: Recorder) -> ConnectionLog:
    """A connection accepted at loop time 0, at the wall time `accepted`."""
    fe = FrontendLog.build(CONFIG.frontends[frontend], sender, lambda: (1, 1))
    assert fe is not None
    local_port = CONFIG.frontends[frontend].binds[0].port
    return fe.connection((CLIENT, port), (LB, local_port), at(accepted), 0.0)


def backend(name: str, server: str | None) -> tuple[SimpleNamespace, SimpleNamespace | None]:
    srv = SimpleNamespace(name=server, sessions=0) if server else None
    be = SimpleNamespace(name=name, servers=[srv] if srv else [],
                         balancer=SimpleNamespace(served=lambda s: 0))
    return be, srv


def proxied(conn: ConnectionLog, line: bytes, be: str, server: str | None, *,
            start: float = 0.0, status: int | None = 200, sent: int = 0, end: float = 0.0,
            failed: int | None = None, closed: bool = False, generated: int | None = None,
            cause: str | None = None) -> None:
    """One proxied request: head at `start`, server picked and connected at once,
    response head (`status`), `sent` bytes, then the ending."""
    conn.started(start)
    req = conn.request(line, start)
    assert req is not None
    b, s = backend(be, server)
    req.picked(b, s, start)
    if s is not None:
        req.connected(start)
        if status is not None:
            req.responded(status, start)
    if failed is not None:
        req.server_failed(failed, closed)
    if generated is not None:
        req.generated(generated)
    conn.sent += sent
    conn.end(req, end, cause)


def answered(conn: ConnectionLog, line: bytes, answer: bytes = b"", stats: bool = False,
             sent: int = 0) -> None:
    conn.started(0.0)
    req = conn.request(line, 0.0, answer, STATS_SERVER if stats else None)
    assert req is not None
    conn.sent += sent
    conn.end(req, 0.0)


CASES = {
    "200": lambda c: proxied(c, b"GET /hello?x=1 HTTP/1.1", "be", "web1", sent=188),
    "404": lambda c: proxied(c, b"GET /notfound HTTP/1.1", "be", "web1", status=404, sent=198),
    "deny": lambda c: answered(c, b"GET /deny HTTP/1.1", b"HTTP/1.1 403 Forbidden\r\n", sent=192),
    "auth401": lambda c: answered(c, b"GET /auth HTTP/1.1", b"HTTP/1.1 401 Unauthorized\r\n",
                                  sent=246),
    "redir": lambda c: answered(c, b"GET /redir HTTP/1.1", b"HTTP/1.1 302 Found\r\n", sent=83),
    "stats": lambda c: answered(c, b"GET /stats HTTP/1.1", stats=True, sent=55961),
    "nosrv": lambda c: proxied(c, b"GET /nosrv HTTP/1.1", "nosrv", None, generated=503,
                               sent=217),
    "silent504": lambda c: proxied(c, b"GET /silent HTTP/1.1", "odd_silent", "s", status=None,
                                   failed=504, generated=504, sent=198, end=1.002),
    "partial": lambda c: proxied(c, b"GET /partial HTTP/1.1", "odd_partial", "s", failed=502,
                                 closed=True, sent=54, end=0.2),
    "garbage502": lambda c: proxied(c, b"GET /garbage HTTP/1.1", "odd_garbage", "s",
                                    status=None, failed=502, generated=502, sent=209),
    "e500": lambda c: proxied(c, b"GET /e500 HTTP/1.1", "odd_500", "s", status=500, sent=72),
    "slow_client_abort": lambda c: proxied(c, b"GET /slow HTTP/1.1", "odd_slow", "s",
                                           sent=450016, end=0.503, cause="C"),
    "post": lambda c: proxied(c, b"POST /post HTTP/1.1", "be", "web1", sent=188),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_request_logs_what_haproxy_logged(case: str) -> None:
    expected = SAMPLES[case]
    first = expected[0].decode()
    client_port = int(first.split(f"{CLIENT}:")[1].split(" ")[0])
    accepted = first.split("[")[2].split("]")[0]
    sender = Recorder()
    CASES[case](connection("fe", client_port, accepted, sender))
    assert sender.sent == expected


def test_keep_alive_requests_date_each_request() -> None:
    sender = Recorder()
    conn = connection("fe", 32810, "24/Nov/2026:07:06:24.855", sender)
    proxied(conn, b"GET /a HTTP/1.1", "be", "web1", sent=188)
    proxied(conn, b"GET /b HTTP/1.1", "be", "web1", start=0.001, end=0.001, sent=188)
    conn.unanswered(False, 0, 0.01)  # the client closes the kept-alive connection
    assert sender.sent == SAMPLES["keepalive2"]


def test_a_bad_request_logs_no_bytes() -> None:
    sender = Recorder()
    conn = connection("fe", 32826, "24/Nov/2026:07:06:31.141", sender)
    conn.started(0.0)
    req = conn.bad_request()
    assert req is not None
    conn.sent += 90
    conn.end(req, 0.0, "C")
    assert sender.sent == SAMPLES["badreq"]


@pytest.mark.parametrize(("case", "frontend", "timed_out", "bytes_in", "after"), [
    ("empty_timeout_dontlognull", "fe", True, 0, 1.002),
    ("empty_timeout_null", "fe_null", True, 0, 1.001),
    ("partial_head_timeout", "fe", True, 16, 1.002),
    ("partial_head_timeout_null", "fe_null", True, 16, 1.001),
    ("trueclose_dontlognull", "fe", False, 0, 0.051),
    ("trueclose_null", "fe_null", False, 0, 0.051),
    ("partialhead_close_dontlognull", "fe", False, 16, 0.053),
    ("partialhead_close_null", "fe_null", False, 16, 0.050),
])
def test_a_first_request_that_never_came(case: str, frontend: str, timed_out: bool,
                                         bytes_in: int, after: float) -> None:
    """408 `cR` on a timeout, 400 `CR` when the client closes; under dontlognull only
    when the client sent something."""
    expected = SAMPLES[case]
    sender = Recorder()
    port, accepted = 1, "24/Nov/2026:00:00:00.000"
    if expected:
        first = expected[0].decode()
        port = int(first.split(f"{CLIENT}:")[1].split(" ")[0])
        accepted = first.split("[")[2].split("]")[0]
    conn = connection(frontend, port, accepted, sender)
    conn.unanswered(timed_out, bytes_in, after)
    conn.unanswered(timed_out, bytes_in, after)  # the end is logged once
    assert sender.sent == expected


def test_later_requests_of_a_connection_end_silently() -> None:
    sender = Recorder()
    conn = connection("fe_null", 52654, "24/Nov/2026:07:08:06.666", sender)
    proxied(conn, b"GET /ka HTTP/1.1", "be", "web1", sent=188)
    conn.unanswered(False, 0, 0.2)
    conn.unanswered(True, 0, 2.2)
    assert sender.sent == SAMPLES["null_keepalive_then_close"]


def test_default_format_logs_a_connect_line_per_request() -> None:
    sender = Recorder()
    conn = connection("fe_plain", 40682, "24/Nov/2026:07:06:54.000", sender)
    for _ in range(2):
        conn.started(0.0)
        assert conn.request(b"GET /a HTTP/1.1", 0.0) is None
    assert conn.bad_request() is None
    conn.unanswered(False, 0, 0.1)
    assert sender.sent == SAMPLES["plain_keepalive2"]


def test_a_frontend_without_log_targets_gets_no_log() -> None:
    fe = parse_text("""
defaults
    mode http
    timeout client 1s
    timeout connect 1s
    timeout server 1s
frontend quiet
    bind :80
    option httplog
    default_backend be
backend be
    server a 10.0.0.1:80
""", "t.cfg", env={}).frontends["quiet"]
    assert FrontendLog.build(fe, Recorder(), lambda: (1, 1)) is None
    assert FrontendLog.build(CONFIG.frontends["fe"], None, lambda: (1, 1)) is None


def test_counters_are_taken_when_the_request_ends() -> None:
    sender = Recorder()
    fe = FrontendLog.build(CONFIG.frontends["fe"], sender, lambda: (7, 3))
    assert fe is not None
    conn = fe.connection(("::1", 40000), ("::1", 8080), at("24/Nov/2026:07:00:00.000"), 5.0)
    conn.started(5.0)
    req = conn.request(b"GET / HTTP/1.1", 5.0)
    assert req is not None
    # %sc is the server's own count (l7.upstream.Server.sessions), %bc the
    # balancer's with the queues.
    web1, web2 = SimpleNamespace(name="web1", sessions=2), SimpleNamespace(name="web2")
    served = {id(web1): 2, id(web2): 1}
    be = SimpleNamespace(name="be", servers=[web1, web2],
                         balancer=SimpleNamespace(served=lambda s: served[id(s)]))
    req.picked(be, web1, 5.0)
    req.connected(5.004)
    req.responded(200, 5.010)
    conn.end(req, 5.020)
    assert b' ::1:40000 [24/Nov/2026:07:00:00.000] fe be/web1 0/0/4/6/20 200 0 - - ---- ' \
        b'7/3/3/2/0 0/0 "GET / HTTP/1.1"\n' in sender.sent[0]


def test_tcplog_on_an_http_frontend() -> None:
    config = parse_text("""
global
    log /tmp/hap.sock local0
defaults
    log global
    mode http
    option tcplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_tcplog
    bind :8083
    default_backend be
backend be
    server web1 10.111.0.21:80
""", "tcplog.cfg", env={})
    recorder = Recorder()
    recorder.pid = 10911
    fe = FrontendLog.build(config.frontends["fe_tcplog"], recorder, lambda: (1, 1))
    assert fe is not None
    conn = fe.connection((CLIENT, 38896), (LB, 8083), at("24/Nov/2026:07:17:39.207"), 0.0)
    proxied(conn, b"GET /t HTTP/1.1", "be", "web1", sent=188, end=0.003)
    assert recorder.sent == SAMPLES["http_tcplog"]


def test_a_persistence_cookie_gives_the_flags_of_tsc() -> None:
    """HAProxy's third and fourth %tsc characters: what the request's cookie said
    and what became of it (l7.cookies.CookieRequest's `seen` and `sent`)."""
    sender = Recorder()
    conn = connection("fe", 40000, "24/Nov/2026:07:00:00.000", sender)
    conn.started(0.0)
    req = conn.request(b"GET / HTTP/1.1", 0.0)
    assert req is not None
    b, s = backend("be", "web1")
    req.picked(b, s, 0.0)
    req.cookie = SimpleNamespace(seen="E", sent="I")
    conn.end(req, 0.0)
    assert b" - - --EI " in sender.sent[0]


@pytest.mark.parametrize("ending, logged", [("client", b" 0 0 - - CD-- "),
                                            ("server", b" 502 0 - - SH-- ")])
def test_after_an_interim_response_the_status_reads_0_until_the_final_one(
        ending: str, logged: bytes) -> None:
    """HAProxy 2.6.12 logged `0 ... CD` for a client leaving its request body
    after the server's 100 Continue (tests/e2e/test_aborts_vs_haproxy.py); a
    server closing then still gets its 502 and `SH`."""
    sender = Recorder()
    conn = connection("fe", 40000, "24/Nov/2026:07:00:00.000", sender)
    conn.started(0.0)
    req = conn.request(b"POST /wait HTTP/1.1", 0.0)
    assert req is not None
    b, s = backend("be", "web1")
    req.picked(b, s, 0.0)
    req.connected(0.0)
    req.informational()
    if ending == "client":
        conn.end(req, 0.0, "C")
    else:
        req.server_failed(502, True)
        req.generated(502)
        conn.end(req, 0.0)
    assert logged in sender.sent[0]
