"""tcp-request connection rules compiled into what XDP enforces."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from pyxlb.config import parse_text
from pyxlb.datapath.src_rules import Entry, SrcRule, fold
from pyxlb.kernel_rules import NotCompilable, NotServable, compile_config, kernel_services

HEAD = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
backend be
    server a 10.0.0.1:80
frontend fe
    bind *:80
    default_backend be
"""


def plan_for(rules: str):
    return compile_config(parse_text(HEAD + rules, "t.cfg", env={}))


def test_no_rules_compile_to_nothing():
    plan = plan_for("")
    assert plan.table is None and not plan.params.count_syns
    assert plan.src_rules == [] and not plan.params.src_rules


def test_conn_rate_abuser_rules_become_thresholds():
    plan = plan_for("""
    stick-table type ip size 200k expire 2m store conn_rate(3s),gpc0
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc0_conn_rate gt 60 } || { src_get_gpc0 gt 0 }
""")
    p = plan.params
    assert plan.table.size == 204800
    assert (p.count_syns, p.expire_ms, p.conn_rate_period) == (True, 120000, 3000)
    assert (p.conn_rate_gt, p.gpc0_gt, p.http_err_rate_gt) == (60, 0, None)


def test_ge_is_gt_minus_one():
    plan = plan_for("""
    stick-table type ip size 1k expire 10s store conn_rate(10s)
    tcp-request connection track-sc0 src
    tcp-request connection reject if { src_conn_rate ge 20 }
""")
    assert plan.params.conn_rate_gt == 19


def test_source_lists_become_the_frontends_src_rules_in_order():
    plan = plan_for("""
    acl trusted src 10.111.0.10 fd00::/16
    tcp-request connection accept if trusted
    tcp-request connection reject if { src 192.0.2.0/24 } || { src 10.111.0.0/16 }
    tcp-request connection silent-drop if { src 198.51.100.0/24 }
""")
    assert plan.src_rules == [
        SrcRule(0, (ip_network("10.111.0.10/32"), ip_network("fd00::/16")), "accept"),
        SrcRule(0, (ip_network("192.0.2.0/24"), ip_network("10.111.0.0/16")), "reject"),
        SrcRule(0, (ip_network("198.51.100.0/24"),), "silent_drop"),
    ]
    assert plan.params.src_rules and plan.params.tracked_ports_only
    assert not plan.params.count_syns  # nothing tracks: nothing is counted
    assert fold(plan.src_rules) == {
        ip_network("10.111.0.10/32"): Entry(accept=1),
        ip_network("fd00::/16"): Entry(accept=1),
        ip_network("192.0.2.0/24"): Entry(reject=1),
        ip_network("10.111.0.0/16"): Entry(reject=1),
        ip_network("198.51.100.0/24"): Entry(silent_drop=1),
    }


def test_the_first_matching_rule_decides_even_when_a_later_one_is_narrower():
    plan = plan_for("""
    tcp-request connection reject if { src 10.0.0.0/8 }
    tcp-request connection accept if { src 10.1.0.0/16 }
    tcp-request connection silent-drop if { src 10.1.2.0/24 }
""")
    # Sources in 10.1.2.0/24 match all three: the first, a reject, wins.
    assert fold(plan.src_rules) == {ip_network("10.0.0.0/8"): Entry(reject=1),
                                    ip_network("10.1.0.0/16"): Entry(reject=1),
                                    ip_network("10.1.2.0/24"): Entry(reject=1)}


def test_each_frontend_keeps_its_own_src_rules():
    config = parse_text(HEAD + """
    tcp-request connection accept if { src 10.1.0.0/16 }
    tcp-request connection reject if { src 10.0.0.0/8 }
frontend untracked
    bind :8000
    default_backend be
frontend admin
    bind 10.0.0.2:81
    stick-table type ip size 1k expire 10s store conn_rate(10s)
    tcp-request connection track-sc0 src
    tcp-request connection silent-drop if { src 10.1.0.0/16 }
    tcp-request connection reject if { sc0_conn_rate gt 10 }
    default_backend be
""", "t.cfg", env={})
    plan = compile_config(config)
    # web's accept of 10.1/16 spares nobody admin's silent-drop, which admin
    # runs once the SYN is counted.
    assert fold(plan.src_rules) == {
        ip_network("10.1.0.0/16"): Entry(accept=0b01, silent_drop=0b10, after_track=0b10),
        ip_network("10.0.0.0/8"): Entry(reject=0b01),
    }
    assert plan.params.count_syns and plan.params.reject_with_rst
    assert plan.params.src_rules and plan.params.track_frontend == 1


