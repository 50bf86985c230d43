"""Balancing through the proxy on loopback: the keys the hash algorithms get from
each request, and the connection counts leastconn and maxconn act on.

The literals are HAProxy 2.6's choices with three servers of weight 1 (map-based
hash: server = map[hash % 3], map = web1, web2, web3): ``/`` -> web3, ``/a`` ->
web1, source 127.0.0.1 -> web3 (so .2 -> web1 and .3 -> web2).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from l7_harness import (
    ProxyStarter,
    RunningProxy,
    Servers,
    connect,
    get,
    raw_exchange,
)

from pyxlb.l7.balance.hashing import sdbm


def config(balance: str, servers: Servers, server_options: str = "") -> str:
    lines = "".join(
        f"    server {name} 127.0.0.1:{port}{server_options}\n"
        for name, port in servers.ports.items()
    )
    return f"""
defaults
    mode http
    timeout connect 5000
    timeout client 50000
    timeout server 50000

frontend http_front
    bind 127.0.0.1:8080
    default_backend b

backend b
    balance {balance}
{lines}"""


def server_for(proxy: RunningProxy, path: str = "/", source: str | None = None,
               headers: dict[str, str] | None = None) -> str:
    """Which server answers a request on a new client connection."""
    conn = connect(proxy, source)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200
    return resp.getheader("X-Server")


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- balance uri


def test_uri_hash_matches_haproxy(three_backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config("uri", three_backends))
    assert server_for(proxy, "/") == "web3"
    assert server_for(proxy, "/a") == "web1"
    # Up to the '?' only, by default.
    assert server_for(proxy, "/a?x=1") == "web1"


def test_uri_hash_sends_a_uri_to_one_server(
    three_backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config("uri", three_backends))
    paths = [f"/item/{i}" for i in range(12)]
    first = {p: server_for(proxy, p) for p in paths}
    assert len(set(first.values())) == 3  # the keys do spread
    # Again, now on one keep-alive connection: the key is per request.
    conn = connect(proxy)
    for p in paths:
        assert get(conn, p).getheader("X-Server") == first[p]
    conn.close()


def test_uri_hash_per_pipelined_request(three_backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config("uri", three_backends))
    raw = raw_exchange(
        proxy,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.index(b"web3 /\n") < raw.index(b"web1 /a\n") < raw.rindex(b"web3 /\n")


# -- balance source


def test_source_hash_is_stable_per_client(
    three_backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config("source", three_backends))
    expected = {"127.0.0.1": "web3", "127.0.0.2": "web1", "127.0.0.3": "web2"}
    for _ in range(3):
        for source, server in expected.items():
            assert server_for(proxy, f"/from/{source}", source) == server
    # Every request of a connection, whatever its URI.
    conn = connect(proxy, "127.0.0.2")
    assert {get(conn, f"/r{i}").getheader("X-Server") for i in range(5)} == {"web1"}
    conn.close()


# -- balance hdr(name)


def test_header_hash_uses_the_first_such_header(
    three_backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config("hdr(X-User)", three_backends))
    names = list(three_backends.ports)
    for user in ("alice", "bob", "carol", "dave", "eve"):
        expected = names[sdbm(user.encode()) % 3]
        for _ in range(2):
            assert server_for(proxy, "/", headers={"X-User": user}) == expected
    # The first X-User header decides; a later one does not.
    raw = raw_exchange(
        proxy,
        b"GET / HTTP/1.1\r\nHost: x\r\nx-user: bob\r\nX-User: alice\r\nConnection: close\r\n\r\n",
    )
    assert f"x-server: {names[sdbm(b'bob') % 3]}\r\n".encode() in raw
    # Without the header, round-robin over the map: every server in turn.
    assert {server_for(proxy, "/") for _ in range(3)} == set(names)


# -- leastconn and maxconn: the counts the proxy reports


def slow_request(proxy: RunningProxy, ms: int) -> tuple[threading.Thread, list[str]]:
    """A request held ``ms`` by its server, from a thread; the list gets its server."""
    answered: list[str] = []

    def run() -> None:
        answered.append(server_for(proxy, f"/slow/{ms}"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: any(proxy.served().values()))
    return thread, answered


def test_leastconn_avoids_the_busy_server(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config("leastconn", backends))
    thread, answered = slow_request(proxy, 1000)
    busy = next(name for name, n in proxy.served().items() if n == 1).split("/")[1]
    idle = "web2" if busy == "web1" else "web1"
    # New connections and one keep-alive connection alike go to the idle server.
    assert [server_for(proxy, f"/q{i}") for i in range(3)] == [idle] * 3
    conn = connect(proxy)
    assert [get(conn, f"/k{i}").getheader("X-Server") for i in range(3)] == [idle] * 3
    conn.close()
    thread.join(timeout=5)
    assert answered == [busy]
    assert proxy.served() == {"b/web1": 0, "b/web2": 0}
    # Both idle again: leastconn takes turns.
    assert {server_for(proxy, "/") for _ in range(2)} == {"web1", "web2"}


def test_maxconn_full_server_is_skipped(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config("roundrobin", backends, " maxconn 1"))
    thread, answered = slow_request(proxy, 800)
    busy = next(name for name, n in proxy.served().items() if n).split("/")[1]
    other = "web2" if busy == "web1" else "web1"
    assert [server_for(proxy, "/") for _ in range(3)] == [other] * 3
    thread.join(timeout=5)
    assert answered == [busy]


def test_client_abort_gives_the_server_back(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config("leastconn", backends))
    conn = connect(proxy)
    conn.request("GET", "/slow/500")
    wait_until(lambda: sum(proxy.served().values()) == 1)
    conn.close()  # before the answer
    wait_until(lambda: sum(proxy.served().values()) == 0)
