"""`pyxlb up` refuses what it cannot enforce yet and warns about the rest."""

from __future__ import annotations

import pytest

from pyxlb.config import parse_text
from pyxlb.unserved import unserved

HEAD = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""


def findings(body: str) -> list[tuple[int, str, bool]]:
    config = parse_text(HEAD + body, "t.cfg", env={})
    return [(item.where.line, item.what, item.fatal) for item in unserved(config)]


def test_the_tutorial_basics_start_clean():
    found = findings("""
frontend fe
    bind *:80
    default_backend be
backend be
    server a 10.0.0.1:80 check
    server b 10.0.0.2:80
""")
    assert found == []


def test_http_rules_and_routing_are_served():
    assert findings("""
frontend fe
    bind *:80
    acl api path_beg /api
    http-request deny if api
    use_backend be if api
    default_backend be
backend be
    server a 10.0.0.1:80
""") == []


def test_stick_counters_in_a_frontends_http_rules_are_served_in_a_backends_not():
    found = findings("""
frontend fe
    bind *:80
    stick-table type ip size 200k expire 2m store conn_rate(3s),gpc0
    acl is_abuser src_get_gpc0 gt 0
    http-request track-sc0 src
    http-request deny if is_abuser
    default_backend be
backend be
    http-request deny if { src_get_gpc0(fe) gt 0 }
    server a 10.0.0.1:80
""")
    assert [(line, fatal) for line, _, fatal in found] == [(16, True)]
    assert "stick-table counters in http rules are not served yet" in found[0][1]


def test_a_kernel_tier_tcp_service_is_served():
    assert findings("""
listen db
    mode tcp
    balance roundrobin
    bind *:3306
    server db1 10.0.0.1:3306
""") == []


def test_a_tcp_service_the_kernel_cannot_take_is_refused():
    found = findings("""
listen db
    mode tcp
    bind *:3306 ssl crt /x.pem
    server db1 10.0.0.1:3306
""")
    assert found[0][2] and "mode tcp is served by the kernel tier only" in found[0][1]


@pytest.mark.parametrize("algorithm", ["roundrobin", "source", "leastconn", "first"])
def test_every_kernel_balance_is_served(algorithm):
    assert findings(f"""
listen db
    mode tcp
    balance {algorithm}
    bind *:3306
    server db1 10.0.0.1:3306 maxconn 10
""") == []


def test_udp_binds_and_dsr_need_the_kernel_tier():
    found = findings("""
frontend fe
    bind udp@*:53
    default_backend be
backend be
    pyxlb-forward dsr
    server a 10.0.0.1:53
""")
    assert found == [
        (9, "frontend fe: udp@ binds are served by the kernel tier only, which this frontend "
             "does not fit (mode tcp, kernel rules, a backend the kernel can balance)", True),
        (11, "backend be: 'pyxlb-forward dsr' is for layer-4 services served by the kernel "
             "tier (mode tcp, a kernel balance)", True),
    ]


def test_http_logging_is_served():
    assert findings("""
global
    log /dev/log local0
frontend fe
    log global
    option httplog
    bind *:80
    default_backend be
backend be
    log global
    server a 10.0.0.1:80
""") == []


def test_a_layer4_service_that_logs_is_warned_its_connections_are_not():
    found = findings("""
global
    log /dev/log local0
listen db
    mode tcp
    log global
    option tcplog
    bind *:3306
    server db1 10.0.0.1:3306
""")
    assert found == [(10, "frontend db: its connections are not logged: the kernel tier "
                      "forwards them without a socket, and its flow table keeps no accept "
                      "date, timers nor byte counts for a tcplog line", False)]


def test_the_stats_page_options_and_the_stats_socket_are_served():
    assert findings("""
global
    stats socket /run/pyxlb.sock mode 600 level admin
listen stats
    bind *:8404
    stats enable
    stats uri /
    stats auth admin:secret
    stats realm Haproxy\\ Statistics
    stats refresh 10s
    stats hide-version
    stats admin if TRUE
""") == []


def test_cookie_persistence_and_cookie_lifetimes_are_served():
    assert findings("""
frontend fe
    bind *:80
    default_backend be
backend be
    cookie SRV insert indirect nocache maxidle 30m maxlife 8h
    server a 10.0.0.1:80 cookie a
""") == []


def test_tls_binds_of_http_frontends_are_served():
    assert findings("""
frontend fe
    bind *:80
    bind *:443 ssl crt /etc/ssl/site.pem
    redirect scheme https if !{ ssl_fc }
    default_backend be
backend be
    server a 10.0.0.1:80
""") == []
