"""Golden tests: every configuration of the tutorial (seeds/000), completed with the
headers and addresses it leaves out (data/good/tutorial_*.cfg), parses to the model
it describes."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest
from config_files import GOOD_DIR

from pyxlb.config import (
    Bind,
    Config,
    ConfigError,
    LogTarget,
    Server,
    Timeouts,
    Where,
    load_config,
    parse_text,
)
from pyxlb.config.conditions import Acl, Condition, Fetch, IntRange, Match, Term
from pyxlb.config.model import (
    Cookie,
    HttpCheck,
    Stats,
    StatsUser,
    StickTable,
    StoreItem,
    User,
    Userlist,
)
from pyxlb.config.rules import (
    Allow,
    Auth,
    Deny,
    HttpRequestRule,
    Redirect,
    RedirectRule,
    TrackSc,
    UseBackendRule,
)

TUTORIAL = sorted(GOOD_DIR.glob("tutorial_*.cfg"))


@pytest.fixture(autouse=True)
def in_good_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths in the files (the test certificate) are relative to data/good/."""
    monkeypatch.chdir(GOOD_DIR)


def load(name: str) -> tuple[Config, Path]:
    path = GOOD_DIR / f"tutorial_{name}.cfg"
    return load_config([str(path)], env={}), path


def test_every_tutorial_configuration_is_covered() -> None:
    assert [p.stem.removeprefix("tutorial_") for p in TUTORIAL] == [
        "backup", "basic_auth", "deny_abuser", "first", "monitor", "observe", "redirect",
        "syslog", "websocket", "whitelist"]


@pytest.mark.parametrize("path", TUTORIAL, ids=[p.stem for p in TUTORIAL])
def test_tutorial_configurations_have_no_warnings(path: Path) -> None:
    assert load_config([str(path)], env={}).warnings == []


def test_first_configuration_global() -> None:
    config, path = load("first")
    g = config.global_
    assert g.logs == [
        LogTarget(kind="unix", target="/dev/log", facility="local0", where=Where(str(path), 4, 5)),
        LogTarget(kind="unix", target="/dev/log", facility="local1", max_level="notice",
                  where=Where(str(path), 5, 5)),
    ]
    assert g.chroot == "/var/lib/haproxy"
    assert g.stats_socket is not None
    assert (g.stats_socket.path, g.stats_socket.mode, g.stats_socket.level) == \
        ("/run/haproxy/admin.sock", 0o660, "admin")
    assert g.stats_timeout_ms == 30_000
    assert (g.user, g.group, g.maxconn, g.daemon) == ("haproxy", "haproxy", 2048, True)
    assert str(g.where) == f"{path}:3"


def test_first_configuration_frontend() -> None:
    config, path = load("first")
    assert list(config.frontends) == ["http_front"]
    front = config.frontends["http_front"]
    assert front.name == "http_front"
    assert front.mode == "http"
    assert front.binds == [Bind(host=None, port=80, where=Where(str(path), 24, 5))]
    assert front.stats_uri == "/haproxy?stats"
    assert front.stats == Stats(uri="/haproxy?stats", where=Where(str(path), 25, 5))
    assert front.default_backend == "http_back"
    assert front.options == {"httplog", "dontlognull"}
    assert front.timeouts == Timeouts(client=50_000)
    assert front.maxconn is None
    # `log global` in defaults: the global section's two targets.
    assert front.logs == config.global_.logs
    assert (front.acls, front.http_request, front.redirects, front.use_backends) == \
        ({}, [], [], [])
    assert front.tier == "l7"
    assert str(front.where) == f"{path}:23"


def test_first_configuration_backend() -> None:
    config, path = load("first")
    assert list(config.backends) == ["http_back"]
    back = config.backends["http_back"]
    assert (back.name, back.mode, back.balance) == ("http_back", "http", "roundrobin")
    assert back.servers == [
        Server(name="web1", host="10.111.0.21", port=80, check=True,
               where=Where(str(path), 30, 5)),
        Server(name="web2", host="10.111.0.22", port=80, check=True,
               where=Where(str(path), 31, 5)),
    ]
    web1 = back.servers[0]
    assert (web1.weight, web1.backup, web1.inter_ms, web1.rise, web1.fall, web1.maxconn,
            web1.cookie, web1.observe, web1.disabled) == \
        (1, False, 2000, 2, 3, 0, None, "none", False)
    assert back.timeouts == Timeouts(connect=5000, server=50_000)
    # httplog and dontlognull are frontend options.
    assert back.options == frozenset()
    assert back.logs == config.global_.logs
    assert (back.retries, back.cookie, back.httpchk, back.hash_type, back.tier) == \
        (3, None, None, "map-based", "l7")


def test_first_configuration_whole() -> None:
    config, path = load("first")
    assert config.files == [str(path)]
    assert config.userlists == {}
    [defaults] = config.defaults
    assert (defaults.name, defaults.mode) == (None, "http")
    assert defaults.timeouts == Timeouts(connect=5000, client=50_000, server=50_000)


