"""The l7 proxy end to end on loopback: real sockets, stdlib clients and servers."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import pytest
from l7_harness import (
    ProxyStarter,
    RunningProxy,
    ScriptedServer,
    Servers,
    big_body,
    connect,
    free_port,
    get,
    raw_exchange,
    stats_csv,
)

from pyxlb.l7.proxy import ClientConnection, _frontend_of
from pyxlb.l7.responses import BAD_REQUEST, REQUEST_TIMEOUT, UNPROCESSABLE, error_response


def config(*ports: int, backend_lines: str = "    retries 0\n") -> str:
    """One frontend with stats and forwardfor; a backend with a server per port,
    named web1, web2, ... (no connection retries unless `backend_lines` says)."""
    servers = backend_lines + "".join(
        f"    server web{i} 127.0.0.1:{port}\n" for i, port in enumerate(ports, start=1)
    )
    return f"""
defaults
    mode http
    timeout connect 5000
    timeout client 50000
    timeout server 50000

frontend http_front
    bind 127.0.0.1:8080
    stats uri /haproxy?stats
    option forwardfor
    default_backend http_back

backend http_back
    balance roundrobin
{servers}"""


@pytest.fixture
def proxy(backends: Servers, run_proxy: ProxyStarter) -> RunningProxy:
    return run_proxy(config(backends.ports["web1"], backends.ports["web2"]))


def test_keep_alive_connection_alternates_servers(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    seen = []
    sock = None
    for i in range(10):
        resp = get(conn, f"/r{i}")
        assert resp.status == 200
        seen.append(resp.getheader("X-Server"))
        # One TCP connection for all ten: http.client would reconnect after a close.
        sock = sock or conn.sock
        assert conn.sock is sock and not resp.will_close
    assert seen == ["web1", "web2"] * 5
    conn.close()


def test_accepted_connections_delay_their_acks_as_haproxys_http_listeners(
        proxy: RunningProxy) -> None:
    # With quick ACKs, a new connection's request is ACKed alone before the
    # response; HAProxy turns them off on http listeners (one packet less per
    # connection). Linux reports an accepted socket's mode by this option,
    # read before any exchange: one turns delayed ACKs on by itself.
    def quickack_of_accepted() -> list[int]:
        return [c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_QUICKACK)
                for fe in set(_frontend_of.values()) for c in fe.connections]

    with socket.create_connection(("127.0.0.1", proxy.port["http_front"])):
        deadline = time.monotonic() + 5
        while not (modes := proxy.call(quickack_of_accepted)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert modes == [0]


def test_separate_connections_alternate_and_stats_count_them(proxy: RunningProxy) -> None:
    seen = []
    for i in range(10):
        conn = connect(proxy)
        seen.append(get(conn, f"/r{i}").getheader("X-Server"))
        conn.close()
    assert seen == ["web1", "web2"] * 5

    rows = stats_csv(proxy)
    assert list(rows) == ["FRONTEND", "web1", "web2", "BACKEND"]
    assert rows["web1"]["stot"] == rows["web2"]["stot"] == "5"
    assert rows["web1"]["lbtot"] == rows["web2"]["lbtot"] == "5"
    assert rows["web1"]["status"] == "no check"
    assert rows["BACKEND"]["stot"] == "10"
    # The stats request counts for the frontend, not for any server.
    assert rows["FRONTEND"]["req_tot"] == "11"
    assert rows["FRONTEND"]["stot"] == "11"
    assert rows["FRONTEND"]["intercepted"] == "1"


def test_stats_html_lists_servers(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    for _ in range(4):
        get(conn)
    sock = conn.sock
    conn.request("GET", "/haproxy?stats")
    resp = conn.getresponse()
    page = resp.read().decode()
    assert not resp.will_close
    assert resp.status == 200
    assert resp.getheader("content-type") == "text/html"
    assert "<title>Statistics Report for pyxlb</title>" in page
    assert "web1" in page and "web2" in page and "http_back" in page
    conn.request("HEAD", "/haproxy?stats;csv")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    # Still the same connection, and the stats requests reached no server.
    assert get(conn).getheader("X-Server") == "web1"
    assert conn.sock is sock


def test_post_body_is_forwarded_intact(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    for size in (0, 1, 70_000, 3_000_000):
        body = big_body(size)
        conn.request("POST", "/upload", body=body)
        resp = conn.getresponse()
        assert resp.read().decode() == f"{size} {hashlib.sha256(body).hexdigest()}"


def test_chunked_request_body_is_forwarded(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    pieces = [b"a" * 10, b"b" * 100_000, b"c"]
    conn.request("POST", "/upload", body=iter(pieces), encode_chunked=True)
    resp = conn.getresponse()
    body = b"".join(pieces)
    assert resp.read().decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_chunked_response_is_relayed(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    conn.request("GET", "/chunked")
    resp = conn.getresponse()
    assert resp.getheader("transfer-encoding") == "chunked"
    assert resp.read() == b"hello chunked world"
    # The connection survives a chunked response.
    assert get(conn).status == 200
    raw = raw_exchange(proxy, b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"\r\n\r\n6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n")


def test_large_response_to_slow_reader_uses_back_pressure(
    proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = []
    original = ClientConnection.pause_writing

    def pause_writing(self: ClientConnection) -> None:
        paused.append(self.queue[0].upstream is not None)
        original(self)

    monkeypatch.setattr(ClientConnection, "pause_writing", pause_writing)
    size = 20_000_000  # more than loopback's socket buffers hold
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=10) as s:
        s.sendall(f"GET /big/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        time.sleep(0.3)  # not reading: the proxy's write buffer fills
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length: %d" % size in head
    assert body == big_body(size)
    # The client's full buffer paused reading from the server.
    assert paused and all(paused)


def test_head_request_keeps_connection_usable(proxy: RunningProxy) -> None:
    conn = connect(proxy)
    conn.request("HEAD", "/x")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    assert int(resp.getheader("content-length")) > 0
    conn.request("HEAD", "/chunked")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    resp = get(conn, "/after")
    assert resp.status == 200 and resp.getheader("X-Got-Path") == "/after"


def test_pipelined_requests_are_answered_in_order(proxy: RunningProxy) -> None:
    data = b"".join(
        b"GET /p%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (i, b"Connection: close\r\n" if i == 2 else b"")
        for i in range(3)
    )
    raw = raw_exchange(proxy, data)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.index(b"web1 /p0") < raw.index(b"web2 /p1") < raw.index(b"web1 /p2")


def test_headers_forwarded_like_haproxy(proxy: RunningProxy) -> None:
    raw = raw_exchange(proxy, b"GET /h HTTP/1.0\r\nHost: x\r\n\r\n")
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nx-got-xff: 127.0.0.1\r\n" in head
    # HTTP/1.0 client: keep-alive asked of the server, close announced to the client.
    assert b"\r\nx-got-connection: keep-alive\r\n" in head
    assert head.endswith(b"\r\nconnection: close")


def test_malformed_request_gets_400_and_close(proxy: RunningProxy) -> None:
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert raw == BAD_REQUEST
    # Bad framing is refused before anything reaches a server.
    raw = raw_exchange(
        proxy,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    assert raw == BAD_REQUEST
    rows = stats_csv(proxy)
    assert rows["FRONTEND"]["ereq"] == "2"
    assert rows["web1"]["stot"] == rows["web2"]["stot"] == "0"


def test_bad_request_after_good_one_is_answered_in_turn(proxy: RunningProxy) -> None:
    raw = raw_exchange(proxy, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n")
    first, _, rest = raw.partition(b"web1 /ok\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest == BAD_REQUEST


def test_chunked_under_another_coding_gets_422_in_turn(proxy: RunningProxy) -> None:
    raw = raw_exchange(proxy, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                       b"\r\n3\r\nabc\r\n0\r\n\r\n")
    first, _, rest = raw.partition(b"web1 /ok\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest == UNPROCESSABLE
    assert stats_csv(proxy)["FRONTEND"]["ereq"] == "1"


def test_oversized_head_gets_400(proxy: RunningProxy) -> None:
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert raw == BAD_REQUEST


def test_dead_server_gives_503(backends: Servers, run_proxy: ProxyStarter) -> None:
    dead = free_port()
    proxy = run_proxy(config(dead, dead))
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=0.5)
    # Keep-alive survives a 503, as in HAProxy 2.6: nothing closes until the timeout.
    assert raw == error_response(503, close=False) + b"<timeout>"
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw == error_response(503, close=True)


def test_one_dead_server_does_not_stop_the_other(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(backends.ports["web1"], free_port()))
    statuses = []
    for _ in range(4):
        conn = connect(proxy)
        statuses.append(get(conn).status)
        conn.close()
    assert statuses == [200, 503, 200, 503]


def test_a_refused_connection_is_retried_then_503(run_proxy: ProxyStarter) -> None:
    # retries 1: one more attempt after HAProxy's 1 s turn-around, then the 503.
    dead = free_port()
    proxy = run_proxy(config(dead, backend_lines="    retries 1\n"))
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       timeout=5)
    assert raw == error_response(503, close=True)


def test_redispatch_sends_a_refused_request_to_the_other_server_at_once(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # As haproxy 2.6.12 answered in the lab (roundrobin, two active servers, no
    # persistence): no retry on the refusing server, no turn-around; wretr 0,
    # one wredis per request that met it, no econ.
    proxy = run_proxy(config(free_port(), backends.ports["web1"],
                             backend_lines="    retries 2\n    option redispatch\n"))
    served = []
    for _ in range(4):
        conn = connect(proxy)
        response = get(conn)
        served.append((response.status, response.getheader("x-server")))
        conn.close()
    assert served == [(200, "web1")] * 4
    rows = stats_csv(proxy)
    dead, backend = rows["web1"], rows["BACKEND"]  # config() names the dead one web1
    assert (dead["wretr"], dead["econ"]) == ("0", "0") and int(dead["wredis"]) >= 2
    assert (backend["wretr"], backend["wredis"]) == (dead["wretr"], dead["wredis"])


def test_a_hashing_backend_retries_the_same_server_then_gives_up(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # balance source sends the client to the refusing server again on the
    # last retry's redispatch (the map gives it back): as haproxy 2.6.12,
    # 503 after retries 2, counted as two wretr and one econ.
    # 127.0.0.1's source hash picks the second of two servers: the dead one.
    proxy = run_proxy(config(backends.ports["web1"], free_port(), backend_lines=(
        "    balance source\n    retries 2\n    option redispatch\n"
        "    timeout connect 100ms\n")))
    statuses = []
    for _ in range(2):
        conn = connect(proxy)
        statuses.append(get(conn).status)
        conn.close()
    dead = stats_csv(proxy)["web2"]
    assert statuses == [503, 503]
    assert (dead["wretr"], dead["wredis"], dead["econ"]) == ("4", "0", "2")


def test_request_lost_on_pooled_connection_is_sent_again(run_proxy: ProxyStarter) -> None:
    # A server that closes a keep-alive connection just as the next request arrives
    # on it (the race every pool has): the proxy must resend on a fresh connection.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"

    def serve() -> None:
        first, _ = listener.accept()
        first.recv(65536)
        first.sendall(ok % (5, b"first"))
        first.recv(65536)  # the second request: dropped
        first.close()
        second, _ = listener.accept()
        second.recv(65536)
        second.sendall(ok % (6, b"second"))
        second.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    proxy = run_proxy(config(port))
    conn = connect(proxy)
    assert get(conn).status == 200
    conn.request("GET", "/again")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"second")
    server.join(timeout=5)
    listener.close()


def test_bad_server_response_gives_502(run_proxy: ProxyStarter) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    proxy = run_proxy(config(port, port))
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        server_side, _ = listener.accept()
        server_side.recv(65536)
        server_side.sendall(b"GARBAGE\r\n\r\n")
        server_side.close()
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    listener.close()
    assert data == error_response(502, close=True)


def test_no_default_backend_gives_503(run_proxy: ProxyStarter) -> None:
    proxy = run_proxy("""
