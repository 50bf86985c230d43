"""maxconn queues through the proxy on loopback: requests beyond a server's maxconn
wait and are served oldest first, a cookie's full server keeps its requests in its
own queue, maxqueue refuses, `timeout queue` answers HAProxy's 503, and a client
leaving gives its place up. The server holds `/hold` requests until the test lets
them go, so nothing here depends on timing.

The bytes and counters are HAProxy 2.6.12's in the lab (tests/e2e/test_queue_in_lab.py).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from l7_harness import HTTP_DEFAULTS, Backend, ProxyStarter, RunningProxy, connect, stats_csv

from pyxlb.l7.responses import error_response


class HoldingServer:
    """A test backend that records the paths it receives, in order, and holds
    `/hold` requests until `release()`."""

    def __init__(self, name: str) -> None:
        self.seen: list[str] = []
        self.gate = threading.Event()
        outer = self

        class Handler(Backend):
            def _reply(self, head_only: bool) -> None:
                outer.seen.append(self.path)
                if self.path.startswith("/hold"):
                    outer.gate.wait(10)
                super()._reply(head_only)

        Handler.name = name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def holding() -> Iterator[Callable[[str], HoldingServer]]:
    started: list[HoldingServer] = []

    def start(name: str) -> HoldingServer:
        server = HoldingServer(name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def config(servers: str, backend: str = "", defaults: str = "") -> str:
    return f"""
{HTTP_DEFAULTS}{defaults}
frontend http_front
    bind 127.0.0.1:8080
    stats uri /haproxy?stats
    default_backend b

