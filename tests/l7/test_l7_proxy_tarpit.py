"""`http-request tarpit [deny_status N]` through the proxy on loopback: the request
is held for `timeout tarpit` (else `timeout connect`), then answered with HAProxy
2.6.12's page (500 by default) on a connection that stays open, as in the lab
against haproxy (tests/e2e/test_queue_in_lab.py)."""

from __future__ import annotations

import socket

import pytest
from l7_harness import HTTP_DEFAULTS, ProxyStarter, Servers

from pyxlb.config import ConfigError, parse_text
from pyxlb.config.rules import Tarpit
from pyxlb.l7.responses import deny_response


def config(servers: Servers, timeouts: str = "    timeout tarpit 300ms") -> str:
    return f"""
{HTTP_DEFAULTS}
frontend http_front
    bind 127.0.0.1:8080
{timeouts}
    http-request tarpit if {{ path_beg /tarpit }}
    http-request tarpit deny_status 429 if {{ path_beg /slowdown }}
    default_backend b

backend b
    server web1 127.0.0.1:{servers.ports["web1"]}
"""


def read_response(s: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = s.recv(65536)
        assert chunk, f"closed after {got!r}"
        got += chunk
    return got


@pytest.mark.parametrize(("path", "status"), [("/tarpit", 500), ("/slowdown", 429)])
def test_tarpit_holds_then_answers_haproxys_page_and_keeps_the_connection(
        backends: Servers, run_proxy: ProxyStarter, path: str, status: int) -> None:
    proxy = run_proxy(config(backends))
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.settimeout(0.1)
        with pytest.raises(TimeoutError):
            s.recv(1)  # held: nothing before `timeout tarpit` (300ms)
        s.settimeout(5)
        expected = deny_response(status, False)
        assert read_response(s, len(expected)) == expected
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")


def test_tarpit_closes_when_the_client_does(backends: Servers,
                                            run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config(backends))
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET /tarpit HTTP/1.0\r\n\r\n")
        expected = deny_response(500, True)
        got = read_response(s, len(expected))
        assert got == expected
        assert s.recv(1) == b""


def test_timeout_tarpit_falls_back_to_timeout_connect() -> None:
    text = """
defaults
    mode http
    timeout connect 4s
    timeout client 5s
    timeout server 5s
frontend a
    bind :80
    timeout tarpit 2s
    http-request tarpit deny_status 403
    default_backend b
frontend c
    bind :81
    http-request tarpit
    default_backend b
backend b
    server s 127.0.0.1:80
"""
    parsed = parse_text(text)
    assert parsed.frontends["a"].tarpit_timeout == 2000
    assert parsed.frontends["c"].tarpit_timeout == 4000
    assert parsed.frontends["a"].http_request[0].action == Tarpit(status=403)
    assert parsed.frontends["c"].http_request[0].action == Tarpit(status=500)


def test_tarpit_with_a_status_without_page_is_refused_at_its_line() -> None:
    with pytest.raises(ConfigError, match=r":4:.*'http-request tarpit': HAProxy has no "
                                          r"error page for status 418"):
        parse_text("""frontend f
    mode http
    bind :80
    http-request tarpit deny_status 418
""")
