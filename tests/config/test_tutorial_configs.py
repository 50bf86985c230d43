"""The tutorial's configurations (seeds/000) parse to the model they describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyxlb.config import (
    Bind,
    ConfigError,
    ConfigErrors,
    LogTarget,
    Server,
    Timeouts,
    Where,
    load_config,
    parse_text,
)

DATA = Path(__file__).parent / "data"
FIRST = str(DATA / "tutorial_first.cfg")
WEBSOCKET = str(DATA / "tutorial_websocket.cfg")


def at(line: int, col: int, file: str = FIRST) -> Where:
    return Where(file, line, col)


def test_first_configuration_global() -> None:
    g = load_config([FIRST], env={}).global_
    assert g.logs == [
        LogTarget(kind="unix", target="/dev/log", facility="local0", where=at(4, 5)),
        LogTarget(kind="unix", target="/dev/log", facility="local1", max_level="notice",
                  where=at(5, 5)),
    ]
    assert g.chroot == "/var/lib/haproxy"
    assert g.stats_socket is not None
    assert (g.stats_socket.path, g.stats_socket.mode, g.stats_socket.level) == \
        ("/run/haproxy/admin.sock", 0o660, "admin")
    assert g.stats_timeout_ms == 30_000
    assert (g.user, g.group, g.maxconn, g.daemon) == ("haproxy", "haproxy", 2048, True)
    assert str(g.where) == f"{FIRST}:3"


def test_first_configuration_frontend() -> None:
    config = load_config([FIRST], env={})
    assert list(config.frontends) == ["http_front"]
    front = config.frontends["http_front"]
    assert front.name == "http_front"
    assert front.mode == "http"
    assert front.binds == [Bind(host=None, port=80, where=at(24, 5))]
    assert front.stats_uri == "/haproxy?stats"
    assert front.default_backend == "http_back"
    assert front.options == {"httplog", "dontlognull"}
    assert front.timeouts == Timeouts(client=50_000)
    assert front.maxconn is None
    # `log global` in defaults: the global section's two targets.
    assert front.logs == config.global_.logs
    assert str(front.where) == f"{FIRST}:23"


def test_first_configuration_backend() -> None:
    config = load_config([FIRST], env={})
    assert list(config.backends) == ["http_back"]
    back = config.backends["http_back"]
    assert (back.name, back.mode, back.balance) == ("http_back", "http", "roundrobin")
    assert back.servers == [
        Server(name="web1", host="10.111.0.21", port=80, check=True, where=at(30, 5)),
        Server(name="web2", host="10.111.0.22", port=80, check=True, where=at(31, 5)),
    ]
    web1 = back.servers[0]
    assert (web1.weight, web1.backup, web1.inter_ms, web1.rise, web1.fall, web1.maxconn,
            web1.cookie) == (1, False, 2000, 2, 3, 0, None)
    assert back.timeouts == Timeouts(connect=5000, server=50_000)
    # httplog and dontlognull are frontend options.
    assert back.options == frozenset()
    assert back.logs == config.global_.logs


def test_first_configuration_whole() -> None:
    config = load_config([FIRST], env={})
    assert config.files == [FIRST]
    assert config.warnings == []
    assert config.userlists == {}
    [defaults] = config.defaults
    assert (defaults.name, defaults.mode) == (None, "http")
    assert defaults.timeouts == Timeouts(connect=5000, client=50_000, server=50_000)


def test_first_configuration_as_the_tutorial_wrote_it() -> None:
    """Without section headers its first line is outside any section, and 'private_IP'
    is a host name to pyxlb (HAProxy would fail to resolve it at start-up)."""
    text = "log /dev/log local0\nbackend b\n  server my_server private_IP:80 check\n"
    with pytest.raises(ConfigError) as info:
        parse_text(text, "t.cfg", env={})
    assert str(info.value) == ("t.cfg:1:1: 'log' appears outside any section; start one first "
                               "with global, defaults, frontend, backend or listen")
    server = parse_text(text.split("\n", 1)[1], env={}).backends["b"].servers[0]
    assert (server.host, server.port) == ("private_IP", 80)


def test_websocket_configuration_reports_what_is_not_supported_yet() -> None:
    with pytest.raises(ConfigErrors) as info:
        load_config([WEBSOCKET], env={})
    unsupported = "is a HAProxy keyword pyxlb does not support yet"
    assert [str(e).removeprefix(WEBSOCKET + ":") for e in info.value.errors] == [
        "4:7: 'log' expects <target> <facility> [<max level> [<min level>]] ('local0' is a "
        "facility: the target comes first)",
        f"15:3: 'option redispatch' {unsupported}",
        f"16:3: 'option contstats' {unsupported}",
        f"17:3: 'retries' {unsupported}",
        f"18:3: 'backlog' {unsupported}",
        f"27:3: 'default-server' {unsupported}",
        f"32:4: 'stats enable' {unsupported}",
        f"33:4: 'stats hide-version' {unsupported}",
        f"34:4: 'stats realm' {unsupported}",
        f"36:4: 'stats auth' {unsupported}",
        f"41:3: 'acl' {unsupported}",
        f"42:3: 'use_backend' {unsupported}",
        f"47:3: 'option httpchk' {unsupported}",
        f"54:3: 'option httpchk' {unsupported}",
        f"56:3: 'cookie' {unsupported}",
    ]


def websocket_in_scope() -> str:
    """The WebSocket configuration without the lines pyxlb does not support yet."""
    skip = ("log local0", "option redispatch", "option contstats", "retries", "backlog",
            "default-server", "stats enable", "stats hide-version", "stats realm", "stats auth",
            "acl", "use_backend", "option httpchk", "cookie HAPROXY_COOKIE")
    with open(WEBSOCKET) as f:
        return "".join(line if not line.strip().startswith(skip) else "\n" for line in f)


def test_websocket_configuration_in_scope() -> None:
    config = parse_text(websocket_in_scope(), WEBSOCKET, env={})
    assert config.warnings == []
    assert config.global_.maxconn == 8192
    assert list(config.frontends) == ["stats", "public"]
    assert list(config.backends) == ["stats", "www", "ws"]

    stats = config.frontends["stats"]
    assert stats.binds == [Bind(host=None, port=8080, where=at(31, 4, WEBSOCKET))]
    assert stats.stats_uri == "/status"
    assert stats.default_backend == "stats"  # a listen section is its own backend

    public = config.frontends["public"]
    assert (public.maxconn, public.default_backend) == (10_000, "www")
    assert public.options == {"httplog", "http-server-close", "dontlognull", "forwardfor"}
    assert public.timeouts == Timeouts(client=35_000, http_keep_alive=1000, http_request=15_000,
                                       tarpit=60_000)

    www = config.backends["www"]
    assert www.options == {"http-server-close", "forwardfor"}
    assert www.timeouts == Timeouts(connect=5000, server=35_000, tunnel=3_600_000,
                                    http_keep_alive=1000, http_request=15_000, queue=30_000,
                                    tarpit=60_000, check=5000)
    assert www.servers[0] == Server(name="www1", host="10.111.0.21", port=80, check=True,
                                    weight=10, inter_ms=10_000, rise=1, fall=3, maxconn=1000,
                                    cookie="websrv_www", where=at(49, 3, WEBSOCKET))
    # Repeated server options: the last one wins, as in HAProxy.
    assert [(s.name, s.port, s.cookie) for s in config.backends["ws"].servers] == \
        [("ws1", 8080, "ws1"), ("ws2", 8080, "ws2")]
