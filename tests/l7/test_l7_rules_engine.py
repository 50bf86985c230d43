"""HAProxy's request processing order and generated answers (l7/rules/engine.py).

Expected bytes were recorded from HAProxy 2.6.12 on loopback with the same rules."""

from __future__ import annotations

import base64
from ipaddress import ip_address

import pytest

from pyxlb.config import parse_text
from pyxlb.config.rules import TrackSc
from pyxlb.l7.responses import deny_response
from pyxlb.l7.rules.acl import Env, RequestView
from pyxlb.l7.rules.engine import Decision, RuleEngine, compile_replace

PAGE_403 = (b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest "
            b"forbidden by administrative rules.\n</body></html>\n")
PAGE_403_CLOSE = PAGE_403.replace(b"text/html\r\n", b"text/html\r\nconnection: close\r\n")
PAGE_401_F1 = (b'HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n'
               b'content-type: text/html\r\nwww-authenticate: Basic realm="f1"\r\n\r\n'
               b'<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to '
               b'access this content.\n</body></html>\n')
PAGES = {
    429: b'HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\ncache-control: no-cache\r\n'
         b'content-type: text/html\r\n\r\n<html><body><h1>429 Too Many Requests</h1>\nYou have '
         b'sent too many requests in a given amount of time.\n</body></html>\n',
    400: b'HTTP/1.1 400 Bad request\r\ncontent-length: 90\r\ncache-control: no-cache\r\n'
         b'content-type: text/html\r\nconnection: close\r\n\r\n<html><body><h1>400 Bad request'
         b'</h1>\nYour browser sent an invalid request.\n</body></html>\n',
    501: b'HTTP/1.1 501 Not Implemented\r\ncontent-length: 136\r\ncache-control: no-cache\r\n'
         b'content-type: text/html\r\n\r\n<html><body><h1>501 Not Implemented</h1>\n.The server '
         b'does not support the functionality required to fulfill the request.\n</body></html>\n',
    200: b'HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: '
         b'text/html\r\n\r\n<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n',
    404: b'HTTP/1.1 404 Not Found\r\ncontent-length: 83\r\ncache-control: no-cache\r\n'
         b'content-type: text/html\r\n\r\n<html><body><h1>404 Not Found</h1>\nThe resource '
         b'could not be found.\n</body></html>\n',
}

HEAD = """
defaults
    mode http
    timeout client 5s
userlist TrustedPeople
    user bob insecure-password password123
"""
TAIL = """
backend be
    server s 127.0.0.1:1
backend ws
    server s 127.0.0.1:2
"""


def engine(rules: str, backend_rules: str = "", track: object = None) -> RuleEngine:
    text = (HEAD + "frontend f1\n    bind 127.0.0.1:8080\n" + rules
            + "    default_backend be\n" + TAIL.replace("backend be\n", "backend be\n"
                                                         + backend_rules))
    config = parse_text(text, env={})
    env = Env(userlists=config.userlists)
    return RuleEngine(config.frontends["f1"], config.backends, env, track)  # type: ignore[arg-type]


def req(url: bytes = b"/", method: bytes = b"GET", **headers: str) -> RequestView:
    hdrs = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return RequestView(method, url, b"1.1", hdrs, ip_address("192.0.2.1"), 8080)


def decide(e: RuleEngine, view: RequestView, closing: bool = False) -> Decision:
    return e.decide(view, closing)


def test_deny_is_haproxys_403_page() -> None:
    e = engine("    http-request deny if { path_beg /deny }\n")
    assert decide(e, req(b"/deny")).answer == PAGE_403
    d = decide(e, req(b"/deny"), closing=True)
    assert (d.answer, d.status, d.close) == (PAGE_403_CLOSE, 403, True)
    d = decide(e, req(b"/ok"))
    assert (d.answer, d.backend) == (None, "be")


@pytest.mark.parametrize("status", sorted(PAGES))
def test_deny_status(status: int) -> None:
    e = engine(f"    http-request deny deny_status {status}\n")
    d = decide(e, req())
    assert d.answer == PAGES[status]
    assert d.close is (status == 400)


def test_auth_realm_defaults_to_the_proxy_name_and_credentials_pass() -> None:
    e = engine("    http-request auth unless { http_auth(TrustedPeople) }\n")
    d = decide(e, req())
    assert (d.answer, d.status) == (PAGE_401_F1, 401)
    good = "Basic " + base64.b64encode(b"bob:password123").decode()
    assert decide(e, req(authorization=good)).backend == "be"
    e = engine("    http-request auth realm Secret\\ Zone\n")
    assert b'www-authenticate: Basic realm="Secret Zone"\r\n' in decide(e, req()).answer  # type: ignore[operator]


