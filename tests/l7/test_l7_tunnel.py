"""Upgrades and tunnels on loopback: the handshake bytes as HAProxy 2.6.12 forwards
them (observed in the lab), 400 and 502 where HAProxy answers them, bytes both
ways after a 101, back-pressure, half-close and ``timeout tunnel``."""

from __future__ import annotations

import socket
import time

import pytest
from l7_harness import (
    ProxyStarter,
    RunningProxy,
    ScriptedServer,
    one_server_config,
    raw_exchange,
)

from pyxlb.l7.responses import BAD_REQUEST, REQUEST_TIMEOUT, error_response

KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
UPGRADE = b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def config(port: int, timeouts: str = "", options: str = "") -> str:
    return one_server_config(port, timeouts + "\n" + options)


def read_head(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def open_tunnel(proxy: RunningProxy, scripted: ScriptedServer,
                early: bytes = b"") -> tuple[socket.socket, socket.socket, bytes]:
    """A client and a server socket joined by a tunnel; the client's 101 head."""
    client = socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5)
    client.sendall(UPGRADE + KEY + b"\r\n" + early)
    server = scripted.accept()
    read_head(server)
    server.sendall(SWITCH)
    head = read_head(client)
    return client, server, head


def test_handshake_is_forwarded_as_haproxy_does(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(config(scripted.port, options="    option http-server-close\n"
                                                     "    option forwardfor"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        # Bytes sent before the 101 wait for it, then go to the server.
        client.sendall(UPGRADE + b"Sec-WebSocket-Version: 13\r\n" + KEY + b"\r\nearly")
        server = scripted.accept()
        with server:
            got = read_head(server)
            # HAProxy adds no "connection: close" to an upgrade, even with
            # http-server-close.
            assert got == (
                b"GET /chat HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
                b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"x-forwarded-for: 127.0.0.1\r\n\r\n"
            )
            server.sendall(SWITCH + b"first")
            assert recv_exactly(client, len(SWITCH) + 5) == (
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                b"\r\nfirst"
            )
            assert recv_exactly(server, 5) == b"early"
            for i in range(3):
                client.sendall(b"ping %d" % i)
                assert recv_exactly(server, 6) == b"ping %d" % i
                server.sendall(b"pong %d" % i)
                assert recv_exactly(client, 6) == b"pong %d" % i


def test_half_close_is_passed_on_both_ways(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(config(scripted.port))
    client, server, _ = open_tunnel(proxy, scripted)
    with client, server:
        client.sendall(b"last words")
        client.shutdown(socket.SHUT_WR)
        assert recv_exactly(server, 10) == b"last words"
        assert server.recv(1) == b""  # the client's FIN reached the server
        server.sendall(b"reply after FIN")
        assert recv_exactly(client, 15) == b"reply after FIN"
        server.shutdown(socket.SHUT_WR)
        assert client.recv(1) == b""


def test_the_server_is_held_until_the_tunnel_ends(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(config(scripted.port))
    client, server, _ = open_tunnel(proxy, scripted)
    with server:
        assert proxy.served() == {"be/s1": 1}  # leastconn sees a WebSocket as a connection
        client.close()
        assert server.recv(1) == b""
    deadline = time.monotonic() + 5
    while proxy.served() != {"be/s1": 0}:
        assert time.monotonic() < deadline, "the tunnel kept its server"
        time.sleep(0.01)


def test_a_silent_client_slows_the_server_down(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    """Back-pressure: the tunnel stops reading the server while the client does not
    read, so a server cannot make pyxlb buffer what the client has not taken."""
    proxy = run_proxy(config(scripted.port))
    client, server, _ = open_tunnel(proxy, scripted)
    total = 64 * 1024 * 1024
    block = bytes(range(256)) * 256
    with client, server:
        server.setblocking(False)
        sent = 0
        stalls = 0
        while sent < total and stalls < 50:
            try:
                sent += server.send(block[: min(len(block), total - sent)])
                stalls = 0
            except BlockingIOError:
                stalls += 1
                time.sleep(0.01)
        # Socket buffers on both hops hold a few MB; the rest stayed at the server.
        assert sent < total // 2
        server.setblocking(True)
        received = 0
        while received < sent:
            chunk = client.recv(1 << 20)
            assert chunk
            received += len(chunk)
        assert received == sent


def test_tunnel_timeout_replaces_client_and_server_timeouts(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(config(scripted.port, timeouts="    timeout tunnel 1s").replace(
        "timeout client 50s", "timeout client 100ms").replace(
        "timeout server 50s", "timeout server 100ms"))
    client, server, _ = open_tunnel(proxy, scripted)
    with client, server:
        time.sleep(0.4)  # four client and server timeouts: the tunnel outlives them
        client.sendall(b"still here")
        assert recv_exactly(server, 10) == b"still here"
        client.settimeout(10)
        assert client.recv(1) == b""  # then closed once idle for the tunnel timeout
        assert server.recv(1) == b""


def test_without_tunnel_timeout_the_shorter_of_client_and_server_applies(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(config(scripted.port).replace("timeout server 50s", "timeout server 200ms"))
    client, server, _ = open_tunnel(proxy, scripted)
    with client, server:
        client.settimeout(10)
        assert client.recv(1) == b""


@pytest.mark.parametrize("request_head", [
    UPGRADE + b"\r\n",
    UPGRADE + b"Sec-WebSocket-Key: \r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket, foo\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Content-Length: 0\r\n\r\n",
], ids=["no-key", "empty-key", "mixed-case", "token-list", "empty-body"])
def test_websocket_upgrade_without_key_gets_haproxys_400(
    run_proxy: ProxyStarter, scripted: ScriptedServer, request_head: bytes
) -> None:
    proxy = run_proxy(config(scripted.port))
    assert raw_exchange(proxy, request_head, frontend="fe") == BAD_REQUEST


@pytest.mark.parametrize(("request_head", "response"), [
    # A 101 without "Connection: upgrade".
    (UPGRADE + KEY + b"\r\n", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
    # A 101 to a request that asked for no upgrade.
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", SWITCH),
    (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", SWITCH),
], ids=["no-connection-upgrade", "plain-request", "no-connection-header"])
def test_a_bad_101_gets_502(
    run_proxy: ProxyStarter, scripted: ScriptedServer, request_head: bytes, response: bytes
) -> None:
    proxy = run_proxy(config(scripted.port))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(request_head)
        with scripted.accept() as server:
            read_head(server)
            server.sendall(response)
            assert recv_exactly(client, len(error_response(502, False))) == \
                error_response(502, False)


# A client's masked WebSocket text frame, "hello".
FRAME = bytes.fromhex("818501020304") + bytes(
    b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=True))


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


@pytest.mark.parametrize(("after", "answer"), [
    # Token characters may begin a request line: HAProxy waits for the rest of it.
    ([b"early"], REQUEST_TIMEOUT),
    ([b"ear", b"ly-", b"GE"], REQUEST_TIMEOUT),
    # Nothing can begin a request with these: HAProxy answers 400 at once.
    ([FRAME], BAD_REQUEST),
    ([b"ear", b"ly\r\n"], BAD_REQUEST),
    # A method llhttp does not know: refused once it ends (HAProxy forwards it).
    ([b"early", b" / HTTP/1.1\r\n"], BAD_REQUEST),
], ids=["text", "text-in-pieces", "websocket-frame", "text-then-line-end", "unknown-method"])
def test_what_follows_a_refused_upgrade_is_read_as_haproxy_reads_it(
    run_proxy: ProxyStarter, scripted: ScriptedServer, after: list[bytes], answer: bytes
) -> None:
    # As haproxy 2.6.12 in the lab (tests/e2e/test_bad_input_vs_haproxy.py): the
    # bytes sent after an Upgrade request the server answers without a 101 are
    # the next request's; a 408 comes at `timeout http-request` after the answer.
    proxy = run_proxy(config(scripted.port, "    timeout http-request 300ms",
                             "    option http-server-close"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as client:
        client.sendall(UPGRADE + KEY + b"\r\n" + after[0])
        with scripted.accept() as server:
            read_head(server)
            refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno"
            server.sendall(refused)
            assert recv_exactly(client, len(refused)) == refused.replace(
                b"Content-Length", b"content-length")
            for piece in after[1:]:
                client.sendall(piece)
            assert read_all(client) == answer
            assert read_all(server) == b""  # nothing more reached the server


def test_a_101_without_upgrade_header_still_switches(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    # HAProxy only needs "Connection: upgrade" on both sides.
    proxy = run_proxy(config(scripted.port))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n")
        with scripted.accept() as server:
            assert read_head(server) == b"GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n\r\n"
            server.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nhi")
            switched = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n\r\nhi"
            assert recv_exactly(client, len(switched)) == switched
            client.sendall(b"raw")
            assert recv_exactly(server, 3) == b"raw"


def test_an_upgrade_with_a_body_is_a_plain_request(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    # HAProxy drops the Upgrade header of a request with a body and forwards the rest.
    proxy = run_proxy(config(scripted.port))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       b"Upgrade: websocket\r\nContent-Length: 2\r\n\r\nab"
                       b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        with scripted.accept() as server:
            body = (b"POST / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n"
                    b"content-length: 2\r\n\r\nab")
            assert recv_exactly(server, len(body)) == body
            server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            assert recv_exactly(client, len(ok)) == ok
            assert read_head(server) == b"GET /next HTTP/1.1\r\nhost: x\r\n\r\n"


def test_tunnelled_bytes_count_in_bin_and_bout_as_haproxys(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    """HAProxy's stats add what went through the tunnel to the request and the 101
    as it counts them (l7.htx): 116 for this request head, 132 for this 101."""
    proxy = run_proxy(config(scripted.port))
    client, server, _ = open_tunnel(proxy, scripted, early=b"early")
    with server:
        assert recv_exactly(server, 5) == b"early"
        client.sendall(b"x" * 1000)
        assert recv_exactly(server, 1000) == b"x" * 1000
        server.sendall(b"y" * 3000)
        assert recv_exactly(client, 3000) == b"y" * 3000
        client.close()
        assert server.recv(1) == b""
    deadline = time.monotonic() + 5
    while proxy.served() != {"be/s1": 0}:
        assert time.monotonic() < deadline, "the tunnel did not end"
        time.sleep(0.01)

    def counts() -> list[tuple[int, int]]:
        reg = proxy.registry
        slots = (reg.frontend("fe"), reg.backend("be"), reg.backend("be").server("s1"))
        return [(s.bytes_in, s.bytes_out) for s in slots]

    assert proxy.call(counts) == [(116 + 1005, 132 + 3000)] * 3
