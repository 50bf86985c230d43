"""The Prometheus text of the counters, in HAProxy 2.6's exporter format."""

from __future__ import annotations

from types import SimpleNamespace

from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.prometheus import CHECK_STATES, LEFT_OUT, render_metrics, server_state


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


# The metric names HAProxy 2.6.12's exporter wrote (frontends, backends,
# servers), in its order, captured in the lab on lab_registry()'s proxies.
HAPROXY_ORDER = tuple(" ".join((
    "frontend_current_sessions frontend_max_sessions frontend_limit_sessions "
    "frontend_sessions_total frontend_bytes_in_total frontend_bytes_out_total "
    "frontend_requests_denied_total frontend_responses_denied_total "
    "frontend_request_errors_total frontend_status frontend_limit_session_rate "
    "frontend_max_session_rate frontend_http_responses_total "
    "frontend_http_requests_rate_max frontend_http_requests_total "
    "frontend_http_comp_bytes_in_total frontend_http_comp_bytes_out_total "
    "frontend_http_comp_bytes_bypassed_total frontend_http_comp_responses_total "
    "frontend_connections_rate_max frontend_connections_total "
    "frontend_intercepted_requests_total frontend_denied_connections_total "
    "frontend_denied_sessions_total frontend_failed_header_rewriting_total "
    "frontend_http_cache_lookups_total frontend_http_cache_hits_total "
    "frontend_internal_errors_total backend_current_queue backend_max_queue "
    "backend_current_sessions backend_max_sessions backend_limit_sessions "
    "backend_sessions_total backend_bytes_in_total backend_bytes_out_total "
    "backend_requests_denied_total backend_responses_denied_total "
    "backend_connection_errors_total backend_response_errors_total "
    "backend_retry_warnings_total backend_redispatch_warnings_total backend_status "
    "backend_weight backend_active_servers backend_backup_servers "
    "backend_check_up_down_total backend_check_last_change_seconds "
    "backend_downtime_seconds_total backend_loadbalanced_total backend_max_session_rate "
    "backend_http_responses_total backend_http_requests_total "
    "backend_client_aborts_total backend_server_aborts_total "
    "backend_http_comp_bytes_in_total backend_http_comp_bytes_out_total "
    "backend_http_comp_bytes_bypassed_total backend_http_comp_responses_total "
    "backend_last_session_seconds backend_queue_time_average_seconds "
    "backend_connect_time_average_seconds backend_response_time_average_seconds "
    "backend_total_time_average_seconds backend_failed_header_rewriting_total "
    "backend_connection_attempts_total backend_connection_reuses_total "
    "backend_http_cache_lookups_total backend_http_cache_hits_total "
    "backend_max_queue_time_seconds backend_max_connect_time_seconds "
    "backend_max_response_time_seconds backend_max_total_time_seconds "
    "backend_internal_errors_total backend_uweight backend_agg_server_status "
    "backend_agg_server_check_status backend_agg_check_status server_current_queue "
    "server_max_queue server_current_sessions server_max_sessions server_limit_sessions "
    "server_sessions_total server_bytes_in_total server_bytes_out_total "
    "server_responses_denied_total server_connection_errors_total "
    "server_response_errors_total server_retry_warnings_total "
    "server_redispatch_warnings_total server_status server_weight "
    "server_check_failures_total server_check_up_down_total "
    "server_check_last_change_seconds server_downtime_seconds_total server_queue_limit "
    "server_current_throttle server_loadbalanced_total server_max_session_rate "
    "server_check_status server_check_code server_check_duration_seconds "
    "server_http_responses_total server_client_aborts_total server_server_aborts_total "
    "server_last_session_seconds server_queue_time_average_seconds "
    "server_connect_time_average_seconds server_response_time_average_seconds "
    "server_total_time_average_seconds server_failed_header_rewriting_total "
    "server_connection_attempts_total server_connection_reuses_total "
    "server_idle_connections_current server_idle_connections_limit "
    "server_max_queue_time_seconds server_max_connect_time_seconds "
    "server_max_response_time_seconds server_max_total_time_seconds "
    "server_internal_errors_total server_unsafe_idle_connections_current "
    "server_safe_idle_connections_current server_used_connections_current "
    "server_need_connections_current server_uweight",
)).split())