def test_an_unresolvable_server_name_is_a_host_name() -> None:
    """The tutorial's 'private_IP' is a host name to pyxlb, resolved when it starts
    (HAProxy would fail to resolve it while checking)."""
    server = parse_text("backend b\n  server my_server private_IP:80 check\n",
                        env={}).backends["b"].servers[0]
    assert (server.host, server.port) == ("private_IP", 80)


def test_websocket_configuration_stats() -> None:
    config, path = load("websocket")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    assert list(config.frontends) == ["stats", "public"]
    assert list(config.backends) == ["stats", "www", "ws"]
    stats = config.frontends["stats"]
    assert stats.binds == [Bind(host=None, port=8080, where=at(32, 4))]
    assert stats.stats_uri == "/status"
    assert stats.stats == Stats(uri="/status", realm="Haproxy Statistics",
                                auth=(StatsUser(user="user", password="password"),),
                                hide_version=True, where=at(33, 4))
    assert stats.default_backend == "stats"  # a listen section is its own backend
    assert stats.backlog == 10_000  # from defaults


def test_websocket_configuration_public_frontend() -> None:
    config, path = load("websocket")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    public = config.frontends["public"]
    assert (public.maxconn, public.default_backend) == (10_000, "www")
    assert public.options == {"httplog", "http-server-close", "dontlognull", "forwardfor",
                              "contstats"}
    assert public.timeouts == Timeouts(client=35_000, http_keep_alive=1000, http_request=15_000,
                                       tarpit=60_000)
    is_websocket = Acl(name="is_websocket", where=at(42, 7), matches=(Match(
        criterion="hdr_end", fetch=Fetch(name="req.hdr", args=("host",), where=at(42, 20)),
        method="end", ignore_case=True, patterns=("ws.node-example.com",),
        where=at(42, 20)),))
    assert public.acls == {"is_websocket": is_websocket}
    assert public.use_backends == [UseBackendRule(
        backend="ws", where=at(43, 3), condition=Condition(
            polarity="if", where=at(43, 18),
            alternatives=((Term(acl=is_websocket, where=at(43, 21)),),)))]
    assert public.backends_used() == ["ws", "www"]


def test_websocket_configuration_backends() -> None:
    config, path = load("websocket")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    www = config.backends["www"]
    assert www.options == {"http-server-close", "forwardfor", "redispatch"}
    assert www.retries == 3
    assert www.timeouts == Timeouts(connect=5000, server=35_000, tunnel=3_600_000,
                                    http_keep_alive=1000, http_request=15_000, queue=30_000,
                                    tarpit=60_000, check=5000)
    assert www.httpchk == HttpCheck(method="GET", uri="/status?haproxy=1", where=at(48, 3))
    # default-server gives inter 3s; the server line's own options win.
    assert www.servers[0] == Server(name="www1", host="10.111.0.21", port=80, check=True,
                                    weight=10, inter_ms=10_000, rise=1, fall=3, maxconn=1000,
                                    cookie="websrv_www", where=at(50, 3))
    ws = config.backends["ws"]
    assert ws.cookie == Cookie(name="HAPROXY_COOKIE", mode="insert", indirect=True,
                               nocache=True, where=at(57, 3))
    # Repeated server options: the last one wins, as in HAProxy.
    assert [(s.name, s.port, s.cookie) for s in ws.servers] == \
        [("ws1", 8080, "ws1"), ("ws2", 8080, "ws2")]
    assert {b.tier for b in config.backends.values()} == {"l7"}


def test_backup_configuration() -> None:
    config, _ = load("backup")
    back = config.backends["webservice"]
    assert [(s.name, s.check, s.backup) for s in back.servers] == [
        ("service1", True, False), ("service2", True, False), ("service3", True, True),
        ("service4", True, True)]
    assert back.options == {"allbackups"}


def test_observe_configuration_is_served_by_the_kernel() -> None:
    config, _ = load("observe")
    back = config.backends["msql_databases"]
    db1, db2 = back.servers
    assert (db1.check, db1.fall, db1.inter_ms, db1.observe, db1.error_limit, db1.on_error) == \
        (True, 3, 120_000, "layer4", 1, "fail-check")
    assert (db2.check, db2.backup, db2.observe) == (True, True, "none")
    assert (back.mode, back.tier, config.frontends["mysql"].tier) == ("tcp", "kernel", "kernel")


def test_monitor_configuration_enables_stats_on_the_default_uri() -> None:
    config, path = load("monitor")
    front = config.frontends["http_front"]
    assert front.stats == Stats(where=Where(str(path), 16, 5))
    assert (front.stats_uri, front.stats.realm) == ("/haproxy?stats", "HAProxy Statistics")


def test_syslog_configuration() -> None:
    config, path = load("syslog")
    assert config.global_.logs == [LogTarget(kind="unix", target="/dev/log", facility="local0",
                                             max_level="info", where=Where(str(path), 5, 5))]
    front = config.frontends["http_front"]
    assert "log-separate-errors" in front.options
    assert front.logs == config.global_.logs


