"""The Prometheus text of the counters, in HAProxy 2.6's exporter format."""

from __future__ import annotations

from types import SimpleNamespace

from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.prometheus import render_metrics, server_state


def registry() -> StatsRegistry:
    fe = SimpleNamespace(name="http_front", mode="http")
    be = SimpleNamespace(name="http_back", mode="http", servers=[
        SimpleNamespace(name="web1", weight=1, backup=False),
        SimpleNamespace(name="web2", weight=50, backup=False),
        SimpleNamespace(name="backup1", weight=1, backup=True),
    ])
    return StatsRegistry.build([fe], [be], order=["http_front", "http_back"])


def test_names_help_and_labels_as_haproxy_writes_them():
    reg = registry()
    reg.frontend("http_front").requests = 2
    reg.backend("http_back").server("web2").requests = 2
    reg.backend("http_back").server("web1").status = "MAINT"
    text = render_metrics(reg)
    # Lines as HAProxy 2.6.12 wrote them for the same counters.
    for line in (
        "# HELP haproxy_frontend_http_requests_total Total number of HTTP requests processed "
        "by this object since the worker process started",
        "# TYPE haproxy_frontend_http_requests_total counter",
        'haproxy_frontend_http_requests_total{proxy="http_front"} 2',
        'haproxy_frontend_status{proxy="http_front",state="UP"} 1',
        'haproxy_backend_status{proxy="http_back",state="UP"} 1',
        'haproxy_backend_active_servers{proxy="http_back"} 1',
        'haproxy_server_loadbalanced_total{proxy="http_back",server="web2"} 2',
        'haproxy_server_status{proxy="http_back",server="web1",state="MAINT"} 1',
        'haproxy_server_status{proxy="http_back",server="web1",state="UP"} 0',
        'haproxy_server_weight{proxy="http_back",server="web2"} 50',
    ):
        assert line + "\n" in text, line
    # HAProxy's order: frontends, backends, servers; each metric's HELP once.
    assert text.index("haproxy_frontend_") < text.index("haproxy_backend_") \
        < text.index("haproxy_server_")
    assert text.count("# HELP haproxy_server_status ") == 1
    assert text.endswith("\n")


def test_status_words_map_to_haproxys_states():
    assert server_state("UP 1/3") == "UP"
    assert server_state("no check") == "UP"
    assert server_state("DOWN 1/2") == "DOWN"
    assert server_state("DRAIN") == "DRAIN"


# The metric names HAProxy 2.6.12's exporter wrote, in its order, captured in the
# lab (those pyxlb writes must come in the same order).
HAPROXY_ORDER = tuple(" ".join((
    "frontend_current_sessions frontend_max_sessions frontend_limit_sessions "
    "frontend_sessions_total frontend_bytes_in_total frontend_bytes_out_total "
    "frontend_requests_denied_total frontend_responses_denied_total "
    "frontend_request_errors_total frontend_status frontend_limit_session_rate "
    "frontend_max_session_rate frontend_http_responses_total frontend_http_requests_rate_max "
    "frontend_http_requests_total frontend_http_comp_bytes_in_total "
    "frontend_http_comp_bytes_out_total frontend_http_comp_bytes_bypassed_total "
    "frontend_http_comp_responses_total frontend_connections_rate_max "
    "frontend_connections_total frontend_intercepted_requests_total "
    "backend_current_queue backend_max_queue backend_current_sessions backend_max_sessions "
    "backend_limit_sessions backend_sessions_total backend_bytes_in_total "
    "backend_bytes_out_total backend_requests_denied_total backend_responses_denied_total "
    "backend_connection_errors_total backend_response_errors_total "
    "backend_retry_warnings_total backend_redispatch_warnings_total backend_status "
    "backend_weight backend_active_servers backend_backup_servers "
    "backend_check_up_down_total backend_check_last_change_seconds "
    "backend_downtime_seconds_total backend_loadbalanced_total backend_max_session_rate "
    "backend_http_responses_total backend_http_requests_total backend_client_aborts_total "
    "backend_server_aborts_total backend_last_session_seconds "
    "backend_failed_header_rewriting_total backend_connection_attempts_total "
    "backend_connection_reuses_total "
    "server_current_queue server_max_queue server_current_sessions server_max_sessions "
    "server_limit_sessions server_sessions_total server_bytes_in_total "
    "server_bytes_out_total server_responses_denied_total server_connection_errors_total "
    "server_response_errors_total server_retry_warnings_total "
    "server_redispatch_warnings_total server_status server_weight "
    "server_check_failures_total server_check_up_down_total "
    "server_check_last_change_seconds server_downtime_seconds_total server_queue_limit "
    "server_current_throttle server_loadbalanced_total server_max_session_rate "
    "server_http_responses_total server_client_aborts_total server_server_aborts_total "
    "server_last_session_seconds server_connection_attempts_total "
    "server_connection_reuses_total",
)).split())


def test_metrics_come_in_haproxys_order():
    names = [line.split()[2].removeprefix("haproxy_")
             for line in render_metrics(registry()).splitlines() if line.startswith("# HELP")]
    assert set(names) <= set(HAPROXY_ORDER), set(names) - set(HAPROXY_ORDER)
    assert names == sorted(names, key=HAPROXY_ORDER.index)


def test_bytes_sessions_and_responses_by_code():
    reg = registry()
    fe = reg.frontend("http_front")
    fe.bytes_in, fe.bytes_out, fe.current, fe.peak, fe.denied = 715, 4760, 1, 2, 3
    fe.hrsp[2], fe.hrsp[4] = 9, 1
    web2 = reg.backend("http_back").server("web2")
    web2.bytes_in, web2.bytes_out, web2.connects, web2.reuses = 660, 1504, 8, 2
    web2.hrsp[2] = 8
    reg.backend("http_back").bytes_in = 660
    text = render_metrics(reg)
    for line in (
        "# HELP haproxy_frontend_bytes_in_total Total number of request bytes since process "
        "started",
        'haproxy_frontend_bytes_in_total{proxy="http_front"} 715',
        'haproxy_frontend_bytes_out_total{proxy="http_front"} 4760',
        'haproxy_frontend_current_sessions{proxy="http_front"} 1',
        'haproxy_frontend_max_sessions{proxy="http_front"} 2',
        'haproxy_frontend_requests_denied_total{proxy="http_front"} 3',
        'haproxy_frontend_http_responses_total{proxy="http_front",code="2xx"} 9',
        'haproxy_frontend_http_responses_total{proxy="http_front",code="4xx"} 1',
        'haproxy_frontend_http_responses_total{proxy="http_front",code="other"} 0',
        'haproxy_backend_bytes_in_total{proxy="http_back"} 660',
        'haproxy_backend_connection_attempts_total{proxy="http_back"} 8',
        'haproxy_server_bytes_out_total{proxy="http_back",server="web2"} 1504',
        'haproxy_server_http_responses_total{proxy="http_back",server="web2",code="2xx"} 8',
        'haproxy_server_connection_reuses_total{proxy="http_back",server="web2"} 2',
    ):
        assert line + "\n" in text, line
    # As HAProxy: every code for every object, codes outermost.
    codes = [line.rpartition('code="')[2][:3] for line in text.splitlines()
             if line.startswith("haproxy_frontend_http_responses_total{")]
    assert codes == ["1xx", "2xx", "3xx", "4xx", "5xx", "oth"]