def lab_registry() -> StatsRegistry:
    """The proxies of the lab config the lines below were captured on: a
    frontend with maxconn 100; a backend with `option httpchk`, web1 checked
    (maxqueue 5), web2 without checks, backup1 checked; a backend `l4` with a
    layer 4 check; a `listen stats`. Counters as HAProxy's were then."""
    servers = [SimpleNamespace(name="web1", weight=1, backup=False, check=True, maxqueue=5),
               SimpleNamespace(name="web2", weight=1, backup=False),
               SimpleNamespace(name="backup1", weight=1, backup=True, check=True)]
    fes = [SimpleNamespace(name="http_front", mode="http", maxconn=100),
           SimpleNamespace(name="stats", mode="http")]
    bes = [SimpleNamespace(name="http_back", mode="http", servers=servers),
           SimpleNamespace(name="l4", mode="http", servers=[
               SimpleNamespace(name="ok", weight=1, backup=False, check=True)]),
           SimpleNamespace(name="stats", mode="http", servers=[])]
    reg = StatsRegistry.build(fes, bes, order=["http_front", "http_back", "l4", "stats"])
    reg.now = 1000.5
    fe = reg.frontend("http_front")
    fe.connections, fe.requests, fe.bytes_in, fe.bytes_out, fe.denied = 7, 7, 500, 1132, 1
    fe.hrsp[2], fe.hrsp[4] = 5, 2
    fe.rate.top = fe.req_rate.top = fe.conn_rate.top = 6
    reg.frontend("stats").intercepted = 1
    for be in reg.backend("http_back"), reg.backend("l4"):
        be.queue = SimpleNamespace(length=0, peak=0)
        be.clock.last_change = 999
        for srv in be.servers:
            srv.queue = SimpleNamespace(length=0, peak=0)
            srv.clock.last_change = 999
            srv.status = "UP" if srv.checked else "no check"
    reg.backend("stats").clock.last_change = 999
    be = reg.backend("http_back")
    be.requests, be.last_session, be.rate.top = 5, 1000, 5
    be.response_time.total = be.total_time.total = 5
    be.response_time.top = be.total_time.top = 1
    for name, served in (("web1", 3), ("web2", 2)):
        srv = be.server(name)
        srv.requests = srv.connects = srv.rate.top = served
        srv.peak, srv.last_session = 1, 1000
    web2 = be.server("web2")
    web2.response_time.total = web2.total_time.total = 2
    web2.response_time.top = web2.total_time.top = 1
    l7 = {"chkfail": 0, "chkdown": 0, "check_status": "L7OK", "check_code": 200,
          "check_duration": 0}
    be.server("web1").check_cells = be.server("backup1").check_cells = l7
    reg.backend("l4").server("ok").check_cells = {
        "chkfail": 0, "chkdown": 0, "check_status": "L4OK", "check_duration": 0}
    return reg


# Lines HAProxy 2.6.12's exporter wrote for those counters, captured in the lab.
HAPROXY_LINES = (
    'haproxy_frontend_limit_sessions{proxy="http_front"} 100',
    'haproxy_frontend_sessions_total{proxy="http_front"} 7',
    'haproxy_frontend_bytes_in_total{proxy="http_front"} 500',
    'haproxy_frontend_requests_denied_total{proxy="http_front"} 1',
    'haproxy_frontend_responses_denied_total{proxy="http_front"} 0',
    'haproxy_frontend_status{proxy="http_front",state="DOWN"} 0',
    'haproxy_frontend_status{proxy="http_front",state="UP"} 1',
    'haproxy_frontend_limit_session_rate{proxy="http_front"} 0',
    'haproxy_frontend_max_session_rate{proxy="http_front"} 6',
    'haproxy_frontend_http_responses_total{proxy="http_front",code="4xx"} 2',
    'haproxy_frontend_http_requests_rate_max{proxy="http_front"} 6',
    'haproxy_frontend_connections_rate_max{proxy="http_front"} 6',
    'haproxy_frontend_intercepted_requests_total{proxy="stats"} 1',
    'haproxy_frontend_internal_errors_total{proxy="stats"} 0',
    'haproxy_backend_current_queue{proxy="http_back"} 0',
    'haproxy_backend_max_queue{proxy="l4"} 0',
    'haproxy_backend_sessions_total{proxy="http_back"} 5',
    'haproxy_backend_weight{proxy="http_back"} 2',
    'haproxy_backend_active_servers{proxy="http_back"} 2',
    'haproxy_backend_backup_servers{proxy="http_back"} 1',
    'haproxy_backend_check_up_down_total{proxy="http_back"} 0',
    'haproxy_backend_check_last_change_seconds{proxy="http_back"} 1',
    'haproxy_backend_downtime_seconds_total{proxy="http_back"} 0',
    'haproxy_backend_downtime_seconds_total{proxy="stats"} NaN',
    'haproxy_backend_loadbalanced_total{proxy="http_back"} 5',
    'haproxy_backend_max_session_rate{proxy="http_back"} 5',
    'haproxy_backend_last_session_seconds{proxy="http_back"} 0',
    'haproxy_backend_last_session_seconds{proxy="l4"} -1',
    'haproxy_backend_queue_time_average_seconds{proxy="http_back"} 0.000000',
    'haproxy_backend_response_time_average_seconds{proxy="http_back"} 0.001000',
    'haproxy_backend_total_time_average_seconds{proxy="http_back"} 0.001000',
    'haproxy_backend_connection_attempts_total{proxy="http_back"} 5',
    'haproxy_backend_max_response_time_seconds{proxy="http_back"} 0.001000',
    'haproxy_backend_max_connect_time_seconds{proxy="http_back"} 0.000000',
    'haproxy_backend_uweight{proxy="http_back"} 2',
    'haproxy_backend_uweight{proxy="stats"} 0',
    'haproxy_server_max_sessions{proxy="http_back",server="web1"} 1',
    'haproxy_server_sessions_total{proxy="http_back",server="web1"} 3',
    'haproxy_server_status{proxy="http_back",server="web2",state="UP"} 1',
    'haproxy_server_check_failures_total{proxy="http_back",server="web1"} 0',
    'haproxy_server_check_failures_total{proxy="http_back",server="web2"} NaN',
    'haproxy_server_check_up_down_total{proxy="http_back",server="web2"} NaN',
    'haproxy_server_check_last_change_seconds{proxy="http_back",server="web2"} 1',
    'haproxy_server_downtime_seconds_total{proxy="http_back",server="web1"} 0',
    'haproxy_server_downtime_seconds_total{proxy="http_back",server="web2"} NaN',
    'haproxy_server_queue_limit{proxy="http_back",server="web1"} 5',
    'haproxy_server_queue_limit{proxy="http_back",server="web2"} NaN',
    'haproxy_server_current_throttle{proxy="http_back",server="web1"} NaN',
    'haproxy_server_loadbalanced_total{proxy="http_back",server="web1"} 3',
    'haproxy_server_max_session_rate{proxy="http_back",server="web1"} 3',
    'haproxy_server_check_status{proxy="http_back",server="web1",state="L4OK"} 0',
    'haproxy_server_check_status{proxy="http_back",server="web1",state="L7OK"} 1',
    'haproxy_server_check_status{proxy="l4",server="ok",state="L4OK"} 1',
    'haproxy_server_check_code{proxy="http_back",server="web1"} 200',
    'haproxy_server_check_code{proxy="l4",server="ok"} 0',
    'haproxy_server_check_duration_seconds{proxy="http_back",server="web1"} 0.000000',
    'haproxy_server_last_session_seconds{proxy="http_back",server="web1"} 0',
    'haproxy_server_last_session_seconds{proxy="http_back",server="backup1"} -1',
    'haproxy_server_response_time_average_seconds{proxy="http_back",server="web2"} 0.001000',
    'haproxy_server_max_total_time_seconds{proxy="http_back",server="web2"} 0.001000',
    'haproxy_server_connection_attempts_total{proxy="http_back",server="web2"} 2',
    'haproxy_server_uweight{proxy="http_back",server="web1"} 1',
)