def test_the_tracking_frontends_thresholds_are_its_own():
    config = parse_text(HEAD.replace("""frontend fe
    bind *:80
""", """frontend fe
    bind *:80
    stick-table type ip size 1k expire 10s store conn_rate(10s)
    tcp-request connection track-sc0 src
    tcp-request connection silent-drop if { sc0_conn_rate gt 10 }
""") + """
frontend other
    bind :81
    tcp-request connection reject if { src 10.0.0.0/8 }
    default_backend be
frontend reads
    bind :82
    tcp-request connection reject if { src_conn_rate(fe) gt 3 }
    default_backend be
""", "t.cfg", env={})
    with pytest.raises(NotCompilable, match="t.cfg:.*does not track them"):
        compile_config(config)
    del config.frontends["reads"]
    p = compile_config(config).params
    # A later frontend's rules leave the tracker's thresholds as they were.
    assert (p.count_syns, p.conn_rate_gt, p.reject_with_rst, p.track_frontend) == (
        True, 10, False, 0)


@pytest.mark.parametrize("rules, why", [
    ("    tcp-request connection reject if !{ src 10.0.0.0/8 }\n", "non-negated"),
    ("    tcp-request connection reject unless { src 10.0.0.0/8 }\n", "'unless'"),
    ("    tcp-request connection reject if { dst_port 80 }\n", "not a counter the kernel"),
    ("    stick-table type ip size 1k store conn_rate(1s)\n"
     "    tcp-request connection reject if { src_conn_rate gt 5 }\n", "does not track them"),
    ("    stick-table type ip size 1k store conn_rate(1s)\n"
     "    tcp-request connection track-sc0 src\n"
     "    tcp-request connection reject if { src_conn_rate gt 5 }\n"
     "    tcp-request connection accept if { src 10.1.0.0/16 }\n", "accept after a counter"),
    ("    stick-table type ip size 1k store conn_rate(1s)\n"
     "    tcp-request connection track-sc0 src\n"
     "    tcp-request connection reject if { src_conn_rate gt 5 }\n"
     "    tcp-request connection silent-drop if { src 10.1.0.0/16 }\n", "use the same one"),
    ("    tcp-request connection accept if { src 10.1.0.0/16 } || { dst_port 80 }\n",
     "not a source-address match"),
])
def test_other_shapes_are_refused_at_their_line(rules, why):
    with pytest.raises(NotCompilable, match=why) as err:
        plan_for(rules)
    assert str(err.value).startswith("t.cfg:")


def test_only_frontends_with_rules_are_tracked_and_only_their_ports_count():
    config = parse_text(HEAD + """
    tcp-request connection reject if { src 192.0.2.0/24 }
frontend other
    bind 10.0.0.9:8080
    default_backend be
frontend ruled
    bind 10.0.0.2:81
    bind :82
    tcp-request connection reject if { src 198.51.100.0/24 }
    default_backend be
""", "t.cfg", env={})
    plan = compile_config(config)
    assert plan.params.tracked_ports_only
    # Numbered among the tracked frontends: their bits in src_rules.
    assert [(b.addr, b.port, b.frontend) for b in plan.tracked] == [
        (None, 80, 0), ("10.0.0.2", 81, 1), (None, 82, 1)]


def test_two_ruled_frontends_on_one_port_are_refused():
    with pytest.raises(NotCompilable, match="binds the same address and port"):
        compile_config(parse_text(HEAD + """
    tcp-request connection reject if { src 192.0.2.0/24 }
frontend again
    bind *:80
    tcp-request connection reject if { src 198.51.100.0/24 }
    default_backend be
""", "t.cfg", env={}))


def test_without_rules_no_port_is_tracked():
    plan = plan_for("")
    assert plan.tracked == [] and plan.params.tracked_ports_only


L4 = """
listen tcp_echo
    mode tcp
    balance roundrobin
    bind *:9000
    server a 10.0.0.1:9000 weight 2
    server b 10.0.0.2
    server c 10.0.0.3:9000 backup
    server d 10.0.0.4:9000 backup
"""


def services_for(body: str, down: set[str] = frozenset(), addresses=None):
    config = parse_text(HEAD + body, "t.cfg", env={})
    return kernel_services(config, addresses or {4: "10.0.0.100", 6: "fd00::100"},
                           lambda backend, server: server.name not in down)


def states(service):
    return [(b.addr, b.port, b.weight, b.state) for b in service.backends]


def test_a_mode_tcp_listen_becomes_a_service_on_the_interface_address():
    (svc,) = services_for(L4)
    assert (svc.vip, svc.port, svc.snat, svc.algorithm) == ("10.0.0.100", 9000, "10.0.0.100",
                                                            "roundrobin")
    # No port: the one the client connected to, as in HAProxy.
    assert states(svc) == [("10.0.0.1", 9000, 2, "up"), ("10.0.0.2", 9000, 1, "up"),
                           ("10.0.0.3", 9000, 1, "down"), ("10.0.0.4", 9000, 1, "down")]