def test_first_allow_deny_or_auth_is_final() -> None:
    e = engine("    http-request allow if { path /a }\n    http-request deny\n")
    assert decide(e, req(b"/a")).backend == "be"
    assert decide(e, req(b"/b")).status == 403
    e = engine("    http-request deny\n    http-request auth\n")
    assert decide(e, req()).status == 403


def test_order_http_request_stats_redirect_use_backend() -> None:
    rules = ("    stats uri /st\n"
             "    http-request deny if { path /st/deny }\n"
             "    redirect location /moved if { path_beg /st }\n"
             "    redirect location /moved2 if { hdr(host) ws }\n"
             "    use_backend ws if { hdr(host) ws }\n")
    e = engine(rules)
    assert decide(e, req(b"/st/deny")).status == 403
    assert decide(e, req(b"/st")).stats
    assert decide(e, req(b"/st", b"POST")).status == 302
    assert decide(e, req(b"/x", host="ws")).answer is not None
    e = engine("    use_backend ws if { hdr(host) ws }\n    use_backend be if TRUE\n")
    assert decide(e, req(host="ws")).backend == "ws"
    assert decide(e, req(host="other")).backend == "be"


def test_websocket_host_acl_routes_as_the_tutorial() -> None:
    e = engine("    acl is_websocket hdr_end(host) -i ws.node-example.com\n"
               "    use_backend ws if is_websocket\n")
    assert decide(e, req(host="ws.node-example.com")).backend == "ws"
    assert decide(e, req(host="ws.node-example.com:8080")).backend == "be"


def test_backend_rules_run_after_the_choice() -> None:
    e = engine("", backend_rules="    http-request auth\n")
    assert b'realm="be"' in decide(e, req()).answer  # type: ignore[operator]
    e = engine("    http-request set-header X-A 1\n",
               backend_rules="    http-request deny if { hdr(x-a) 1 }\n")
    assert decide(e, req()).status == 403


REDIRECTS = """
    redirect location /c set-cookie SEEN=1 if { path_beg /sc }
    redirect location /c clear-cookie SEEN if { path_beg /cc }
    http-request redirect location /x code 308 if { path_beg /hr }
    redirect scheme https if { path_beg /s }
    redirect prefix /pre code 301 if { path_beg /p }
    redirect location /loc code 303 if { path_beg /l3 }
    redirect location /loc code 307 if { path_beg /l7 }
    redirect location http://e.com/loc if { path_beg /l2 }
    redirect prefix /pre drop-query code 308 if { path_beg /q }
    redirect prefix /pre append-slash if { path_beg /as }
    redirect prefix / code 301 if { path_beg /root }
"""
NC = b"cache-control: no-cache\r\n"


@pytest.mark.parametrize(("url", "expected"), [
    (b"/hr", b"308 Permanent Redirect\r\ncontent-length: 0\r\nlocation: /x\r\n\r\n"),
    (b"/s?q=1", b"302 Found\r\ncontent-length: 0\r\nlocation: https://example.com:8080/s?q=1"
                b"\r\n" + NC + b"\r\n"),
    (b"/p/a?q=1", b"301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /pre/p/a?q=1\r\n"
                  b"\r\n"),
    (b"/l3", b"303 See Other\r\ncontent-length: 0\r\nlocation: /loc\r\n" + NC + b"\r\n"),
    (b"/l7", b"307 Temporary Redirect\r\ncontent-length: 0\r\nlocation: /loc\r\n" + NC
             + b"\r\n"),
    (b"/l2", b"302 Found\r\ncontent-length: 0\r\nlocation: http://e.com/loc\r\n" + NC
             + b"\r\n"),
    (b"/q/a?x=1", b"308 Permanent Redirect\r\ncontent-length: 0\r\nlocation: /pre/q/a\r\n\r\n"),
    (b"/as/b", b"302 Found\r\ncontent-length: 0\r\nlocation: /pre/as/b/\r\n" + NC + b"\r\n"),
    (b"/as/b?x=1", b"302 Found\r\ncontent-length: 0\r\nlocation: /pre/as/b?x=1/\r\n" + NC
                   + b"\r\n"),
    (b"/root/a?b", b"301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /root/a?b\r\n\r\n"),
    (b"/sc", b"302 Found\r\ncontent-length: 0\r\nlocation: /c\r\n" + NC
             + b"set-cookie: SEEN=1; path=/;\r\n\r\n"),
    (b"/cc", b"302 Found\r\ncontent-length: 0\r\nlocation: /c\r\n" + NC
             + b"set-cookie: SEEN; path=/; Max-Age=0;\r\n\r\n"),
])
def test_redirects_as_haproxy(url: bytes, expected: bytes) -> None:
    d = decide(engine(REDIRECTS), req(url, host="example.com:8080"))
    assert d.answer == b"HTTP/1.1 " + expected


