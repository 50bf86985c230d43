"""Backends: servers and default-server, balance and hash-type, cookies, health checks,
stick tables, retries."""

from __future__ import annotations

from collections.abc import Callable

from pyxlb.config import Config, Where
from pyxlb.config.model import (
    BalanceParams,
    Cookie,
    HttpCheck,
    HttpCheckExpect,
    StickTable,
    StoreItem,
)

Parse = Callable[..., Config]


def test_default_server_applies_to_later_servers(parse: Parse) -> None:
    back = parse("""\
        defaults
            mode http
            default-server inter 3s rise 4
        backend b
            server early 10.0.0.1:80
            default-server check weight 20 fall 5
            server a 10.0.0.2:80
            server b 10.0.0.3:80 rise 1 no-check weight 1
            default-server inter 1s
            server c 10.0.0.4:80 backup
            server d 10.0.0.5:80 no-backup
    """).backends["b"]
    assert [(s.name, s.inter_ms, s.rise, s.fall, s.check, s.weight, s.backup)
            for s in back.servers] == [
        ("early", 3000, 4, 3, False, 1, False),
        ("a", 3000, 4, 5, True, 20, False),
        ("b", 3000, 1, 5, False, 1, False),
        ("c", 1000, 4, 5, True, 20, True),
        ("d", 1000, 4, 5, True, 20, False),
    ]


def test_defaults_default_server_does_not_leak_between_proxies(parse: Parse) -> None:
    config = parse("""\
        defaults
            default-server inter 3s
        backend one
            default-server inter 9s
            server a 10.0.0.1:80
        backend two
            server b 10.0.0.2:80
    """)
    assert config.backends["one"].servers[0].inter_ms == 9000
    assert config.backends["two"].servers[0].inter_ms == 3000


def test_server_check_options(parse: Parse) -> None:
    back = parse("""\
        backend b
            mode http
            server a 10.0.0.1:80 check inter 10s fastinter 1s downinter 1m observe layer7 \
error-limit 3 on-error sudden-death
            server b 10.0.0.2:80 disabled
            server c 10.0.0.3:80 disabled enabled observe none
    """).backends["b"]
    a, b, c = back.servers
    assert (a.inter_ms, a.fastinter_ms, a.downinter_ms, a.observe, a.error_limit, a.on_error) \
        == (10_000, 1000, 60_000, "layer7", 3, "sudden-death")
    assert (b.fastinter_ms, b.downinter_ms, b.observe, b.error_limit, b.on_error, b.disabled) \
        == (None, None, "none", 10, "fail-check", True)
    assert (c.disabled, c.observe) == (False, "none")


def test_observe_layer7_needs_http(parse: Parse) -> None:
    config = parse("backend b\n  server a 10.0.0.1:80 check observe layer7\n")
    assert config.backends["b"].servers[0].observe == "none"
    assert str(config.warnings[0]) == ("t.cfg:2:38: 'observe layer7' ignored: it can only be "
                                       "used in 'mode http' proxies")


def test_balance_variants(parse: Parse) -> None:
    config = parse("""\
        defaults
            mode http
        backend rr
            balance roundrobin
        backend srr
            balance static-rr
        backend lc
            balance leastconn
        backend first
            balance first
        backend src
            balance source
            hash-type consistent
        backend uri
            balance uri
        backend uri_args
            balance uri whole len 10 depth 2
        backend host
            balance hdr(Host) use_domain_only
            hash-type map-based
    """)
    assert [(name, b.balance, b.balance_params, b.hash_type)
            for name, b in config.backends.items()] == [
        ("rr", "roundrobin", BalanceParams(), "map-based"),
        ("srr", "static-rr", BalanceParams(), "map-based"),
        ("lc", "leastconn", BalanceParams(), "map-based"),
        ("first", "first", BalanceParams(), "map-based"),
        ("src", "source", BalanceParams(), "consistent"),
        ("uri", "uri", BalanceParams(), "map-based"),
        ("uri_args", "uri", BalanceParams(whole=True, len=10, depth=2), "map-based"),
        ("host", "hdr", BalanceParams(header="host", use_domain_only=True), "map-based"),
    ]


def test_layer7_balance_falls_back_in_tcp_mode(parse: Parse) -> None:
    config = parse("backend b\n  balance hdr(host)\n  timeout connect 1s\n  timeout server 1s\n")
    assert (config.backends["b"].balance, config.backends["b"].balance_params) == \
        ("roundrobin", BalanceParams())
    assert [str(w) for w in config.warnings] == [
        "t.cfg:1:1: layer 7 hash not possible for backend 'b' (needs 'mode http'); falling back "
        "to 'balance roundrobin'"]