backend b
{backend}
{servers}"""


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


class Request(threading.Thread):
    """One request on its own connection, in a thread: `response` when done."""

    def __init__(self, proxy: RunningProxy, path: str, cookie: str | None = None) -> None:
        super().__init__(daemon=True)
        self.conn = connect(proxy)
        self.path = path
        self.headers = {} if cookie is None else {"Cookie": cookie}
        self.status = 0
        self.server = ""
        self.start()

    def run(self) -> None:
        self.conn.request("GET", self.path, headers=self.headers)
        resp = self.conn.getresponse()
        resp.read()
        self.status = resp.status
        self.server = resp.getheader("X-Server") or ""

    def done(self) -> tuple[int, str]:
        self.join(10)
        self.conn.close()
        return self.status, self.server


def queue_lengths(proxy: RunningProxy) -> dict[str, int]:
    def read() -> dict[str, int]:
        queues = proxy.upstreams.backend("b").queues
        found = {"b": queues.waiting()}
        for server in proxy.upstreams.backend("b").servers:
            found[server.name] = queues.waiting(server)
        return found
    return proxy.call(read)


def test_requests_beyond_maxconn_wait_and_are_served_oldest_first(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1 = holding("web1")
    proxy = run_proxy(config(f"    server web1 127.0.0.1:{web1.port} maxconn 1"))
    first = Request(proxy, "/hold")
    wait_until(lambda: web1.seen == ["/hold"])
    second = Request(proxy, "/second")
    wait_until(lambda: queue_lengths(proxy)["b"] == 1)
    third = Request(proxy, "/third")
    wait_until(lambda: queue_lengths(proxy)["b"] == 2)
    rows = stats_csv(proxy)
    assert (rows["BACKEND"]["qcur"], rows["BACKEND"]["qmax"]) == ("2", "2")
    assert (rows["web1"]["qcur"], rows["web1"]["qmax"], rows["web1"]["qlimit"]) == ("0", "0", "")
    assert web1.seen == ["/hold"]  # the others wait in the proxy
    web1.release()
    assert [r.done() for r in (first, second, third)] == [(200, "web1")] * 3
    assert web1.seen == ["/hold", "/second", "/third"]
    rows = stats_csv(proxy)
    assert (rows["BACKEND"]["qcur"], rows["BACKEND"]["qmax"]) == ("0", "2")
    assert rows["web1"]["stot"] == "3"


def test_timeout_queue_answers_haproxys_503_and_keeps_the_connection(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1 = holding("web1")
    proxy = run_proxy(config(f"    server web1 127.0.0.1:{web1.port} maxconn 1",
                             backend="    timeout queue 200ms"))
    first = Request(proxy, "/hold")
    wait_until(lambda: proxy.served()["b/web1"] == 1)
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        expected = error_response(503, False)
        got = b""
        while len(got) < len(expected):
            chunk = s.recv(65536)
            assert chunk, f"closed after {got!r}"
            got += chunk
        assert got == expected
        assert queue_lengths(proxy)["b"] == 0
        web1.release()
        assert first.done() == (200, "web1")
        # The connection stays open for the next request, as HAProxy's.
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    assert web1.seen == ["/hold", "/next"]
    # HAProxy counts the wait given up in the backend's econ (no server had it).
    rows = stats_csv(proxy)
    assert (rows["BACKEND"]["econ"], rows["web1"]["econ"]) == ("1", "0")


def test_timeout_queue_defaults_to_timeout_connect(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1 = holding("web1")
    proxy = run_proxy(config(f"    server web1 127.0.0.1:{web1.port} maxconn 1",
                             backend="    timeout connect 200ms"))
    assert proxy.call(lambda: proxy.upstreams.backend("b").queues.timeout) == 0.2
    first = Request(proxy, "/hold")
    wait_until(lambda: proxy.served()["b/web1"] == 1)
    assert Request(proxy, "/late").done() == (503, "")
    web1.release()
    assert first.done() == (200, "web1")


def test_a_cookies_full_server_keeps_the_request_in_its_own_queue(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1, web2 = holding("web1"), holding("web2")
    proxy = run_proxy(config(
        f"    server web1 127.0.0.1:{web1.port} maxconn 1 cookie w1\n"
        f"    server web2 127.0.0.1:{web2.port} maxconn 1 cookie w2",
        backend="    cookie SRV insert indirect nocache"))
    first = Request(proxy, "/hold", cookie="SRV=w1")
    wait_until(lambda: proxy.served()["b/web1"] == 1)
    sticky = Request(proxy, "/sticky", cookie="SRV=w1")
    wait_until(lambda: queue_lengths(proxy)["web1"] == 1)
    # web2 is free and serves a request without cookie meanwhile.
    assert Request(proxy, "/free").done() == (200, "web2")
    assert queue_lengths(proxy) == {"b": 0, "web1": 1, "web2": 0}
    rows = stats_csv(proxy)
    assert (rows["web1"]["qcur"], rows["BACKEND"]["qcur"]) == ("1", "0")
    web1.release()
    assert first.done() == (200, "web1")
    assert sticky.done() == (200, "web1")
    assert web1.seen == ["/hold", "/sticky"]


def test_a_server_going_down_hands_its_queue_over_with_redispatch(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1, web2 = holding("web1"), holding("web2")
    proxy = run_proxy(config(
        f"    server web1 127.0.0.1:{web1.port} maxconn 1 cookie w1\n"
        f"    server web2 127.0.0.1:{web2.port} maxconn 1 cookie w2",
        backend="    option redispatch\n    cookie SRV insert indirect nocache"))
    first = Request(proxy, "/hold", cookie="SRV=w1")
    wait_until(lambda: proxy.served()["b/web1"] == 1)
    sticky = Request(proxy, "/sticky", cookie="SRV=w1")
    wait_until(lambda: queue_lengths(proxy)["web1"] == 1)
    proxy.call(proxy.upstreams.set_server_state, "b", "web1", False)
    assert sticky.done() == (200, "web2")
    assert queue_lengths(proxy) == {"b": 0, "web1": 0, "web2": 0}
    assert stats_csv(proxy)["web1"]["wredis"] == "1"
    web1.release()
    assert first.done() == (200, "web1")


def test_maxqueue_refuses_beyond_the_servers_queue(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1 = holding("web1")
    proxy = run_proxy(config(
        f"    server web1 127.0.0.1:{web1.port} maxconn 1 maxqueue 1 cookie w1",
        backend="    cookie SRV insert indirect nocache"))
    first = Request(proxy, "/hold", cookie="SRV=w1")
    wait_until(lambda: proxy.served()["b/web1"] == 1)
    queued = Request(proxy, "/queued", cookie="SRV=w1")
    wait_until(lambda: queue_lengths(proxy)["web1"] == 1)
    assert Request(proxy, "/refused", cookie="SRV=w1").done() == (503, "")
    rows = stats_csv(proxy)
    assert rows["web1"]["qlimit"] == "1"
    # HAProxy counts the refusal in the server's econ (and so the backend's).
    assert (rows["web1"]["econ"], rows["BACKEND"]["econ"]) == ("1", "1")
    web1.release()
    assert first.done() == queued.done() == (200, "web1")
    assert web1.seen == ["/hold", "/queued"]


def leave_queue(proxy: RunningProxy, path: str) -> None:
    """A request that is queued, then its client closes (a FIN)."""
    leaver = http.client.HTTPConnection("127.0.0.1", proxy.port["http_front"], timeout=5)
    leaver.request("GET", path)
    wait_until(lambda: queue_lengths(proxy)["b"] == 1)
    leaver.close()


def test_a_client_closing_while_queued_is_still_served_as_haproxy_does(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    # HAProxy 2.6 without `option abortonclose` cannot tell a close from a
    # half-close and forwards the request once a slot frees.
    web1 = holding("web1")
    proxy = run_proxy(config(f"    server web1 127.0.0.1:{web1.port} maxconn 1",
                             backend="    timeout queue 30s"))
    first = Request(proxy, "/hold")
    wait_until(lambda: web1.seen == ["/hold"])
    leave_queue(proxy, "/gone")
    web1.release()
    assert first.done() == (200, "web1")
    wait_until(lambda: web1.seen == ["/hold", "/gone"])
    wait_until(lambda: proxy.served()["b/web1"] == 0)


def test_abortonclose_drops_a_queued_request_whose_client_left(
        run_proxy: ProxyStarter, holding: Callable[[str], HoldingServer]) -> None:
    web1 = holding("web1")
    proxy = run_proxy(config(f"    server web1 127.0.0.1:{web1.port} maxconn 1",
                             backend="    timeout queue 30s\n    option abortonclose"))
    first = Request(proxy, "/hold")
    wait_until(lambda: web1.seen == ["/hold"])
    leave_queue(proxy, "/gone")
    wait_until(lambda: queue_lengths(proxy)["b"] == 0)  # long before `timeout queue`
    web1.release()
    assert first.done() == (200, "web1")
    assert Request(proxy, "/after").done() == (200, "web1")
    assert web1.seen == ["/hold", "/after"]
    wait_until(lambda: proxy.served()["b/web1"] == 0)
