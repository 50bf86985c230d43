"""Servers changed at run time through Upstreams (what health checks and the runtime
API call), and the observer that passive health analysis (``observe``) listens to;
end to end on loopback."""

from __future__ import annotations

import socket
import threading

import pytest
from l7_harness import (
    ProxyStarter,
    RunningProxy,
    ScriptedServer,
    Servers,
    connect,
    free_port,
    get,
    raw_exchange,
    stats_csv,
)

from pyxlb.health.state import Analyze
from pyxlb.l7.responses import error_response


def config(servers: dict[str, str], balance: str = "roundrobin", server_ms: int = 50000) -> str:
    """``servers`` maps each server name to the rest of its line (address, options);
    no connection retries, so that a dead server's request is one failure."""
    lines = "".join(f"    server {name} {rest}\n" for name, rest in servers.items())
    return f"""
defaults
    mode http
    timeout connect 2000
    timeout client 50000
    timeout server {server_ms}

frontend http_front
    bind 127.0.0.1:8080
    stats uri /haproxy?stats
    default_backend b

backend b
    balance {balance}
    retries 0
{lines}"""


def two(backends: Servers) -> dict[str, str]:
    return {name: f"127.0.0.1:{port}" for name, port in backends.ports.items()}


def servers_of(proxy: RunningProxy, n: int) -> list[str]:
    """Who answers ``n`` requests on one keep-alive connection (the status when not 200)."""
    conn = connect(proxy)
    seen = []
    for i in range(n):
        resp = get(conn, f"/r{i}")
        seen.append(resp.getheader("X-Server") if resp.status == 200 else str(resp.status))
    conn.close()
    return seen


# -- server state


def test_down_server_gets_no_traffic_and_shows_down(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(two(backends)))
    assert servers_of(proxy, 2) == ["web1", "web2"]  # web1 has a pooled connection now
    up = proxy.upstreams
    proxy.call(up.set_server_state, "b", "web1", False)
    assert servers_of(proxy, 4) == ["web2"] * 4
    # Going down closed web1's idle connections.
    assert proxy.call(lambda: up.backend("b").server("web1").idle) == []
    rows = stats_csv(proxy)
    assert rows["web1"]["status"] == "DOWN"
    assert rows["web2"]["status"] == "no check"
    assert (rows["BACKEND"]["status"], rows["BACKEND"]["act"]) == ("UP", "1")

    # With the status text the health monitor gives.
    proxy.call(up.set_server_state, "b", "web1", True, "UP 1/3")
    assert sorted(servers_of(proxy, 2)) == ["web1", "web2"]
    assert stats_csv(proxy)["web1"]["status"] == "UP 1/3"
    proxy.call(up.set_server_status, "b", "web1", "UP")
    assert stats_csv(proxy)["web1"]["status"] == "UP"


def test_no_usable_server_gives_503(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config(two(backends)))
    up = proxy.upstreams
    proxy.call(up.set_server_state, "b", "web1", False)
    proxy.call(up.set_server_state, "b", "web2", False, "MAINT")
    raw = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw == error_response(503, close=True)
    rows = stats_csv(proxy)
    assert (rows["web1"]["status"], rows["web2"]["status"]) == ("DOWN", "MAINT")
    assert rows["BACKEND"]["status"] == "DOWN"
    assert rows["BACKEND"]["stot"] == "1"
    assert rows["web1"]["stot"] == rows["web2"]["stot"] == "0"
    # Back up: served again.
    proxy.call(up.set_server_state, "b", "web2", True)
    assert servers_of(proxy, 2) == ["web2", "web2"]