def test_cookies(parse: Parse) -> None:
    config = parse("""\
        defaults
            mode http
            cookie SRV insert indirect nocache
        backend inherits
        backend own
            cookie JSESSIONID prefix
        backend full
            cookie S insert postonly preserve httponly secure domain .a.com domain .b.com \
maxidle 30m maxlife 8h
        backend passive
            cookie S
    """)
    backends = config.backends
    assert backends["inherits"].cookie == Cookie(name="SRV", mode="insert", indirect=True,
                                                 nocache=True, where=Where("t.cfg", 3, 5))
    assert backends["own"].cookie == Cookie(name="JSESSIONID", mode="prefix",
                                            where=Where("t.cfg", 6, 5))
    assert backends["full"].cookie == Cookie(
        name="S", mode="insert", postonly=True, preserve=True, httponly=True, secure=True,
        domains=(".a.com", ".b.com"), maxidle_ms=1_800_000, maxlife_ms=28_800_000,
        where=Where("t.cfg", 8, 5))
    assert backends["passive"].cookie == Cookie(name="S", where=Where("t.cfg", 10, 5))


def test_http_checks(parse: Parse) -> None:
    config = parse("""\
        defaults
            option httpchk
        backend plain
        backend uri
            option httpchk /health
        backend full
            option httpchk HEAD /ping HTTP/1.1
            http-check expect status 200-399
            http-check expect ! rstring ^maint
            http-check expect !string error
        backend none
            no option httpchk
    """)
    backends = config.backends
    assert backends["plain"].httpchk == HttpCheck(where=Where("t.cfg", 2, 5))
    assert (backends["uri"].httpchk.method, backends["uri"].httpchk.uri) == \
        ("OPTIONS", "/health")  # type: ignore[union-attr]
    assert backends["full"].httpchk == HttpCheck(
        method="HEAD", uri="/ping", version="HTTP/1.1", where=Where("t.cfg", 7, 5), expects=(
            HttpCheckExpect(kind="status", pattern="200-399", where=Where("t.cfg", 8, 5)),
            HttpCheckExpect(kind="rstring", pattern="^maint", negate=True,
                            where=Where("t.cfg", 9, 5)),
            HttpCheckExpect(kind="string", pattern="error", negate=True,
                            where=Where("t.cfg", 10, 5))))
    assert backends["none"].httpchk is None


def test_stick_tables(parse: Parse) -> None:
    config = parse("""\
        frontend f
            bind :80
            stick-table type ip size 200k expire 2m store conn_rate(3s),gpc0 store http_err_rate(5s)
        backend ipv6
            stick-table type ipv6 size 1m nopurge
        backend keys
            stick-table type string size 100 store conn_cnt,conn_cur,http_req_cnt \
store http_req_rate(1m),http_err_cnt,gpc0_rate(10s)
        backend long_keys
            stick-table type string len 64 size 10
        backend numbers
            stick-table type integer size 1g
    """)
    assert config.frontends["f"].stick_table == StickTable(
        type="ip", size=204_800, expire_ms=120_000, where=Where("t.cfg", 3, 5), store=(
            StoreItem(name="conn_rate", period_ms=3000), StoreItem(name="gpc0"),
            StoreItem(name="http_err_rate", period_ms=5000)))
    tables = {name: b.stick_table for name, b in config.backends.items()}
    assert (tables["ipv6"].type, tables["ipv6"].size, tables["ipv6"].nopurge) == \
        ("ipv6", 1_048_576, True)  # type: ignore[union-attr]
    assert [item.name for item in tables["keys"].store] == [  # type: ignore[union-attr]
        "conn_cnt", "conn_cur", "http_req_cnt", "http_req_rate", "http_err_cnt", "gpc0_rate"]
    assert tables["keys"].key_len == 32  # type: ignore[union-attr]
    assert tables["long_keys"].key_len == 64  # type: ignore[union-attr]
    assert tables["numbers"].size == 1024**3  # type: ignore[union-attr]


def test_retries_and_backlog(parse: Parse) -> None:
    config = parse("""\
        defaults
            retries 5
            backlog 128
        listen l
            bind :80
            retries 2
            server a 10.0.0.1:80
    """)
    assert (config.backends["l"].retries, config.frontends["l"].backlog) == (2, 128)


def test_cookie_lifetimes_as_haproxy_reads_them(parse: Parse) -> None:
    # Seconds unless a unit says otherwise, rounded up to whole seconds; 0 is no
    # limit; beyond timers' 24.8 days, as HAProxy counts these in seconds.
    lifetimes = {"30": 30_000, "500ms": 1000, "1500ms": 2000, "0": None, "30d": 2_592_000_000}
    for text, ms in lifetimes.items():
        cookie = parse("defaults\n    mode http\nbackend b\n"
                       f"    cookie S insert maxidle {text} maxlife {text}\n").backends["b"].cookie
        assert (cookie.maxidle_ms, cookie.maxlife_ms) == (ms, ms), text
