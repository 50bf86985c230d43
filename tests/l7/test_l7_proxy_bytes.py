"""Bytes counted as HAProxy 2.6.12 counts them (l7.htx) by the proxy on loopback:
the stats' bin and bout of frontend, backend and server for scripted exchanges whose
counts HAProxy gave in the lab (100 Continue then 200: 91; a chunked 200: 70)."""

from __future__ import annotations

import socket

from l7_harness import (
    HTTP_DEFAULTS,
    ProxyStarter,
    RunningProxy,
    ScriptedServer,
    one_server_config,
    read_until,
)

from pyxlb.l7.responses import deny_response


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


def stat_counts(proxy: RunningProxy) -> dict[str, object]:
    def read() -> dict[str, object]:
        reg = proxy.registry
        fe, be = reg.frontend("fe"), reg.backend("be")
        srv = be.server("s1")
        return {"fe": list(fe.hrsp), "be": list(be.hrsp), "srv": list(srv.hrsp),
                "scur": fe.current, "smax": fe.peak, "dreq": fe.denied,
                "connect": srv.connects, "reuse": srv.reuses,
                "srv_scur": srv.current, "srv_smax": srv.peak}
    return proxy.call(read)


def test_responses_by_class_sessions_and_server_connections(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    config = one_server_config(scripted.port).replace(
        "    default_backend be\n",
        "    http-request deny if { path /no }\n    default_backend be\n")
    proxy = run_proxy(config)
    port = proxy.port["fe"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as other:
        client.sendall(REQUEST)
        server = scripted.accept()
        with server:
            read_until(server, b"\r\n\r\n")
            server.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            read_until(client, b"\r\n\r\n")
            # The same server connection, kept and used again.
            client.sendall(REQUEST)
            read_until(server, b"\r\n\r\n")
            server.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            read_until(client, b"ok")
            other.sendall(b"GET /no HTTP/1.1\r\nHost: x\r\n\r\n")
            read_until(other, b"</html>\n")
            got = stat_counts(proxy)
    # [other, 1xx, 2xx, 3xx, 4xx, 5xx]; the 403 a rule made counts for the frontend
    # only (no backend was picked), and as denied.
    assert got == {"fe": [0, 0, 1, 0, 2, 0], "be": [0, 0, 1, 0, 1, 0],
                   "srv": [0, 0, 1, 0, 1, 0], "scur": 2, "smax": 2, "dreq": 1,
                   "connect": 1, "reuse": 1, "srv_scur": 0, "srv_smax": 1}


def test_a_listen_counts_what_it_answers_itself_in_its_backend(run_proxy: ProxyStarter) -> None:
    # HAProxy's stream has the listen's own backend half until a backend is
    # picked: its BACKEND row counts the bytes of a denied request (not the request).
    proxy = run_proxy(f"""
{HTTP_DEFAULTS}
listen both
    bind :80
    http-request deny
    server s1 127.0.0.1:1
""")
    with socket.create_connection(("127.0.0.1", proxy.port["both"]), timeout=5) as client:
        client.sendall(REQUEST)
        read_until(client, b"</html>\n")

    def read() -> list[tuple[int, int, int]]:
        reg = proxy.registry
        return [(s.bytes_in, s.bytes_out, s.requests)
                for s in (reg.frontend("both"), reg.backend("both"))]
    assert proxy.call(read) == [(REQUEST_SIZE, 192, 1), (REQUEST_SIZE, 192, 0)]
