"""Log lines of queued and tarpitted requests, against what haproxy 2.6.12 logged
in the lab (pyxlb/lab/configs/queue.cfg): %Tw is the time in a queue (or held by a
tarpit, with %TR -1), %sq/%bq the positions HAProxy reports, and the endings sQ
(`timeout queue`), SQ (maxqueue full, %Tw -1), CQ (client gone while queued) and
PT (tarpit)."""

from __future__ import annotations

import re
from types import SimpleNamespace

from test_log_session import Recorder, connection

from pyxlb.l7.balance.queue import Pending


def backend(server: str) -> tuple[SimpleNamespace, SimpleNamespace]:
    srv = SimpleNamespace(name=server, sessions=0)
    be = SimpleNamespace(name="be", servers=[srv], balancer=SimpleNamespace(served=lambda s: 0))
    return be, srv


def fields(sender: Recorder) -> str:
    """The line from the backend/server field to the end."""
    line = sender.sent[-1].decode()
    return re.sub(r"^.*\] fe ", "", line).rstrip("\n")


def pending(srv_pos: int = 0, be_pos: int = 0) -> Pending:
    p: Pending = Pending(None, 0.0, None)
    p.srv_pos, p.be_pos = srv_pos, be_pos
    return p


def test_timeout_queue_logs_sq_with_the_wait() -> None:
    sender = Recorder()
    conn = connection("fe", 40000, "24/Nov/2026:09:49:49.256", sender)
    conn.started(0.0)
    req = conn.request(b"GET /slow/2000 HTTP/1.1", 0.0)
    assert req is not None
    be, _ = backend("web1")
    req.queued(be, None, 0.0)
    req.dequeued(None, pending(be_pos=1), 0.502)
    req.generated(503, "sQ")
    conn.sent += 214
    conn.end(req, 0.502)
    assert fields(sender).startswith("be/<NOSRV> 0/502/-1/-1/502 503 214 - - sQ--")
    assert fields(sender).endswith(' 0/1 "GET /slow/2000 HTTP/1.1"')


def test_a_request_served_from_its_servers_queue() -> None:
    sender = Recorder()
    conn = connection("fe", 40001, "24/Nov/2026:09:49:51.357", sender)
    conn.started(0.0)
    req = conn.request(b"GET /slow/1?second HTTP/1.1", 0.0)
    assert req is not None
    be, web1 = backend("web1")
    req.queued(be, web1, 0.0)
    req.dequeued(web1, pending(srv_pos=1), 1.0)
    req.connected(1.001)
    req.responded(200, 1.002)
    conn.end(req, 1.002)
    assert re.match(r"be/web1 0/1000/1/1/1002 200 0 - - ---- \S+ 1/0 ", fields(sender))


def test_a_full_maxqueue_logs_sq_without_a_wait() -> None:
    sender = Recorder()
    conn = connection("fe", 40002, "24/Nov/2026:09:49:51.369", sender)
    conn.started(0.0)
    req = conn.request(b"GET /slow/1?refused HTTP/1.1", 0.0)
    assert req is not None
    be, web1 = backend("web1")
    req.queued(be, web1, 0.0)
    req.generated(503, "SQ")
    conn.end(req, 0.0)
    assert fields(sender).startswith("be/web1 0/-1/-1/-1/0 503 0 - - SQ--")


def test_a_client_leaving_the_queue_logs_cq() -> None:
    sender = Recorder()
    conn = connection("fe", 40003, "24/Nov/2026:09:49:51.369", sender)
    conn.started(0.0)
    req = conn.request(b"GET / HTTP/1.1", 0.0)
    assert req is not None
    be, _ = backend("web1")
    req.queued(be, None, 0.0)
    req.dequeued(None, pending(be_pos=1), 0.2)
    conn.end(req, 0.2, "C")
    # As haproxy with `option abortonclose` (without it, it would still serve it).
    assert fields(sender).startswith("be/<NOSRV> 0/200/-1/-1/200 -1 0 - - CQ--")
    assert fields(sender).endswith(' 0/1 "GET / HTTP/1.1"')


def test_a_tarpit_logs_pt_with_the_time_held() -> None:
    sender = Recorder()
    conn = connection("fe", 40004, "24/Nov/2026:09:47:41.342", sender)
    conn.started(0.0)
    answer = b"HTTP/1.1 500 Internal Server Error\r\n"
    req = conn.request(b"GET /tarpit HTTP/1.1", 0.0, answer)
    assert req is not None
    req.tarpit(0.0)
    req.tarpitted(500, 0.0, 0.300)
    conn.sent += 205
    conn.end(req, 0.301)
    assert fields(sender).startswith("fe/<NOSRV> -1/300/-1/-1/301 500 205 - - PT--")


def test_a_request_moved_off_a_server_going_down_logs_a_redispatch() -> None:
    # HAProxy 2.6.12 in the lab (tests/e2e/test_queue_vs_haproxy.py): the
    # request waits for web1, web1 goes into maintenance with `option
    # redispatch`, web2 serves it: %rc is +0, %sq counts its place in web1's.
    sender = Recorder()
    conn = connection("fe", 40003, "24/Nov/2026:09:49:52.000", sender)
    conn.started(0.0)
    req = conn.request(b"GET /slow/1?queued HTTP/1.1", 0.0)
    assert req is not None
    be, web1 = backend("web1")
    web2 = SimpleNamespace(name="web2", sessions=0)
    req.queued(be, web1, 0.0)
    req.moved(web2)
    req.dequeued(web2, pending(srv_pos=1), 0.3)
    req.connected(0.301)
    req.responded(200, 0.302)
    conn.end(req, 0.302)
    assert re.match(r"be/web2 0/300/1/1/302 200 0 - - ---- \d+/\d+/\d+/0/\+0 1/0 ",
                    fields(sender)), fields(sender)
