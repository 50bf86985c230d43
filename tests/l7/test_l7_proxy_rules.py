"""Rules end to end on loopback: deny, use_backend by Host, redirects, rewrites and
basic auth through real sockets (the tutorial's configurations)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from l7_harness import ProxyStarter, RunningProxy, Servers, connect, get, raw_exchange

from pyxlb.l7.responses import deny_response

Start = Callable[..., RunningProxy]


def config(web1: int, web2: int, rules: str, backend_rules: str = "") -> str:
    return f"""
defaults
    mode http
    timeout connect 5000
    timeout client 50000
    timeout server 50000

userlist TrustedPeople
    user bob insecure-password password123

frontend http_front
    bind 127.0.0.1:8080
    stats uri /haproxy?stats
{rules}
    default_backend http_back

backend http_back
{backend_rules}
    server web1 127.0.0.1:{web1}

backend ws
    server web2 127.0.0.1:{web2}
"""


@pytest.fixture
def start(backends: Servers, run_proxy: ProxyStarter) -> Start:
    def run(rules: str, backend_rules: str = "") -> RunningProxy:
        return run_proxy(config(backends.ports["web1"], backends.ports["web2"], rules,
                                backend_rules))
    return run


PAGE_403 = (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest "
            b"forbidden by administrative rules.\n</body></html>\n")


def test_deny_answers_haproxys_403_and_keeps_the_connection(start: Start) -> None:
    proxy = start("    http-request deny if { path_beg /admin }\n")
    out = raw_exchange(proxy, b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
                              b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.startswith(PAGE_403 + b"HTTP/1.1 200 OK\r\n")
    assert b"web1 /x" in out
    out = raw_exchange(proxy, b"GET /admin HTTP/1.0\r\n\r\n")
    assert out == deny_response(403, True)
    # A request with a body is answered, then the connection closes (HAProxy too).
    out = raw_exchange(proxy, b"POST /admin HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
    assert out == deny_response(403, True)


def test_use_backend_by_host_as_the_websocket_tutorial(start: Start) -> None:
    proxy = start("    acl is_websocket hdr_end(host) -i ws.node-example.com\n"
                  "    use_backend ws if is_websocket\n")
    conn = connect(proxy)
    for host, server in (("ws.node-example.com", "web2"), ("WS.node-example.com", "web2"),
                         ("ws.node-example.com:8080", "web1"), ("other", "web1")):
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        assert resp.getheader("X-Server") == server, host
    conn.close()


def test_redirect_scheme_https_keeps_the_host_port(start: Start) -> None:
    proxy = start("    redirect scheme https if !{ ssl_fc }\n")
    out = raw_exchange(proxy, b"GET /redir?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
                              b"Connection: close\r\n\r\n")
    assert out == (b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\n"
                   b"location: https://example.com:8080/redir?q=1\r\n"
                   b"cache-control: no-cache\r\nconnection: close\r\n\r\n")


def test_stats_come_after_http_request_rules_and_before_redirects(start: Start) -> None:
    proxy = start("    http-request deny if { src 10.0.0.0/8 }\n"
                  "    redirect location /elsewhere\n")
    conn = connect(proxy)
    assert get(conn, "/haproxy?stats").status == 200
    resp = get(conn, "/x")
    assert (resp.status, resp.getheader("location")) == (302, "/elsewhere")
    conn.close()


def test_rewrites_are_visible_at_the_backend(start: Start) -> None:
    proxy = start("    http-request set-header X-Forwarded-Proto http\n"
                  "    http-request del-header X-Secret\n"
                  "    http-request replace-header User-Agent curl foo\n"
                  "    http-request replace-path /api/(.*) /echo/\\1\n"
                  "    option forwardfor\n")
    conn = connect(proxy)
    conn.request("GET", "/api/v1?x=1", headers={
        "X-Secret": "s", "User-Agent": "Mozilla curl/7.88.1 X", "X-Forwarded-Proto": "old"})
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 200
    lines = body.splitlines()
    assert lines[0] == "GET /echo/v1?x=1 HTTP/1.1"
    assert "x-forwarded-proto: http" in lines and "x-forwarded-proto: old" not in lines
    assert "user-agent: foo" in lines
    assert not any(line.startswith("x-secret") for line in lines)
    assert "x-forwarded-for: 127.0.0.1" in lines
    conn.close()


def test_set_path_keeps_the_query(start: Start) -> None:
    proxy = start("    http-request set-path /echo\n")
    conn = connect(proxy)
    resp = get(conn, "/anything?a=b")
    assert resp.getheader("X-Got-Path") == "/echo?a=b"
    conn.close()


def test_basic_auth_401_then_200_with_credentials(start: Start) -> None:
    proxy = start("    http-request auth realm Restricted unless { http_auth(TrustedPeople) }\n")
    out = raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\n")
    assert b'www-authenticate: Basic realm="Restricted"\r\nconnection: close\r\n\r\n' in out
    conn = connect(proxy)
    token = base64.b64encode(b"bob:password123").decode()
    conn.request("GET", "/", headers={"Authorization": f"Basic {token}"})
    resp = conn.getresponse()
    resp.read()
    assert (resp.status, resp.getheader("X-Server")) == (200, "web1")
    conn.request("GET", "/", headers={"Authorization": "Basic " + base64.b64encode(
        b"bob:wrong").decode()})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 401
    conn.close()


def test_backend_rules_apply(start: Start) -> None:
    proxy = start("", backend_rules="    http-request deny if { path /no }\n")
    out = raw_exchange(proxy, b"GET /no HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out == deny_response(403, True)
