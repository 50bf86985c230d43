"""The runtime API's commands against real server state (HealthMonitor, Upstreams,
ServerAdmin built from a config, no network), with HAProxy 2.6.12's replies."""

from __future__ import annotations

import pytest

from pyxlb.config import parse_text
from pyxlb.config.model import StoreItem
from pyxlb.datapath.src_track import SrcEntry
from pyxlb.health.checker import HealthMonitor, check_targets
from pyxlb.l7.upstream import Upstreams
from pyxlb.runtime.admin import ServerAdmin
from pyxlb.runtime.commands import (
    ADMIN,
    OPERATOR,
    USER,
    CliSession,
    Table,
    entry_line,
    parse_weight,
    split_commands,
    uptime_text,
)
from pyxlb.runtime.process import ProcessRuntime
from pyxlb.stats.counters import StatsRegistry

CONFIG = """
global
    stats socket /run/pyxlb.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http_front
    bind *:80
    stick-table type ip size 200k expire 2m store conn_rate(3s),conn_cur,gpc0
    default_backend http_back
backend http_back
    balance roundrobin
    server web1 10.0.0.1:80 check fall 1
    server web2 10.0.0.2:80 weight 50
    server backup1 10.0.0.3:80 backup
backend static
    balance source
    server s1 10.0.0.4:80
    server s2 10.0.0.5:80 disabled
"""


class Process:
    """The daemon's parts, put together as `serve()` does, without listening."""

    def __init__(self) -> None:
        config = parse_text(CONFIG, "t.cfg", env={})
        self.registry = StatsRegistry.build(config.frontends, config.backends)
        self.admin: ServerAdmin | None = None

        def on_change(target, old, new, report) -> None:
            assert self.admin is not None
            self.admin.apply(target.backend, target.server.name)

        self.monitor = HealthMonitor(check_targets(config), on_change)
        self.upstreams = Upstreams(config.backends, self.registry)
        self.admin = ServerAdmin(config, self.monitor, self.upstreams)
        self.runtime = ProcessRuntime(config, self.registry, self.admin, None, None)
        self.admin.start()  # as the daemon does

    def session(self, level: int = ADMIN) -> CliSession:
        return CliSession(self.runtime, level)

    def ask(self, line: str, level: int = ADMIN) -> str:
        session = self.session(level)
        reply = session.feed(line.encode() + b"\n").decode()
        assert session.closed, "without `prompt`, one line ends the session"
        return reply

    def row(self, server: str, backend: str = "http_back") -> dict[str, str]:
        reply = self.ask("show stat")
        header, *rows = reply.splitlines()
        names = header.removeprefix("# ").split(",")
        for row in rows:
            cells = dict(zip(names, row.split(","), strict=False))
            if cells.get("pxname") == backend and cells["svname"] == server:
                return cells
        raise AssertionError(f"no row for {backend}/{server} in {reply!r}")

    def picks(self, n: int) -> list[str]:
        balancer = self.upstreams.backend("http_back").balancer
        return [balancer.pick().name for _ in range(n)]


@pytest.fixture
def proc() -> Process:
    return Process()


def test_every_reply_ends_with_an_empty_line(proc):
    assert proc.ask("disable server http_back/web1") == "\n"
    assert proc.ask("get weight http_back/web2") == "50 (initial 50)\n\n"
    assert proc.ask("show stat").endswith(",\n\n")