def test_backups_take_new_flows_only_when_every_active_server_is_down():
    (svc,) = services_for(L4, down={"a"})
    assert [b.state for b in svc.backends] == ["down", "up", "down", "down"]
    (svc,) = services_for(L4, down={"a", "b"})
    assert [b.state for b in svc.backends] == ["down", "down", "up", "down"]
    (svc,) = services_for(L4, down={"a", "b", "c"})
    assert [b.state for b in svc.backends] == ["down", "down", "down", "up"]
    (svc,) = services_for(L4.replace("balance roundrobin",
                                     "balance roundrobin\n    option allbackups"),
                          down={"a", "b"})
    assert [b.state for b in svc.backends] == ["down", "down", "up", "up"]


def test_an_explicit_bind_address_is_the_vip_and_source_hashing_is_maglev():
    (svc,) = services_for(L4.replace("*:9000", "10.0.0.7:9000").replace("roundrobin", "source"))
    assert (svc.vip, svc.snat, svc.algorithm) == ("10.0.0.7", "10.0.0.100", "maglev")


def test_http_frontends_are_not_services():
    assert services_for("") == []


def test_udp_binds_and_dsr_make_udp_and_dsr_services():
    (svc,) = services_for(L4.replace("bind *:9000", "bind udp@*:9000\n    pyxlb-forward dsr"))
    assert (svc.proto, svc.forward, svc.port) == ("udp", "dsr", 9000)
    assert [b.port for b in svc.backends] == [9000] * 4


def test_dsr_refuses_a_server_on_another_port_at_its_line():
    with pytest.raises(NotServable, match=r"t.cfg:\d+: server a: with 'pyxlb-forward dsr' a "
                                          r"server must listen on the bind's port 9000"):
        services_for(L4.replace("10.0.0.1:9000", "10.0.0.1:9001")
                     .replace("bind *:9000", "bind *:9000\n    pyxlb-forward dsr"))


def test_connection_rules_on_a_udp_bind_are_refused():
    with pytest.raises(NotCompilable, match="act on TCP connections, not on udp@ binds"):
        compile_config(parse_text(HEAD + L4.replace("bind *:9000", "bind udp@*:9000\n"
                                                    "    tcp-request connection reject if "
                                                    "{ src 10.9.9.9 }"), "t.cfg", env={}))


def test_reject_answers_with_a_rst_and_silent_drop_drops():
    rules = """
    stick-table type ip size 1k expire 10s store conn_rate(10s)
    tcp-request connection track-sc0 src
    tcp-request connection {action} if {{ sc0_conn_rate gt 5 }}
"""
    assert plan_for(rules.format(action="reject")).params.reject_with_rst
    assert not plan_for(rules.format(action="silent-drop")).params.reject_with_rst


def test_reject_and_silent_drop_together_are_refused():
    with pytest.raises(NotCompilable, match="'reject' .* and 'silent-drop' .* are not compiled"):
        plan_for("""
    stick-table type ip size 1k expire 10s store conn_rate(10s),gpc0
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc0_conn_rate gt 5 }
    tcp-request connection silent-drop if { sc0_get_gpc0 gt 0 }
""")


def test_flows_live_as_long_as_the_proxys_timeouts_say():
    (svc,) = services_for(L4)  # HEAD: connect 5s, client 30s, server 30s
    assert (svc.timeouts.tcp, svc.timeouts.udp, svc.timeouts.connect) == (30.0, 30.0, 5.0)
    assert svc.timeouts.tcp_closing == 30.0 and svc.timeouts.tcp_closed == 10.0
    (svc,) = services_for(L4.replace("balance roundrobin",
                                     "balance roundrobin\n    timeout tunnel 1h"))
    assert svc.timeouts.tcp == 3600.0


TUTORIAL_ABUSERS = """
frontend web
    bind *:8080
    default_backend be
    stick-table type ip size 200k expire 2m store conn_rate(3s),gpc0
    acl conn_rate_abuse sc0_conn_rate gt 60
    acl flag_as_abuser sc0_inc_gpc0 gt 0
    acl is_abuser src_get_gpc0 gt 0
    http-request track-sc0 src
    http-request deny if is_abuser
    http-request deny if conn_rate_abuse flag_as_abuser
"""


def test_stick_counters_in_http_rules_put_the_frontends_table_in_the_kernel():
    plan = plan_for(TUTORIAL_ABUSERS)
    assert plan.table.size == 204800
    p = plan.params
    assert (p.count_syns, p.conn_rate_period, p.expire_ms) == (False, 3000, 120000)


@pytest.mark.parametrize("change, why", [
    ("http-request track-sc0 src", "http-request track-sc1 src"),
    ("src_get_gpc0 gt 0", "sc1_get_gpc0 gt 0"),
    ("type ip size", "type string len 32 size"),
])
def test_stick_shapes_l7_cannot_serve_are_refused_at_their_rule(change, why):
    with pytest.raises(NotCompilable):
        plan_for(TUTORIAL_ABUSERS.replace(change, why))
