"""ACL evaluation (l7/rules/acl.py) on conditions read from configuration text."""

from __future__ import annotations

import base64
from ipaddress import ip_address

import pytest

from pyxlb.config import parse_text
from pyxlb.config.conditions import Condition
from pyxlb.config.fetches import CounterRef
from pyxlb.l7.rules.acl import Env, RequestView, compile_condition, split_url

HEAD = """
defaults
    mode http
userlist TrustedPeople
    group admins users alice
    user bob insecure-password password123
    user alice insecure-password wonderland
frontend fe
    bind 127.0.0.1:8080
    stick-table type ip size 1m expire 10s store conn_rate(10s),gpc0
    default_backend be
"""


def condition(acls: str, cond: str) -> Condition:
    text = HEAD + acls + f"    http-request deny {cond}\nbackend be\n    server s 127.0.0.1:1\n"
    rule = parse_text(text, env={}).frontends["fe"].http_request[-1]
    assert rule.condition is not None
    return rule.condition


def check(acls: str, cond: str, view: RequestView, env: Env | None = None) -> bool:
    pred = compile_condition(condition(acls, cond), env or Env())
    assert pred is not None
    return pred(view)


def req(url: bytes = b"/", method: bytes = b"GET", src: str = "192.0.2.1", ssl: bool = False,
        dst_port: int = 80, **headers: str) -> RequestView:
    hdrs = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return RequestView(method, url, b"1.1", hdrs, ip_address(src), dst_port, ssl)


WS = "    acl is_websocket hdr_end(host) -i ws.node-example.com\n"


@pytest.mark.parametrize(("host", "expected"), [
    ("ws.node-example.com", True),
    ("WS.Node-Example.COM", True),
    ("a.ws.node-example.com", True),
    ("ws.node-example.com:8080", False),  # the raw value: the port is part of it
    ("node-example.com", False),
])
def test_hdr_end_matches_the_raw_host_value(host: str, expected: bool) -> None:
    assert check(WS, "if is_websocket", req(host=host)) is expected


def test_missing_header_is_false_and_negation_true() -> None:
    assert check(WS, "if is_websocket", req()) is False
    assert check(WS, "if !is_websocket", req()) is True
    assert check(WS, "unless is_websocket", req()) is True


def test_header_values_are_comma_split() -> None:
    assert check("    acl a hdr(x-a) two\n", "if a", req(x_a="one, two"))
    assert not check("    acl a hdr(x-a) -m sub wo,\n", "if a", req(x_a="one,two"))


@pytest.mark.parametrize(("acl", "url", "expected"), [
    ("path_beg /api", b"/api/x?y", True),
    ("path_beg /api", b"/x/api", False),
    ("path_end .jpg .png", b"/a.png?z", True),
    ("path /a", b"/a?b", True),
    ("path -i /A", b"/a", True),
    ("path /A", b"/a", False),
    ("path_reg ^/u/[0-9]+$", b"/u/12", True),
    ("path_reg ^/u/[0-9]+$", b"/u/12/x", False),
    ("path_dir img", b"/static/img/a.png", True),
    ("path_dir img", b"/static/imgs/a.png", False),
    ("path_sub tic/im", b"/static/img", True),
    ("url_beg /a?b", b"/a?b=1", True),
    ("path /p", b"http://h:1/p?q", True),
    ("path_len 3", b"/ab?xyz", True),
])
def test_path_and_url(acl: str, url: bytes, expected: bool) -> None:
    assert check(f"    acl a {acl}\n", "if a", req(url)) is expected


def test_hdr_beg_dom_sub() -> None:
    assert check("    acl a hdr_beg(host) -i www.\n", "if a", req(host="WWW.example.com"))
    assert check("    acl a hdr_dom(host) example.com\n", "if a", req(host="www.example.com:80"))
    assert not check("    acl a hdr_dom(host) example.com\n", "if a", req(host="myexample.com"))
    assert check("    acl a hdr_sub(user-agent) curl\n", "if a", req(user_agent="x curl/8 y"))


def test_method_and_predefined() -> None:
    assert check("    acl a method POST PUT\n", "if a", req(method=b"PUT"))
    assert not check("    acl a method POST\n", "if a", req(method=b"GET"))
    assert check("", "if METH_GET", req(method=b"HEAD"))
    assert check("", "if METH_TRACE || METH_GET", req())
    assert check("", "if TRUE", req()) and not check("", "if FALSE", req())