def test_redirect_configuration() -> None:
    config, path = load("redirect")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    front = config.frontends["mywebsite"]
    assert front.binds == [
        Bind(host=None, port=80, where=at(15, 1)),
        Bind(host=None, port=443, ssl=True, crt="mywebsite_cert.pem", where=at(16, 1)),
    ]
    # The anonymous ACL is where its braces are; the `!` is part of that word.
    ssl_fc = Acl(name="", where=at(17, 26), matches=(Match(
        criterion="ssl_fc", fetch=Fetch(name="ssl_fc", where=at(17, 29)), method="bool",
        where=at(17, 29)),))
    assert front.redirects == [RedirectRule(
        redirect=Redirect(kind="scheme", target="https"), where=at(17, 1),
        condition=Condition(polarity="if", where=at(17, 23),
                            alternatives=((Term(acl=ssl_fc, negate=True, where=at(17, 26)),),)))]
    assert front.default_backend == "webservers"


def test_basic_auth_configuration() -> None:
    config, path = load("basic_auth")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    assert config.userlists == {"TrustedPeople": Userlist(
        name="TrustedPeople", where=at(14, 1), groups={}, users={
            "bob": User(name="bob", password="password123", insecure=True, where=at(15, 1)),
            "alice": User(name="alice", password="anotherpassword", insecure=True,
                          where=at(16, 1)),
        })}
    front = config.frontends["mywebsite"]
    authorized = front.acls["authorized"]
    assert authorized.matches[0].fetch == Fetch(name="http_auth", args=("TrustedPeople",),
                                                where=at(20, 20))
    assert front.http_request == [HttpRequestRule(
        action=Auth(realm="Restricted"), where=at(21, 5),
        condition=Condition(polarity="unless", where=at(21, 40),
                            alternatives=((Term(acl=authorized, where=at(21, 47)),),)))]


def test_deny_abuser_configuration() -> None:
    config, path = load("deny_abuser")
    at = lambda line, col: Where(str(path), line, col)  # noqa: E731
    front = config.frontends["mywebsite"]
    assert front.stick_table == StickTable(
        type="ip", size=204_800, expire_ms=120_000, where=at(18, 1),
        store=(StoreItem(name="conn_rate", period_ms=3000), StoreItem(name="gpc0")))
    acls = front.acls
    assert [(name, m.fetch.name, m.fetch.args, m.method, m.patterns)
            for name, acl in acls.items() for m in acl.matches] == [
        ("conn_rate_abuse", "sc0_conn_rate", (), "int", (IntRange(61, None),)),
        ("flag_as_abuser", "sc0_inc_gpc0", (), "int", (IntRange(1, None),)),
        ("is_abuser", "src_get_gpc0", ("mywebsite",), "int", (IntRange(1, None),)),
    ]
    track, deny_abuser, deny_rate = front.http_request
    assert track == HttpRequestRule(action=TrackSc(
        counter=0, key=Fetch(name="src", where=at(22, 24)), table="mywebsite"), where=at(22, 1))
    assert deny_abuser.action == Deny(status=403)
    assert deny_abuser.condition is not None
    assert deny_abuser.condition.alternatives == ((Term(acl=acls["is_abuser"], where=at(23, 22)),),)
    # Two terms side by side: both must hold.
    assert deny_rate.condition is not None
    assert deny_rate.condition.alternatives == ((
        Term(acl=acls["conn_rate_abuse"], where=at(24, 22)),
        Term(acl=acls["flag_as_abuser"], where=at(24, 38)),
    ),)
    assert front.tier == "l7"


def test_whitelist_configuration() -> None:
    config, path = load("whitelist")
    front = config.frontends["mywebsite"]
    assert front.stick_table is not None
    assert front.stick_table.store == (StoreItem(name="http_err_rate", period_ms=5000),
                                       StoreItem(name="gpc0"))
    whitelisted = front.acls["whitelisted"].matches[0]
    assert (whitelisted.method, whitelisted.patterns) == \
        ("ip", (ip_network("10.111.0.0/24"), ip_network("192.168.0.0/16")))
    assert [type(rule.action) for rule in front.http_request] == [TrackSc, Allow, Deny, Deny]
    assert front.http_request[1].condition is not None
    assert front.http_request[1].condition.acls() == [front.acls["whitelisted"]]


def test_the_tutorial_files_parse_as_text_too() -> None:
    """parse_text and load_config agree (parse_text does not check certificates)."""
    for path in TUTORIAL:
        with open(path) as f:
            text = f.read()
        config = parse_text(text, str(path), env={})
        assert config == load_config([str(path)], env={})


def test_an_error_names_the_tutorial_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse_text("frontend f\n  bind :80\n  redirect scheme https if !{ ssl_fc\n", "t.cfg",
                   env={})
    assert str(info.value) == "t.cfg:3:28: missing closing '}' in the condition"
