"""`timeout http-request` and `timeout http-keep-alive` on loopback, as HAProxy 2.6.12
applies them (observed in the lab with http-request 1s, keep-alive 3s, client 10s):

* nothing sent: 408 at http-request after the accept;
* a head trickling in (slowloris): 408 at http-request after its first byte, however
  lively the trickle (the client timeout only sees inactivity);
* an idle keep-alive connection closes silently at http-keep-alive after the last
  response; the next request's first byte starts its own http-request time.
"""

from __future__ import annotations

import socket
import threading
import time

from l7_harness import ProxyStarter, Servers, one_server_config

from pyxlb.l7.responses import REQUEST_TIMEOUT


def config(port: int, timeouts: str) -> str:
    return one_server_config(port, timeouts, server="web1")


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def trickle(s: socket.socket, data: bytes, gap: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.wait(gap):
            return
        try:
            s.send(bytes([byte]))
        except OSError:
            return


def test_a_silent_connection_gets_408_at_http_request(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(backends.ports["web1"], "    timeout http-request 300ms"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        assert read_all(s) == REQUEST_TIMEOUT


def test_slowloris_gets_408_although_it_is_never_idle(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # The client timeout (50s) never fires: a byte comes every 50ms.
    proxy = run_proxy(config(backends.ports["web1"], "    timeout http-request 300ms"))
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        sender = threading.Thread(
            target=trickle, args=(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 500,
                                  0.05, stop))
        sender.start()
        try:
            assert read_all(s) == REQUEST_TIMEOUT
        finally:
            stop.set()
            sender.join()


def test_idle_keep_alive_closes_silently_at_http_keep_alive(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(backends.ports["web1"],
                             "    timeout http-request 50s\n    timeout http-keep-alive 200ms"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_all(s)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"web1 /1\n")


def test_keep_alive_timeout_does_not_hurry_the_first_request(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(backends.ports["web1"],
                             "    timeout http-request 50s\n    timeout http-keep-alive 100ms"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        time.sleep(0.4)  # four keep-alive timeouts; the first request is under http-request
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(s).endswith(b"web1 /1\n")


def test_the_next_request_has_its_own_http_request_time(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    proxy = run_proxy(config(backends.ports["web1"],
                             "    timeout http-request 300ms\n    timeout http-keep-alive 50s"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"web1 /1\n"):
            chunk = s.recv(65536)
            assert chunk
            first += chunk
        # Longer than http-request, but that is keep-alive time.
        time.sleep(0.5)
        s.sendall(b"GET /2 HTTP/1.1\r\n")  # and never the rest
        assert read_all(s) == REQUEST_TIMEOUT


def test_a_pipelined_head_waits_for_the_response_before_it(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # The slow response takes longer than http-request; the partial head behind it
    # does not cut it short.
    proxy = run_proxy(config(backends.ports["web1"], "    timeout http-request 200ms"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        s.sendall(b"GET /slow/600 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n")
        out = read_all(s)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"web1 /slow/600\n" + REQUEST_TIMEOUT)


def test_a_408_counts_as_a_bad_request_as_haproxy_counts_it(
    backends: Servers, run_proxy: ProxyStarter
) -> None:
    # HAProxy 2.6 (in the lab): a silent connection's 408 and a trickling head's
    # each count in req_tot, ereq and hrsp_4xx of the frontend.
    proxy = run_proxy(config(backends.ports["web1"], "    timeout http-request 200ms"))
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        assert read_all(s) == REQUEST_TIMEOUT
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x")
        assert read_all(s) == REQUEST_TIMEOUT

    def counts() -> tuple[int, int, list[int]]:
        fe = proxy.registry.frontend("fe")
        return fe.requests, fe.bad_requests, list(fe.hrsp)

    assert proxy.call(counts) == (2, 2, [0, 0, 0, 0, 2, 0])