def test_src_networks_and_dst_port_and_ssl() -> None:
    acl = "    acl lan src 10.0.0.0/8 192.168.1.7 ::1\n"
    assert check(acl, "if lan", req(src="10.2.3.4"))
    assert check(acl, "if lan", req(src="192.168.1.7"))
    assert check(acl, "if lan", req(src="::ffff:10.0.0.1"))
    assert check(acl, "if lan", req(src="::1"))
    assert not check(acl, "if lan", req(src="192.168.1.8"))
    assert check("", "if LOCALHOST", req(src="127.0.0.1"))
    assert check("    acl p dst_port 8000:8100\n", "if p", req(dst_port=8080))
    assert not check("    acl p dst_port gt 8080\n", "if p", req(dst_port=8080))
    assert check("", "if !{ ssl_fc }", req(ssl=False))
    assert not check("", "if !{ ssl_fc }", req(ssl=True))


def test_or_of_ands() -> None:
    acls = "    acl a path_beg /a\n    acl b method POST\n    acl c hdr(x) 1\n"
    cond = "if a b || c"
    assert check(acls, cond, req(b"/a", b"POST"))
    assert not check(acls, cond, req(b"/a", b"GET"))
    assert check(acls, cond, req(b"/z", b"GET", x="1"))


def test_acl_lines_are_ored() -> None:
    acls = "    acl a path /x\n    acl a path /y\n"
    assert check(acls, "if a", req(b"/y")) and not check(acls, "if a", req(b"/z"))


def test_counters_come_from_the_injected_reader() -> None:
    seen: list[tuple[CounterRef, str | None]] = []

    def counters(ref: CounterRef, table: str | None, view: RequestView) -> int | None:
        seen.append((ref, table))
        return 25 if str(view.src) == "192.0.2.1" else None

    env = Env(counters=counters)
    acl = "    acl abuser src_conn_rate gt 20\n"
    assert check(acl, "if abuser", req(), env)
    assert not check(acl, "if abuser", req(src="192.0.2.2"), env)  # no entry: false
    assert seen[0] == (CounterRef("src", "get", "conn_rate"), "fe")
    assert check("    acl f sc0_get_gpc0 gt 0\n", "if f", req(), env)
    assert not check("    acl f sc0_get_gpc0 gt 0\n", "if f", req())  # nothing injected


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_http_auth_with_insecure_passwords() -> None:
    config = parse_text(HEAD + "backend be\n    server s 127.0.0.1:1\n", env={})
    env = Env(userlists=config.userlists)
    cond = "if { http_auth(TrustedPeople) }"
    assert check("", cond, req(authorization=basic("bob", "password123")), env)
    assert not check("", cond, req(authorization=basic("bob", "nope")), env)
    assert not check("", cond, req(authorization=basic("eve", "password123")), env)
    assert not check("", cond, req(authorization="Bearer x"), env)
    assert not check("", cond, req(authorization="Basic !!!"), env)
    assert not check("", cond, req(), env)
    group = "if { http_auth_group(TrustedPeople) admins }"
    assert check("", group, req(authorization=basic("alice", "wonderland")), env)
    assert not check("", group, req(authorization=basic("bob", "password123")), env)


def test_http_auth_with_a_crypt_hash_is_verified_once() -> None:
    text = HEAD.replace("insecure-password wonderland", "password $5$salt$hash")
    config = parse_text(text + "backend be\n    server s 127.0.0.1:1\n", env={})
    calls: list[tuple[str, str]] = []

    def verify(hashed: str, password: str) -> bool:
        calls.append((hashed, password))
        return password == "secret"

    env = Env(userlists=config.userlists, verify=verify)
    cond = "if { http_auth(TrustedPeople) }"
    for _ in range(3):
        assert check("", cond, req(authorization=basic("alice", "secret")), env)
    assert not check("", cond, req(authorization=basic("alice", "bad")), env)
    assert calls == [("$5$salt$hash", "secret"), ("$5$salt$hash", "bad")]


def test_libcrypt_verifies_sha256_crypt() -> None:
    from pyxlb.l7.rules import acl
    if acl.crypt_verify is acl._no_crypt:
        pytest.skip("no libcrypt")
    # mkpasswd -m sha-256 -S saltsalt password123
    hashed = "$5$saltsalt$hIaK9cyNO75go.rZXBVWCqzqLMINxXPQpLFmIPGNex6"
    assert acl.crypt_verify(hashed, "password123")
    assert not acl.crypt_verify(hashed, "password124")


def test_split_url() -> None:
    assert split_url(b"/a?b=1") == (b"/a", b"b=1")
    assert split_url(b"/a") == (b"/a", None)
    assert split_url(b"/a?") == (b"/a", b"")
    assert split_url(b"http://h:8/x/y?z") == (b"/x/y", b"z")
    assert split_url(b"http://h") == (b"", None)
