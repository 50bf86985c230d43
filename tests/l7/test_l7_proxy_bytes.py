"""Bytes counted as HAProxy 2.6.12 counts them (l7.htx) by the proxy on loopback:
the stats' bin and bout of frontend, backend and server for scripted exchanges whose
counts HAProxy gave in the lab (100 Continue then 200: 91; a chunked 200: 70)."""

from __future__ import annotations

import socket

import pytest
from l7_harness import ProxyStarter, RunningProxy, ScriptedServer, one_server_config

from pyxlb.l7.responses import deny_response


@pytest.fixture
def scripted() -> ScriptedServer:
    server = ScriptedServer()
    yield server
    server.close()


def read_until(s: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = s.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def counts(proxy: RunningProxy) -> list[tuple[int, int]]:
    def read() -> list[tuple[int, int]]:
        reg = proxy.registry
        slots = (reg.frontend("fe"), reg.backend("be"), reg.backend("be").server("s1"))
        return [(s.bytes_in, s.bytes_out) for s in slots]
    return proxy.call(read)


# 21 + "GET" "/x" "HTTP/1.1" + "host" "x" = 39, as HAProxy's bin counts it.
REQUEST = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
REQUEST_SIZE = 39


def test_responses_count_as_the_server_sent_them(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    proxy = run_proxy(one_server_config(scripted.port))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(REQUEST)
        server = scripted.accept()
        with server:
            read_until(server, b"\r\n\r\n")
            server.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                           b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            read_until(client, b"ok")
            assert counts(proxy) == [(REQUEST_SIZE, 91)] * 3

            # A chunked request: its data and the end of its trailers, no framing.
            client.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"\r\n5\r\nhello\r\n0\r\n\r\n")
            read_until(server, b"0\r\n\r\n")
            server.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            read_until(client, b"0\r\n\r\n")
            post = 21 + len(b"POST/xHTTP/1.1hostxtransfer-encodingchunked") + 5 + 1
            assert counts(proxy) == [(REQUEST_SIZE + post, 91 + 70)] * 3


def test_answers_pyxlb_makes_count_as_haproxys_pages(run_proxy: ProxyStarter) -> None:
    config = one_server_config(1).replace("    default_backend be\n",
                                          "    http-request deny\n    default_backend be\n")
    proxy = run_proxy(config)
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(REQUEST)
        assert read_until(client, b"</html>\n") == deny_response(403, False)
    # HAProxy logged 192 for its 403 page; no backend saw the request.
    assert counts(proxy) == [(REQUEST_SIZE, 192), (0, 0), (0, 0)]
