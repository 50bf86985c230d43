"""tcp-request connection rules compiled into what XDP enforces."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from pyxlb.config import parse_text
from pyxlb.kernel_rules import NotCompilable, compile_config

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
    assert plan.allow == [] and plan.block == []


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


def test_source_lists_become_allow_and_block_entries():
    plan = plan_for("""
    acl trusted src 10.111.0.10 fd00::/16
    tcp-request connection accept if trusted
    tcp-request connection reject if { src 192.0.2.0/24 }
""")
    assert plan.allow == [ip_network("10.111.0.10/32"), ip_network("fd00::/16")]
    assert plan.block == [ip_network("192.0.2.0/24")]


@pytest.mark.parametrize("rules, why", [
    ("    tcp-request connection reject if !{ src 10.0.0.0/8 }\n", "non-negated"),
    ("    tcp-request connection reject unless { src 10.0.0.0/8 }\n", "'unless'"),
    ("    tcp-request connection reject if { dst_port 80 }\n", "not a counter the kernel"),
    ("    stick-table type ip size 1k store conn_rate(1s)\n"
     "    tcp-request connection reject if { src_conn_rate gt 5 }\n", "nothing tracks"),
    ("    tcp-request connection reject if { src 10.0.0.0/8 }\n"
     "    tcp-request connection accept if { src 10.1.0.0/16 }\n", "accept after a reject"),
])
def test_other_shapes_are_refused_at_their_line(rules, why):
    with pytest.raises(NotCompilable, match=why) as err:
        plan_for(rules)
    assert str(err.value).startswith("t.cfg:")
