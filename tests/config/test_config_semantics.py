"""What statements mean once parsed: defaults inheritance, listen, logs, options, warnings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from pyxlb.config import Bind, Config, LogTarget, Timeouts, Where

Parse = Callable[..., Config]


def warnings_of(config: Config) -> list[str]:
    return [str(w) for w in config.warnings]


def test_proxies_take_the_last_defaults_before_them(parse: Parse) -> None:
    config = parse("""\
        backend early
        defaults
            mode http
            balance leastconn
            option forwardfor
            timeout connect 5s
            timeout server 10s
        backend first
        defaults
            timeout server 20s
        backend second
    """)
    early, first, second = (config.backends[n] for n in ("early", "first", "second"))
    # Before any defaults: HAProxy's own defaults.
    assert (early.mode, early.balance, early.options) == ("tcp", "roundrobin", frozenset())
    assert (first.mode, first.balance, first.options) == ("http", "leastconn", {"forwardfor"})
    assert first.timeouts == Timeouts(connect=5000, server=10_000)
    # A new defaults section starts from scratch.
    assert (second.mode, second.balance, second.options) == ("tcp", "roundrobin", frozenset())
    assert second.timeouts == Timeouts(server=20_000)
    assert [d.timeouts.server for d in config.defaults] == [10_000, 20_000]


def test_a_proxy_overrides_and_negates_what_it_inherits(parse: Parse) -> None:
    config = parse("""\
        defaults
            mode http
            option httplog
            option forwardfor
            timeout client 5s
            maxconn 100
        frontend f
            bind :80
            no option forwardfor
            option dontlognull
            timeout client 30s
            maxconn 200
            default_backend b
        backend b
    """)
    front = config.frontends["f"]
    assert front.options == {"httplog", "dontlognull"}
    assert front.timeouts.client == 30_000
    assert front.maxconn == 200
    assert config.defaults[0].options == {"httplog", "forwardfor"}


def test_listen_is_a_frontend_and_a_backend(parse: Parse) -> None:
    config = parse("""\
        listen stats
            mode http
            bind *:8080
            stats uri /status
            balance source
            server s1 10.0.0.1:8080
    """)
    front, back = config.frontends["stats"], config.backends["stats"]
    assert front.default_backend == "stats"
    assert front.stats_uri == "/status"
    assert front.binds == [Bind(host=None, port=8080, where=Where("t.cfg", 3, 5))]
    assert back.balance == "source"
    assert [s.name for s in back.servers] == ["s1"]
    assert front.where == back.where == Where("t.cfg", 1, 1)


def test_a_tcp_frontend_may_use_an_http_backend(parse: Parse) -> None:
    """HAProxy upgrades the streams to HTTP; only the reverse is an error."""
    config = parse("frontend f\n  bind :80\n  default_backend b\nbackend b\n  mode http\n")
    assert (config.frontends["f"].mode, config.backends["b"].mode) == ("tcp", "http")


def test_listen_follows_an_inherited_default_backend(parse: Parse) -> None:
    """As in HAProxy, a listen's frontend goes to the defaults' default_backend."""
    config = parse("""\
        defaults
            default_backend other
        listen l
            bind :80
        backend other
    """)
    assert config.frontends["l"].default_backend == "other"


def test_a_frontend_and_a_backend_may_share_a_name(parse: Parse) -> None:
    config = parse("""\
        frontend web
            bind :80
            default_backend web
        backend web
            server a 10.0.0.1:80
    """)
    assert config.frontends["web"].default_backend == "web"
    assert [s.name for s in config.backends["web"].servers] == ["a"]


def test_log_global_and_own_log_targets(parse: Parse) -> None:
    config = parse("""\
        global
            log /dev/log local0
            log 10.0.0.9 local1 notice err
        defaults
            log global
        frontend f
            bind :80
            log [::1]:1514 daemon info
        frontend quiet
            bind :81
            no log
        frontend own
            bind :82
            no log
            log udp@logs.example.com:5140 local2
            log unix@/run/log.sock local3
    """)
    udp = LogTarget(kind="udp", target="10.0.0.9:514", host="10.0.0.9", port=514,
                    facility="local1", max_level="notice", min_level="err",
                    where=Where("t.cfg", 3, 5))
    assert config.global_.logs[1] == udp
    assert config.frontends["f"].logs == [
        *config.global_.logs,
        LogTarget(kind="udp", target="[::1]:1514", host="::1", port=1514, facility="daemon",
                  max_level="info", where=Where("t.cfg", 8, 5)),
    ]
    assert config.frontends["quiet"].logs == []
    assert [(t.kind, t.target) for t in config.frontends["own"].logs] == [
        ("udp", "logs.example.com:5140"), ("unix", "/run/log.sock")]


def test_several_global_sections_add_up(parse: Parse) -> None:
    config = parse("""\
        global
            log /dev/log local0
        global
            log /dev/log local1
            maxconn 10
            nbthread 2
    """)
    assert [t.facility for t in config.global_.logs] == ["local0", "local1"]
    assert config.global_.maxconn == 10
    assert config.global_.nbthread == 2
    assert config.global_.where == Where("t.cfg", 1, 1)


def test_no_global_section_gives_haproxy_defaults(parse: Parse) -> None:
    g = parse("").global_
    assert (g.logs, g.stats_socket, g.stats_timeout_ms, g.maxconn, g.daemon, g.where) == \
        ([], None, 10_000, None, False, None)


def test_http_only_options_leave_a_tcp_proxy_with_warnings(parse: Parse) -> None:
    config = parse("""\
        defaults
            option httplog
            option forwardfor
            option http-server-close
            timeout connect 1s
            timeout client 1s
            timeout server 1s
        frontend f
            bind :80
            stats uri /s
            default_backend b
        backend b
    """)
    assert config.frontends["f"].options == {"tcplog"}
    assert config.frontends["f"].stats_uri is None
    assert config.backends["b"].options == frozenset()
    assert warnings_of(config) == [
        "t.cfg:2:5: 'option httplog' not usable with frontend 'f' (needs 'mode http'); falling "
        "back to 'option tcplog'",
        "t.cfg:3:5: 'option forwardfor' ignored for frontend 'f' as it requires 'mode http'",
        "t.cfg:4:5: 'option http-server-close' ignored for frontend 'f' as it requires "
        "'mode http'",
        "t.cfg:10:5: 'stats uri' ignored for frontend 'f' as it requires 'mode http'",
        "t.cfg:8:1: log format ignored for frontend 'f' since it has no log address",
        "t.cfg:3:5: 'option forwardfor' ignored for backend 'b' as it requires 'mode http'",
        "t.cfg:4:5: 'option http-server-close' ignored for backend 'b' as it requires "
        "'mode http'",
    ]


def test_settings_without_the_capability_are_ignored_with_a_warning(parse: Parse) -> None:
    config = parse("""\
        defaults
            timeout connect 1s
            timeout client 1s
            timeout server 1s
        frontend f
            bind :80
            timeout server 9s
            balance leastconn
            default_backend b
        backend b
            bind :81
            maxconn 10
            option dontlognull
            timeout client 9s
    """)
    assert config.backends["b"].timeouts.server == 1000
    assert config.backends["b"].balance == "roundrobin"
    assert config.frontends["f"].timeouts == Timeouts(client=1000)
    assert warnings_of(config) == [
        "t.cfg:7:5: 'timeout server' ignored because frontend 'f' has no backend capability",
        "t.cfg:8:5: 'balance' ignored because frontend 'f' has no backend capability",
        "t.cfg:11:5: 'bind' ignored because backend 'b' has no frontend capability",
        "t.cfg:12:5: 'maxconn' ignored because backend 'b' has no frontend capability",
        "t.cfg:13:5: 'option dontlognull' ignored because backend 'b' has no frontend "
        "capability",
        "t.cfg:14:5: 'timeout client' ignored because backend 'b' has no frontend capability",
    ]


def test_missing_timeouts_and_binds_are_warnings(parse: Parse) -> None:
    config = parse("""\
        frontend f
            default_backend b
        backend b
            timeout connect 0
        listen l
            bind :80
            bind :443 crt /etc/ssl/site.pem
    """)
    assert warnings_of(config) == [
        "t.cfg:7:5: 'crt' has no effect on 'bind :443' without 'ssl'",
        "t.cfg:1:1: missing timeouts for frontend 'f': set 'timeout client', or connections can "
        "stay open forever",
        "t.cfg:1:1: frontend 'f' has no 'bind' directive; declare it as a backend if this was "
        "intended",
        "t.cfg:3:1: missing timeouts for backend 'b': set 'timeout connect', 'timeout server', "
        "or connections can stay open forever",
        "t.cfg:5:1: missing timeouts for listen 'l': set 'timeout client', 'timeout connect', "
        "'timeout server', or connections can stay open forever",
    ]


def test_bind_forms(parse: Parse) -> None:
    front = parse("""\
        frontend f
            bind *:80
            bind :81
            bind 0.0.0.0:82
            bind :::83
            bind [::1]:84
            bind lb.example.com:85
            bind *:443 ssl crt /etc/ssl/site.pem
            bind udp@*:53
            bind tcp@10.0.0.1:86
    """).frontends["f"]
    assert [(b.host, b.port, b.ssl, b.crt) for b in front.binds] == [
        (None, 80, False, None), (None, 81, False, None), ("0.0.0.0", 82, False, None),
        ("::", 83, False, None), ("::1", 84, False, None), ("lb.example.com", 85, False, None),
        (None, 443, True, "/etc/ssl/site.pem"), (None, 53, False, None),
        ("10.0.0.1", 86, False, None),
    ]
    assert [b.proto for b in front.binds] == ["tcp"] * 7 + ["udp", "tcp"]


def test_pyxlb_forward_chooses_how_the_kernel_tier_forwards(parse: Parse) -> None:
    config = parse("""\
        backend nat
            mode tcp
            server a 10.0.0.1:80
        backend dsr
            mode tcp
            pyxlb-forward dsr
            server a 10.0.0.1:80
    """)
    assert (config.backends["nat"].forward, config.backends["dsr"].forward) == ("nat", "dsr")


def test_server_forms(parse: Parse) -> None:
    back = parse("""\
        backend b
            mode http
            server a 10.0.0.1
            server b [2001:db8::2]:8080 backup weight 0 maxconn 50 inter 1m rise 5 fall 1
            server c web.internal:443 check cookie c1
    """).backends["b"]
    assert [(s.name, s.host, s.port) for s in back.servers] == [
        ("a", "10.0.0.1", None), ("b", "2001:db8::2", 8080), ("c", "web.internal", 443)]
    b = back.servers[1]
    assert (b.backup, b.weight, b.maxconn, b.inter_ms, b.rise, b.fall, b.check) == \
        (True, 0, 50, 60_000, 5, 1, False)
    assert (back.servers[2].check, back.servers[2].cookie) == (True, "c1")


def test_environment_variables_in_a_configuration(parse: Parse) -> None:
    config = parse("""\
        frontend "fe_$SITE"
            bind "${ADDR-127.0.0.1}:${PORT}"
    """, env={"SITE": "shop", "PORT": "8080"})
    assert config.frontends["fe_shop"].binds[0].port == 8080
    assert config.frontends["fe_shop"].binds[0].host == "127.0.0.1"


def test_model_objects_are_frozen(parse: Parse) -> None:
    config = parse("backend b\n  server a 10.0.0.1:80\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.backends["b"].servers[0].weight = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.global_ = config.global_  # type: ignore[misc]


def test_stats_socket_defaults(parse: Parse) -> None:
    socket = parse("global\n  stats socket /run/pyxlb.sock\n").global_.stats_socket
    assert socket is not None
    assert (socket.path, socket.mode, socket.level) == ("/run/pyxlb.sock", None, "operator")


def test_stats_keywords(parse: Parse) -> None:
    front = parse("""\
        defaults
            mode http
            stats realm Shared
        listen stats
            bind :8404
            stats uri /admin?stats
            stats auth admin:secret
            stats auth ops:
            stats refresh 5s
            stats hide-version
            stats admin if { src 127.0.0.1 }
        frontend plain
            bind :80
    """).frontends
    stats = front["stats"].stats
    assert stats is not None
    assert (stats.uri, stats.realm, stats.refresh_ms, stats.hide_version) == \
        ("/admin?stats", "Shared", 5000, True)
    assert [(u.user, u.password) for u in stats.auth] == [("admin", "secret"), ("ops", "")]
    [admin] = stats.admin
    assert admin.alternatives[0][0].acl.matches[0].fetch.name == "src"
    assert front["stats"].stats_uri == "/admin?stats"
    # Any stats keyword in defaults enables the page in every frontend after it.
    assert front["plain"].stats is not None
    assert (front["plain"].stats.uri, front["plain"].stats.realm) == ("/haproxy?stats", "Shared")


def test_stats_in_defaults_do_not_leak_between_proxies(parse: Parse) -> None:
    front = parse("""\
        defaults
            mode http
            stats auth a:b
        frontend one
            bind :80
            stats auth c:d
        frontend two
            bind :81
    """).frontends
    assert [u.user for u in front["one"].stats.auth] == ["a", "c"]  # type: ignore[union-attr]
    assert [u.user for u in front["two"].stats.auth] == ["a"]  # type: ignore[union-attr]


def test_named_defaults(parse: Parse) -> None:
    config = parse("""\
        defaults base
            timeout connect 5s
            timeout server 5s
        defaults web from base
            mode http
            option forwardfor
        defaults
            mode tcp
        backend implicit
        backend explicit from web
        backend explicit_base from base
    """)
    backends = config.backends
    assert (backends["implicit"].mode, backends["implicit"].timeouts.connect) == ("tcp", None)
    assert (backends["explicit"].mode, backends["explicit"].options,
            backends["explicit"].timeouts.connect) == ("http", {"forwardfor"}, 5000)
    assert (backends["explicit_base"].mode, backends["explicit_base"].timeouts.server) == \
        ("tcp", 5000)
    assert [d.name for d in config.defaults] == ["base", "web", None]


def test_defaults_from_without_a_name(parse: Parse) -> None:
    config = parse("""\
        defaults base
            mode http
        defaults from base
            timeout server 1s
        backend b
    """)
    assert (config.backends["b"].mode, config.backends["b"].timeouts.server) == ("http", 1000)
    assert [d.name for d in config.defaults] == ["base", None]


def test_a_defaults_section_may_not_inherit_rules(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        defaults rules
            mode http
            http-request deny if { src 10.0.0.1 }
        defaults more from rules
    """) == ["t.cfg:4:1: defaults 'more' cannot inherit from defaults 'rules', which has rules "
             "(at t.cfg:1)"]


def test_backends_may_not_inherit_connection_rules(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        defaults rules
            tcp-request connection reject if { src 10.0.0.1 }
        backend b from rules
    """) == ["t.cfg:3:1: backend 'b' cannot inherit from defaults 'rules', which has "
             "'tcp-request connection' rules (at t.cfg:1)"]


def test_an_ambiguous_defaults_name(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        defaults web
        defaults web
        frontend f from web
            bind :80
    """) == ["t.cfg:3:17: 'from web' is ambiguous: several defaults sections have that name "
             "(at t.cfg:1 and t.cfg:2)"]