def test_backup_takes_over_when_actives_are_down(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    servers = two(backends)
    servers["web2"] += " backup"
    proxy = run_proxy(config(servers))
    assert servers_of(proxy, 2) == ["web1", "web1"]
    proxy.call(proxy.upstreams.set_server_state, "b", "web1", False)
    assert servers_of(proxy, 2) == ["web2", "web2"]


def test_set_weight(backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config(two(backends)))
    up = proxy.upstreams
    proxy.call(up.set_weight, "b", "web1", 0)
    assert servers_of(proxy, 3) == ["web2"] * 3
    assert stats_csv(proxy)["web1"]["weight"] == "0"
    proxy.call(up.set_weight, "b", "web1", 3)
    assert servers_of(proxy, 8).count("web1") == 6
    assert stats_csv(proxy)["BACKEND"]["weight"] == "4"
    with pytest.raises(ValueError, match="between 0 and 256"):
        proxy.call(up.set_weight, "b", "web1", 257)
    with pytest.raises(ValueError, match="no server named 'nope'"):
        proxy.call(up.set_server_state, "b", "nope", False)
    with pytest.raises(ValueError, match="no backend named 'nope'"):
        proxy.call(up.set_weight, "nope", "web1", 1)


def test_static_algorithm_refuses_other_weights(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(two(backends), balance="static-rr"))
    with pytest.raises(ValueError, match="static LB algorithm"):
        proxy.call(proxy.upstreams.set_weight, "b", "web1", 2)


# -- observation


class Seen:
    """An observer that records its calls (made on the proxy's loop thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Analyze]] = []

    def __call__(self, backend: str, server: str, analyze: Analyze) -> None:
        self.calls.append((backend, server, analyze))

    def of(self, server: str) -> list[Analyze]:
        return [a for _, s, a in self.calls if s == server]


def test_observer_sees_connections_and_statuses(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    seen = Seen()
    proxy = run_proxy(config({
        "dead": f"127.0.0.1:{free_port()} observe layer4",
        "live": f"127.0.0.1:{backends.ports['web1']} observe layer7",
        "quiet": f"127.0.0.1:{backends.ports['web2']}",
    }), observer=seen)
    conn = connect(proxy)
    statuses = []
    # Round-robin: dead, live, quiet, dead, live, quiet, ...
    for path in ("/", "/status/404", "/", "/", "/status/500", "/", "/", "/status/501"):
        statuses.append(get(conn, path).status)
    conn.close()
    assert statuses == [503, 404, 200, 503, 500, 200, 503, 501]
    assert seen.of("dead") == [Analyze.L4_ERR] * 3
    # One connection (then pooled): one L4 success; 501 is the client's doing.
    assert seen.of("live") == [
        Analyze.L4_OK, Analyze.HTTP_OK, Analyze.HTTP_STS, Analyze.HTTP_OK,
    ]
    assert seen.of("quiet") == []
    assert {b for b, _, _ in seen.calls} == {"b"}


def scripted_exchange(proxy: RunningProxy, server: ScriptedServer, reply: bytes | None) -> bytes:
    """One request through the proxy to a hand-driven server that sends ``reply``
    and closes (None: says nothing and keeps the connection open)."""
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        upstream = server.accept()
        upstream.recv(65536)
        if reply is not None:
            upstream.sendall(reply)
            upstream.close()
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        upstream.close()
    return data


def test_observer_sees_server_failures(run_proxy: ProxyStarter) -> None:
    seen = Seen()
    server = ScriptedServer()
    proxy = run_proxy(
        config({"s": f"127.0.0.1:{server.port} observe layer7"}, server_ms=300),
        observer=seen,
    )
    assert scripted_exchange(proxy, server, b"") == error_response(502, close=True)
    assert scripted_exchange(proxy, server, b"GARBAGE\r\n\r\n") == error_response(502, close=True)
    assert scripted_exchange(proxy, server, None) == error_response(504, close=True)
    # Cut short in the body: a server abort, not counted (as in HAProxy).
    cut = scripted_exchange(proxy, server, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert cut.endswith(b"abc")
    server.close()
    assert seen.of("s") == [
        Analyze.L4_OK, Analyze.HTTP_BROKEN_PIPE,
        Analyze.L4_OK, Analyze.HTTP_HDRRSP,
        Analyze.L4_OK, Analyze.HTTP_READ_TIMEOUT,
        Analyze.L4_OK, Analyze.HTTP_OK,
    ]


def test_pooled_connection_closed_by_server_is_not_a_failure(run_proxy: ProxyStarter) -> None:
    # The server closes its keep-alive connection as the next request arrives; the
    # proxy sends again on a fresh connection, and nothing is held against the server.
    seen = Seen()
    server = ScriptedServer()
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def serve() -> None:
        first = server.accept()
        first.recv(65536)
        first.sendall(ok)
        first.recv(65536)
        first.close()
        second = server.accept()
        second.recv(65536)
        second.sendall(ok)
        second.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    proxy = run_proxy(config({"s": f"127.0.0.1:{server.port} observe layer7"}), observer=seen)
    conn = connect(proxy)
    assert [get(conn).status, get(conn).status] == [200, 200]
    conn.close()
    thread.join(timeout=5)
    server.close()
    assert seen.of("s") == [Analyze.L4_OK, Analyze.HTTP_OK, Analyze.L4_OK, Analyze.HTTP_OK]