defaults
    mode http
    timeout client 5000
frontend lonely
    bind 127.0.0.1:8080
""")
    raw = raw_exchange(
        proxy,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "lonely",
    )
    assert raw == error_response(503, close=False) + error_response(503, close=True)
    # A body that has not arrived yet cannot be waited for: answer and close.
    raw = raw_exchange(
        proxy, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", "lonely"
    )
    assert raw == error_response(503, close=True)


def timeouts_config(port: int, client_ms: int = 50000, server_ms: int = 50000) -> str:
    return f"""
defaults
    mode http
    timeout connect 1000
    timeout client {client_ms}
    timeout server {server_ms}
frontend http_front
    bind 127.0.0.1:8080
    default_backend b
backend b
    server s 127.0.0.1:{port}
"""


def test_silent_server_gives_504(run_proxy: ProxyStarter) -> None:
    server = ScriptedServer()
    proxy = run_proxy(timeouts_config(server.port, server_ms=300))
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        upstream = server.accept()
        upstream.recv(65536)  # and never answer
        reply = s.recv(65536)
        upstream.close()
    server.close()
    assert reply == error_response(504, close=False)


def test_client_timeout_as_haproxy(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(timeouts_config(backends.ports["web1"], client_ms=200))
    # A partial request, or no request at all, gets a 408.
    started = time.monotonic()
    assert raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\n") == REQUEST_TIMEOUT
    assert 0.15 < time.monotonic() - started < 1.5
    assert raw_exchange(proxy, b"") == REQUEST_TIMEOUT
    # An idle keep-alive connection closes silently.
    raw = raw_exchange(proxy, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"web1 /1\n")


def test_expect_100_continue_is_relayed(proxy: RunningProxy) -> None:
    body = b"x" * 1000
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(
            b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        interim = s.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(f"1000 {hashlib.sha256(body).hexdigest()}".encode())


def test_upgrade_a_server_declines_stays_http(proxy: RunningProxy) -> None:
    # The server answers 200, not 101: what followed the request is the next request.
    raw = raw_exchange(
        proxy,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b"x-got-connection: Upgrade\r\n" in raw  # forwarded as HAProxy does
    assert b"web2 /next\n" in raw


def test_half_closed_client_still_gets_its_answer(proxy: RunningProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"web1 /half\n")


@pytest.mark.parametrize(("sent", "answers"), [
    (b"", []),
    (b"GET /half HT", []),
    (b"early", []),
    (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT", [b" /a\n"]),
], ids=["nothing", "unfinished-line", "unfinished-method", "after-a-request"])
def test_a_head_cut_short_by_a_half_close_gets_400(
    proxy: RunningProxy, sent: bytes, answers: list[bytes]
) -> None:
    # As haproxy 2.6.12 (tests/e2e/test_bad_input_vs_haproxy.py): the requests
    # before it answered, then a 400, then the close.
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.endswith(BAD_REQUEST)
    assert data.count(b"HTTP/1.1 ") == len(answers) + 1
    for answer in answers:
        assert answer in data


def test_body_delimited_by_close_is_relayed_then_client_closed(run_proxy: ProxyStarter) -> None:
    server = ScriptedServer()
    proxy = run_proxy(timeouts_config(server.port))
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        upstream = server.accept()
        upstream.recv(65536)
        upstream.sendall(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil")
        upstream.sendall(b" the end")
        upstream.close()
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    server.close()
    assert data == b"HTTP/1.1 200 OK\r\nx-a: 1\r\nconnection: close\r\n\r\nuntil the end"


def test_request_arriving_byte_by_byte(proxy: RunningProxy) -> None:
    request = (
        b"POST /frag?q=1 HTTP/1.1\r\nHost: x\r\nX-Long-Header-Name: some value\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            s.send(request[i : i + 1])
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(f"11 {hashlib.sha256(b'hello world').hexdigest()}".encode())
    assert b"x-got-path: /frag?q=1\r\n" in data


def test_server_close_adds_connection_close_except_for_http_1_0(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # Observed on HAProxy 2.6.12: an HTTP/1.0 request reaches the server without a
    # Connection header, HTTP/1.0 closing by default.
    proxy = run_proxy(config(backends.ports["web1"]).replace(
        "    option forwardfor\n", "    option http-server-close\n"))
    raw = raw_exchange(proxy, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert b"x-got-connection: -\r\n" in raw
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"x-got-connection: close\r\n" in raw
