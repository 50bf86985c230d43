"""Which tier serves each proxy: the kernel (XDP, layer 4) or l7 (asyncio)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyxlb.config import Config

Parse = Callable[..., Config]

HEADER = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""


def tiers(parse: Parse, body: str) -> tuple[dict[str, str], dict[str, str]]:
    config = parse(HEADER + body)
    return ({name: f.tier for name, f in config.frontends.items()},
            {name: b.tier for name, b in config.backends.items()})


def test_a_plain_tcp_service_is_kernel(parse: Parse) -> None:
    assert tiers(parse, """\
listen db
    bind :3306
    balance leastconn
    server a 10.0.0.1:3306
""") == ({"db": "kernel"}, {"db": "kernel"})


def test_connection_rules_on_what_the_kernel_knows(parse: Parse) -> None:
    assert tiers(parse, """\
frontend f
    bind :80
    stick-table type ip size 1m expire 1m store conn_rate(10s),gpc0
    acl blocked src 10.66.0.0/16 2001:db8:66::/48
    tcp-request connection reject if blocked
    tcp-request connection accept if LOCALHOST
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc0_conn_rate gt 100 } { sc0_inc_gpc0 ge 0 }
    tcp-request connection reject if { src_get_gpc0(f) gt 0 } || FALSE
    default_backend b
backend b
    balance source
    server a 10.0.0.1:80
""") == ({"f": "kernel"}, {"b": "kernel"})


@pytest.mark.parametrize(("rule", "why"), [
    ("tcp-request connection reject if { dst_port 81 }", "a fetch the kernel has not"),
    ("tcp-request connection reject if { sc0_conn_cur gt 5 }", "conn_cur is not counted"),
    ("tcp-request connection track-sc0 dst", "a key other than src"),
    ("use_backend b if { src_port 1234 }", "a switching rule on another fetch"),
])
def test_rules_beyond_the_kernel_make_it_l7(parse: Parse, rule: str, why: str) -> None:
    front, _ = tiers(parse, f"""\
frontend f
    bind :80
    stick-table type ip size 1k store conn_rate(1s),conn_cur
    {rule}
    default_backend b
backend b
    server a 10.0.0.1:80
""")
    assert front == {"f": "l7"}, why


@pytest.mark.parametrize(("setting", "why"), [
    ("stick-table type ip size 1k store http_req_rate(1s)", "a counter the kernel has not"),
    ("stick-table type string size 1k", "keys other than addresses"),
    ("bind :443 ssl crt /etc/ssl/site.pem", "TLS is terminated in l7"),
])
def test_frontend_settings_beyond_the_kernel(parse: Parse, setting: str, why: str) -> None:
    front, back = tiers(parse, f"""\
frontend f
    bind :80
    {setting}
    default_backend b
backend b
    server a 10.0.0.1:80
""")
    assert (front, back) == ({"f": "l7"}, {"b": "l7"}), why


def test_http_is_l7(parse: Parse) -> None:
    assert tiers(parse, """\
frontend f
    mode http
    bind :80
    default_backend b
backend b
    mode http
    server a 10.0.0.1:80
""") == ({"f": "l7"}, {"b": "l7"})


def test_a_tier_spreads_along_what_a_frontend_uses(parse: Parse) -> None:
    """A kernel frontend only sends to kernel backends, and a backend any l7 frontend
    uses is l7: `static` balances with static-rr, which only l7 has, so `two`, which
    sends to it, is l7 too; the others stay in the kernel."""
    assert tiers(parse, """\
frontend one
    bind :80
    use_backend shared if { src 10.0.0.0/8 }
    default_backend own
frontend two
    bind :81
    default_backend static
backend shared
    server a 10.0.0.1:80
backend own
    server b 10.0.0.2:80
backend static
    balance static-rr
    server c 10.0.0.3:80
frontend three
    bind :82
    default_backend alone
backend alone
    server d 10.0.0.4:80
""") == ({"one": "kernel", "two": "l7", "three": "kernel"},
         {"shared": "kernel", "own": "kernel", "static": "l7", "alone": "kernel"})


def test_a_backend_shared_with_an_l7_frontend_is_l7(parse: Parse) -> None:
    assert tiers(parse, """\
frontend k
    bind :80
    default_backend shared
frontend h
    bind :81
    tcp-request connection reject if { dst_port 81 }
    default_backend shared
backend shared
    server a 10.0.0.1:80
""") == ({"k": "l7", "h": "l7"}, {"shared": "l7"})


def test_a_tcp_frontend_sending_to_an_http_backend_is_l7(parse: Parse) -> None:
    assert tiers(parse, """\
frontend f
    bind :80
    default_backend web
backend web
    mode http
    server a 10.0.0.1:80
""") == ({"f": "l7"}, {"web": "l7"})