def test_errors_are_haproxys_texts(proc):
    assert proc.ask("get weight nope/web2") == "No such backend.\n\n"
    assert proc.ask("get weight http_back/nope") == "No such server.\n\n"
    assert proc.ask("enable server http_back") == "Require 'backend/server'.\n\n"
    assert proc.ask("set weight http_back/web2 300") == (
        "Absolute weight can only be between 0 and 256 inclusive.\n\n")
    assert proc.ask("set weight http_back/web1") == "Require <weight> or <weight%>.\n\n"
    # HAProxy's text has no newline of its own: the framing ends the line.
    assert proc.ask("set weight http_back/web1 abc") == (
        "Empty weight string empty or preceded by garbage\n")
    assert proc.ask("set server http_back/web1 state bogus") == (
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n")
    assert proc.ask("set server http_back/web1").startswith(
        "usage: set server <backend>/<server> addr | agent |")
    assert proc.ask("show table nope") == "No such table\n\n"
    assert proc.ask("clear table http_front key") == "Key value expected\n\n"


def test_an_unknown_command_lists_the_near_ones(proc):
    reply = proc.ask("show bogus")
    assert reply.startswith(
        "Unknown command, but maybe one of the following ones is a better match:\n")
    assert "  show stat [desc|json|no-maint|typed|up]*: report counters" in reply
    assert reply.endswith("  quit                                    : disconnect\n\n")
    assert proc.ask("bogus").startswith(
        "Unknown command. Please enter one of the following commands only:\n")


def test_levels_as_haproxy_checks_them(proc):
    assert proc.ask("disable server http_back/web1", OPERATOR) == "Permission denied\n\n"
    assert proc.ask("set weight http_back/web2 20", USER) == "Permission denied\n\n"
    assert proc.ask("clear table http_front key 10.0.0.9", USER) == "Permission denied\n\n"
    assert proc.ask("clear table http_front key 10.0.0.9", OPERATOR) == "\n"
    assert proc.ask("operator", USER) == "Permission denied\n\n"
    assert proc.ask("get weight http_back/web2", USER) == "50 (initial 50)\n\n"
    assert proc.ask("show cli level", OPERATOR) == "operator\n\n"
    assert proc.ask("user; show cli level; disable server http_back/web1") == (
        "\nuser\n\nPermission denied\n\n")
    assert proc.row("web1")["status"] == "UP"


def test_maint_and_ready_drive_the_pool_and_the_stats(proc):
    assert proc.row("web1")["status"] == "UP"
    proc.ask("set server http_back/web1 state maint")
    assert proc.row("web1")["status"] == "MAINT"
    assert set(proc.picks(10)) == {"web2"}
    proc.ask("set server http_back/web1 state ready")
    assert proc.row("web1")["status"] == "UP"
    assert "web1" in proc.picks(60)


def test_disable_and_enable_server(proc):
    proc.ask("disable server http_back/web2")
    assert proc.row("web2")["status"] == "MAINT"
    assert set(proc.picks(5)) == {"web1"}
    proc.ask("enable server http_back/web2")
    assert proc.row("web2")["status"] == "no check"


def test_drain_takes_new_traffic_away_and_backups_take_over(proc):
    proc.ask("set server http_back/web2 state drain")
    assert proc.row("web2")["status"] == "DRAIN"
    proc.ask("set server http_back/web1 state drain")
    assert set(proc.picks(4)) == {"backup1"}
    # `enable server` leaves maintenance only: a drained server stays drained.
    proc.ask("enable server http_back/web1")
    assert proc.row("web1")["status"] == "DRAIN"
    proc.ask("set server http_back/web1 state ready")
    assert set(proc.picks(4)) == {"web1"}


def test_set_weight_absolute_relative_and_static(proc):
    assert proc.ask("set weight http_back/web2 20%") == "\n"
    assert proc.ask("get weight http_back/web2") == "10 (initial 50)\n\n"
    assert proc.row("web2")["weight"] == "10"
    proc.ask("set server http_back/web2 weight 0")
    assert set(proc.picks(5)) == {"web1"}
    assert proc.ask("set weight static/s1 7") == (
        "Backend is using a static LB algorithm and only accepts weights '0%' and "
        "'100%'.\n\n")
    assert proc.ask("set weight static/s1 100%") == "\n"


def test_parse_weight_like_haproxy():
    assert parse_weight("20%", 50) == 10
    assert parse_weight("1000%", 50) == 256
    assert parse_weight("0", 50) == 0
    with pytest.raises(Exception, match="Trailing garbage"):
        parse_weight("5x", 50)
    with pytest.raises(Exception, match="Relative weight must be positive"):
        parse_weight("-5%", 50)


def test_interactive_mode_as_hatop_uses_it(proc):
    session = proc.session()
    assert session.feed(b"prompt\n") == b"\n> "
    assert session.feed(b"set timeout cli 60\n") == b"\n> "
    reply = session.feed(b"show info\n").decode()
    assert reply.startswith("Name: pyxlb\nVersion: ")
    assert reply.endswith("Tainted: 0\n\n> ")
    # A command split across reads runs once its line is complete.
    assert session.feed(b"get weight http_") == b""
    assert session.feed(b"back/web1\n") == b"1 (initial 1)\n\n> "
    assert not session.closed
    assert session.feed(b"quit\n") == b""
    assert session.closed


def test_a_line_without_newline_runs_at_eof(proc):
    session = proc.session()
    assert session.feed(b"get weight http_back/web1") == b""
    assert session.eof() == b"1 (initial 1)\n\n"


def test_show_info_has_what_hatop_reads(proc):
    reply = proc.ask("show info")
    keys = [line.split(":", 1)[0] for line in reply.splitlines() if line]
    for key in ("Name", "Version", "Release_date", "Nbproc", "Process_num", "Pid", "Uptime",
                "Maxconn", "CurrConns", "Maxpipes", "PipesUsed", "Tasks", "Run_queue", "node"):
        assert key in keys
    assert uptime_text(3723) == "0d 1h02m03s"


def test_show_stat_filters_by_proxy_type_and_server(proc):
    lines = proc.ask("show stat 2 4 -1").splitlines()
    assert [line.split(",")[1] for line in lines[1:] if line] == ["web1", "web2", "backup1"]
    lines = proc.ask("show stat -1 1 -1").splitlines()
    assert [line.split(",")[1] for line in lines[1:] if line] == ["FRONTEND"]


def test_show_table_lists_the_tables(proc):
    assert proc.ask("show table") == (
        "# table: http_front, type: ip, size:204800, used:0\n\n")
    assert proc.ask("show table http_front") == (
        "# table: http_front, type: ip, size:204800, used:0\n\n")


def test_a_table_entry_in_haproxys_line_format():
    entry = SrcEntry(src="10.0.0.9", expire_in_ms=119996, conn_cnt=3, conn_cur=0,
                     http_req_cnt=2, http_err_cnt=0, gpc0=0, conn_rate=1,
                     http_req_rate=2, http_err_rate=0, gpc0_rate=None, counters={})
    store = (StoreItem(name="conn_rate", period_ms=3000), StoreItem(name="conn_cur"),
             StoreItem(name="gpc0"), StoreItem(name="http_req_rate", period_ms=10000),
             StoreItem(name="http_err_rate", period_ms=10000))
    line = entry_line(entry, store)
    # Data in HAProxy's order (gpc0 before conn_rate), whatever the config's order.
    assert line.split(": ", 1)[1] == (
        "key=10.0.0.9 use=0 exp=119996 gpc0=0 conn_rate(3000)=1 conn_cur=0 "
        "http_req_rate(10000)=2 http_err_rate(10000)=0\n")
    assert line.startswith("0x")
    table = Table("fe", "ip", 10, store, [entry])
    assert len(table.entries) == 1


def test_split_commands_honours_escapes():
    assert split_commands(r"show info;show  stat 1\ 2;") == [
        ["show", "info"], ["show", "stat", "1 2"], []]


def test_a_line_longer_than_the_buffer_ends_the_session(proc):
    session = proc.session()
    assert session.feed(b"show " + b"x" * 20000) == b""
    assert session.closed


def test_a_disabled_server_starts_in_maintenance_and_takes_nothing(proc):
    assert proc.row("s2", "static")["status"] == "MAINT"
    balancer = proc.upstreams.backend("static").balancer
    assert {balancer.pick(key=str(n).encode()).name for n in range(50)} == {"s1"}
    assert proc.ask("enable server static/s2") == "\n"
    assert proc.row("s2", "static")["status"] == "no check"


def test_show_stat_has_the_check_columns_the_commands_move(proc):
    proc.ask("disable server http_back/web1")
    web1 = proc.row("web1")
    # Paused checks show their counters only; the change just happened.
    assert (web1["chkdown"], web1["chkfail"], web1["check_status"], web1["lastchg"]) == (
        "1", "0", "", "0")
    proc.ask("enable server http_back/web1")
    web1 = proc.row("web1")
    assert (web1["check_status"], web1["check_rise"], web1["check_fall"]) == ("INI", "2", "1")
    web2 = proc.row("web2")  # no checks: when it changed, nothing more
    assert (web2["lastchg"] != "", web2["chkdown"], web2["downtime"]) == (True, "", "")