def test_redirect_closes_when_the_request_does() -> None:
    d = decide(engine(REDIRECTS), req(b"/s", host="a"), closing=True)
    assert d.answer == (b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: https://a/s\r\n"
                        b"cache-control: no-cache\r\nconnection: close\r\n\r\n")
    assert d.close


def test_header_rewrites_as_haproxy() -> None:
    e = engine("    http-request set-header X-Set one\n"
               "    http-request add-header X-Add two\n"
               "    http-request del-header X-Del\n"
               "    http-request replace-header User-Agent curl foo\n"
               "    http-request set-header X-Path %[path]\n")
    view = RequestView(b"GET", b"/h", b"1.1", [
        (b"host", b"a"), (b"x-set", b"old"), (b"x-del", b"1"),
        (b"user-agent", b"Mozilla curl/7.88.1 X"), (b"x-add", b"zero"), (b"x-del", b"2"),
        (b"accept", b"*/*")])
    d = decide(e, view)
    assert d.edited and d.backend == "be"
    # What HAProxy forwarded for the same request.
    assert view.headers == [(b"host", b"a"), (b"user-agent", b"foo"), (b"x-add", b"zero"),
                            (b"accept", b"*/*"), (b"x-set", b"one"), (b"x-add", b"two"),
                            (b"x-path", b"/h")]


@pytest.mark.parametrize(("rule", "url", "expected"), [
    ("set-path /new", b"/sp/a?q=1", b"/new?q=1"),
    ("replace-path /rp/(.*) /x/\\1", b"/rp/a/b?q=/rp/z", b"/x/a/b?q=/rp/z"),
    ("replace-uri ^/ru/(.*) /y/\\1", b"/ru/a/b?q=1", b"/y/a/b?q=1"),
    ("replace-path /nomatch /z", b"/a?b", b"/a?b"),
])
def test_uri_rewrites_as_haproxy(rule: str, url: bytes, expected: bytes) -> None:
    view = req(url)
    d = decide(engine(f"    http-request {rule}\n"), view)
    assert view.url == expected
    assert d.edited is (url != expected)


def test_compile_replace_replaces_the_whole_value() -> None:
    assert compile_replace("curl", "foo")(b"Mozilla curl/7.88.1 X") == b"foo"
    assert compile_replace("^(a)(b)?", r"\2-\1")(b"ac") == b"-a"
    assert compile_replace("z", "y")(b"abc") is None


def test_track_sc0_reaches_the_injected_counter() -> None:
    tracked: list[tuple[TrackSc, bytes]] = []
    rules = ("    stick-table type ip size 1m expire 10s store http_req_rate(10s)\n"
             "    http-request track-sc0 src\n")
    e = engine(rules, track=lambda t, view: tracked.append((t, view.url)))
    decide(e, req(b"/x"))
    assert len(tracked) == 1 and tracked[0][0].counter == 0 and tracked[0][0].table == "f1"


def test_needed_only_with_rules() -> None:
    config = parse_text(HEAD + "frontend f1\n    bind :80\n    default_backend be\n" + TAIL,
                        env={})
    assert not RuleEngine.needed(config.frontends["f1"], config.backends)
    config = parse_text(HEAD + "frontend f1\n    bind :80\n    default_backend be\n"
                        + TAIL.replace("backend be\n", "backend be\n    http-request deny\n"),
                        env={})
    assert RuleEngine.needed(config.frontends["f1"], config.backends)


def test_deny_response_table() -> None:
    assert deny_response(403, False) == PAGE_403


def test_use_service_is_final_and_runs_before_stats() -> None:
    e = engine("    http-request use-service prometheus-exporter if { path /metrics }\n"
               "    http-request deny\n    stats uri /metrics\n")
    d = decide(e, req(b"/metrics"))
    assert (d.service, d.answer, d.stats, d.backend) == ("prometheus-exporter", None, False,
                                                         None)
    assert decide(e, req(b"/other")).status == 403
    # In a backend's rules: the service answers for that backend.
    e = engine("", backend_rules="    http-request use-service prometheus-exporter\n")
    d = decide(e, req(b"/anything"))
    assert (d.service, d.backend) == ("prometheus-exporter", "be")