def test_the_values_as_haproxy_wrote_them():
    text = render_metrics(lab_registry())
    for line in HAPROXY_LINES:
        assert line + "\n" in text, line


def test_every_measured_metric_in_haproxys_order():
    names = [line.split()[2].removeprefix("haproxy_")
             for line in render_metrics(lab_registry()).splitlines()
             if line.startswith("# HELP")]
    assert names == [n for n in HAPROXY_ORDER if n not in LEFT_OUT]


def test_helps_and_types_as_haproxy_wrote_them():
    text = render_metrics(lab_registry())
    for line in (
        "# HELP haproxy_backend_queue_time_average_seconds Avg. queue time for last 1024 "
        "successful connections.",
        "# TYPE haproxy_backend_queue_time_average_seconds gauge",
        "# HELP haproxy_server_check_status Status of last health check, per state label value.",
        "# TYPE haproxy_server_downtime_seconds_total counter",
        "# HELP haproxy_frontend_limit_sessions Frontend/listener/server's maxconn, backend's "
        "fullconn",
        "# TYPE haproxy_server_check_last_change_seconds gauge",
    ):
        assert line + "\n" in text, line


def test_check_metrics_only_for_servers_whose_checks_run():
    reg = lab_registry()
    # web1's checks paused by maintenance: HAProxy leaves its check state out.
    reg.backend("http_back").server("web1").check_cells = {"chkfail": 0, "chkdown": 0}
    text = render_metrics(reg)
    states = [line.split('state="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("haproxy_server_check_status{") and "backup1" in line]
    assert tuple(states) == CHECK_STATES
    for server in ("web1", "web2"):
        assert f'server_check_status{{proxy="http_back",server="{server}"' not in text
        assert f'server_check_code{{proxy="http_back",server="{server}"}}' not in text
    assert text.count("haproxy_server_check_duration_seconds{") == 2
    # No server checked: no sample, and so no HELP either.
    assert "haproxy_server_check_status" not in render_metrics(registry())


def test_times_in_seconds_and_http_metrics_only_for_http_proxies():
    reg = lab_registry()
    be = reg.backend("l4")
    be.requests, be.connect_time.total, be.connect_time.top = 2, 5, 4
    reg.proxy("l4").mode = "tcp"
    text = render_metrics(reg)
    assert 'haproxy_backend_connect_time_average_seconds{proxy="l4"} 0.003000\n' in text
    assert 'haproxy_backend_max_connect_time_seconds{proxy="l4"} 0.004000\n' in text
    assert 'haproxy_backend_http_requests_total{proxy="l4"}' not in text
    assert 'haproxy_server_http_responses_total{proxy="l4",' not in text
    assert 'haproxy_backend_sessions_total{proxy="l4"} 2\n' in text


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
