"""The Prometheus text exposition of the counters, as HAProxy 2.6's built-in
exporter (`http-request use-service prometheus-exporter`) writes it.

The values are the stats CSV's (pyxlb.stats.page: frontend_fields,
backend_fields, server_fields: one source of truth), exported as HAProxy's
exporter exports its stats fields: the same metric names, HELP texts, types,
labels (`proxy`, `server`, `code`, `state`: one sample per state of a status)
and order (frontends, then backends, then servers; within each, the fields in
CSV column order, every object for one metric before the next metric). Times
are seconds with six decimals (`%f`: qtime 2 ms is 0.002000); a column empty
for one object reads NaN, as HAProxy writes its empty fields; HTTP metrics are
written for HTTP proxies only; check_status, check_code and check_duration only
for servers whose checks run. Metrics whose CSV column pyxlb leaves empty (it
does not measure them: idle connections, a backend's own sessions) are left
out rather than reported, and so are the agg_* per-state counts (HAProxy's CSV
writes them 0; only its exporter counts). Process metrics (`haproxy_process_*`)
are not written. Pure: a registry in, text out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.page import backend_fields, frontend_fields, server_fields

CONTENT_TYPE = b"text/plain; version=0.0.4"

# CSV column: (metric name, type, HELP), as HAProxy's promex_st_metrics names
# its stats fields; hrsp_1xx stands for the six hrsp columns, one metric.
_METRICS: dict[str, tuple[str, str, str]] = {
    "qcur": ("current_queue", "gauge",
             "Number of current queued connections"),
    "qmax": ("max_queue", "gauge",
             "Highest value of queued connections encountered since process started"),
    "scur": ("current_sessions", "gauge",
             "Number of current sessions on the frontend, backend or server"),
    "smax": ("max_sessions", "gauge",
             "Highest value of current sessions encountered since process started"),
    "slim": ("limit_sessions", "gauge",
             "Frontend/listener/server's maxconn, backend's fullconn"),
    "stot": ("sessions_total", "counter",
             "Total number of sessions since process started"),
    "bin": ("bytes_in_total", "counter",
             "Total number of request bytes since process started"),
    "bout": ("bytes_out_total", "counter",
             "Total number of response bytes since process started"),
    "dreq": ("requests_denied_total", "counter",
             "Total number of denied requests since process started"),
    "dresp": ("responses_denied_total", "counter",
             "Total number of denied responses since process started"),
    "ereq": ("request_errors_total", "counter",
             "Total number of invalid requests since process started"),
    "econ": ("connection_errors_total", "counter",
             "Total number of failed connections to server since the worker process started"),
    "eresp": ("response_errors_total", "counter",
             "Total number of invalid responses since the worker process started"),
    "wretr": ("retry_warnings_total", "counter",
             "Total number of server connection retries since the worker process started"),
    "wredis": ("redispatch_warnings_total", "counter",
             "Total number of server redispatches due to connection failures since the worker "
             "process started"),
    "status": ("status", "gauge",
             "Current status of the service, per state label value."),
    "weight": ("weight", "gauge",
             "Server's effective weight, or sum of active servers' effective weights for a "
             "backend"),
    "act": ("active_servers", "gauge",
             "Total number of active UP servers with a non-zero weight"),
    "bck": ("backup_servers", "gauge",
             "Total number of backup UP servers with a non-zero weight"),
    "chkfail": ("check_failures_total", "counter",
             "Total number of failed individual health checks per server/backend, since the "
             "worker process started"),
    "chkdown": ("check_up_down_total", "counter",
             "Total number of failed checks causing UP to DOWN server transitions, per "
             "server/backend, since the worker process started"),
    "lastchg": ("check_last_change_seconds", "gauge",
             "How long ago the last server state changed, in seconds"),
    "downtime": ("downtime_seconds_total", "counter",
             "Total time spent in DOWN state, for server or backend"),
    "qlimit": ("queue_limit", "gauge",
             "Limit on the number of connections in queue, for servers only (maxqueue "
             "argument)"),
    "throttle": ("current_throttle", "gauge",
             "Throttling ratio applied to a server's maxconn and weight during the slowstart "
             "period (0 to 100%)"),
    "lbtot": ("loadbalanced_total", "counter",
             "Total number of requests routed by load balancing since the worker process "
             "started (ignores queue pop and stickiness)"),
    "rate_lim": ("limit_session_rate", "gauge",
             "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit"
             " sessions' setting)"),
    "rate_max": ("max_session_rate", "gauge",
             "Highest value of sessions per second observed since the worker process started"),
    "check_status": ("check_status", "gauge",
             "Status of last health check, per state label value."),
    "check_code": ("check_code", "gauge",
             "layer5-7 code, if available of the last health check."),
    "check_duration": ("check_duration_seconds", "gauge",
             "Total duration of the latest server health check, in seconds."),
    "hrsp_1xx": ("http_responses_total", "counter",
             "Total number of HTTP responses with status 100-199 returned by this object since"
             " the worker process started"),
    "req_rate_max": ("http_requests_rate_max", "gauge",
             "Highest value of http requests observed since the worker process started"),
    "req_tot": ("http_requests_total", "counter",
             "Total number of HTTP requests processed by this object since the worker process "
             "started"),
    "cli_abrt": ("client_aborts_total", "counter",
             "Total number of requests or connections aborted by the client since the worker "
             "process started"),
    "srv_abrt": ("server_aborts_total", "counter",
             "Total number of requests or connections aborted by the server since the worker "
             "process started"),
    "comp_in": ("http_comp_bytes_in_total", "counter",
             "Total number of bytes submitted to the HTTP compressor for this object since the"
             " worker process started"),
    "comp_out": ("http_comp_bytes_out_total", "counter",
             "Total number of bytes emitted by the HTTP compressor for this object since the "
             "worker process started"),
    "comp_byp": ("http_comp_bytes_bypassed_total", "counter",
             "Total number of bytes that bypassed HTTP compression for this object since the "
             "worker process started (CPU/memory/bandwidth limitation)"),
    "comp_rsp": ("http_comp_responses_total", "counter",
             "Total number of HTTP responses that were compressed for this object since the "
             "worker process started"),
    "lastsess": ("last_session_seconds", "gauge",
             "How long ago some traffic was seen on this object on this worker process, in "
             "seconds"),
    "qtime": ("queue_time_average_seconds", "gauge",
             "Avg. queue time for last 1024 successful connections."),
    "ctime": ("connect_time_average_seconds", "gauge",
             "Avg. connect time for last 1024 successful connections."),
    "rtime": ("response_time_average_seconds", "gauge",
             "Avg. response time for last 1024 successful connections."),
    "ttime": ("total_time_average_seconds", "gauge",
             "Avg. total time for last 1024 successful connections."),
    "conn_rate_max": ("connections_rate_max", "gauge",
             "Highest value of connections per second observed since the worker process "
             "started"),
    "conn_tot": ("connections_total", "counter",
             "Total number of new connections accepted on this frontend since the worker "
             "process started"),
    "intercepted": ("intercepted_requests_total", "counter",
             "Total number of HTTP requests intercepted on the frontend "
             "(redirects/stats/services) since the worker process started"),
    "dcon": ("denied_connections_total", "counter",
             "Total number of incoming connections blocked on a listener/frontend by a tcp-"
             "request connection rule since the worker process started"),
    "dses": ("denied_sessions_total", "counter",
             "Total number of incoming sessions blocked on a listener/frontend by a tcp-"
             "request connection rule since the worker process started"),
    "wrew": ("failed_header_rewriting_total", "counter",
             "Total number of failed HTTP header rewrites since the worker process started"),
    "connect": ("connection_attempts_total", "counter",
             "Total number of outgoing connection attempts on this backend/server since the "
             "worker process started"),
    "reuse": ("connection_reuses_total", "counter",
             "Total number of reused connection on this backend/server since the worker "
             "process started"),
    "cache_lookups": ("http_cache_lookups_total", "counter",
             "Total number of HTTP requests looked up in the cache on this frontend/backend "
             "since the worker process started"),
    "cache_hits": ("http_cache_hits_total", "counter",
             "Total number of HTTP requests not found in the cache on this frontend/backend "
             "since the worker process started"),
    "qtime_max": ("max_queue_time_seconds", "gauge",
             "Maximum observed time spent in the queue"),
    "ctime_max": ("max_connect_time_seconds", "gauge",
             "Maximum observed time spent waiting for a connection to complete"),
    "rtime_max": ("max_response_time_seconds", "gauge",
             "Maximum observed time spent waiting for a server response"),
    "ttime_max": ("max_total_time_seconds", "gauge",
             "Maximum observed total request+response time "
             "(request+queue+connect+response+processing)"),
    "eint": ("internal_errors_total", "counter",
             "Total number of internal errors since process started"),
    "uweight": ("uweight", "gauge",
             "Server's user weight, or sum of active servers' user weights for a backend"),
}

# HAProxy's metrics pyxlb leaves out, by name after `haproxy_`: not measured (their
# CSV columns stay empty) or not counted per state. The tests hold the exporter to
# HAProxy's list minus these.
LEFT_OUT = frozenset({
    # a backend's own sessions and fullconn (pyxlb counts sessions on the
    # frontend and the servers)
    "backend_current_sessions", "backend_max_sessions", "backend_limit_sessions",
    # the backends' servers counted per state and per check status (agg_*: the
    # CSV's columns read 0 as HAProxy's; the per-state counts are not written)
    "backend_agg_server_status", "backend_agg_server_check_status", "backend_agg_check_status",
    # a server's idle connection pools (srv_icur, src_ilim, idle/safe/used_conn_cur,
    # need_conn_est)
    "server_idle_connections_current", "server_idle_connections_limit",
    "server_unsafe_idle_connections_current", "server_safe_idle_connections_current",
    "server_used_connections_current", "server_need_connections_current",
})

# The columns each kind of object exports, in HAProxy's order.
_FRONTEND = ("scur", "smax", "slim", "stot", "bin", "bout", "dreq", "dresp", "ereq", "status",
             "rate_lim", "rate_max", "hrsp_1xx", "req_rate_max", "req_tot", "comp_in",
             "comp_out", "comp_byp", "comp_rsp", "conn_rate_max", "conn_tot", "intercepted",
             "dcon", "dses", "wrew", "cache_lookups", "cache_hits", "eint")
_BACKEND = ("qcur", "qmax", "stot", "bin", "bout", "dreq", "dresp", "econ", "eresp", "wretr",
            "wredis", "status", "weight", "act", "bck", "chkdown", "lastchg", "downtime",
            "lbtot", "rate_max", "hrsp_1xx", "req_tot", "cli_abrt", "srv_abrt", "comp_in",
            "comp_out", "comp_byp", "comp_rsp", "lastsess", "qtime", "ctime", "rtime", "ttime",
            "wrew", "connect", "reuse", "cache_lookups", "cache_hits", "qtime_max", "ctime_max",
            "rtime_max", "ttime_max", "eint", "uweight")
_SERVER = ("qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout", "dresp", "econ",
           "eresp", "wretr", "wredis", "status", "weight", "chkfail", "chkdown", "lastchg",
           "downtime", "qlimit", "throttle", "lbtot", "rate_max", "check_status", "check_code",
           "check_duration", "hrsp_1xx", "cli_abrt", "srv_abrt", "lastsess", "qtime", "ctime",
           "rtime", "ttime", "wrew", "connect", "reuse", "qtime_max", "ctime_max", "rtime_max",
           "ttime_max", "eint", "uweight")

# Columns HAProxy writes for HTTP proxies only.
_HTTP_ONLY = frozenset({"hrsp_1xx", "req_rate_max", "req_tot", "intercepted", "cache_lookups",
                        "cache_hits", "comp_in", "comp_out", "comp_byp", "comp_rsp"})
# Columns in milliseconds, exported in seconds.
_MILLISECONDS = frozenset({"qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max",
                           "rtime_max", "ttime_max", "check_duration"})
# The `code` labels of http_responses_total, in HAProxy's order, and their columns.
_CODES = (("1xx", "hrsp_1xx"), ("2xx", "hrsp_2xx"), ("3xx", "hrsp_3xx"), ("4xx", "hrsp_4xx"),
          ("5xx", "hrsp_5xx"), ("other", "hrsp_other"))
_PROXY_STATES = ("DOWN", "UP")
_SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
# The check results HAProxy's check_status has a sample for (those of a finished
# check), in its order.
CHECK_STATES = ("HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
                "L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def server_state(status: str) -> str:
    """HAProxy's state label for a stats status (`UP 1/3` is UP, `no check` is UP,
    `DOWN 1/2` is DOWN)."""
    word = status.split(" ", 1)[0]
    return word if word in _SERVER_STATES else "UP"


def _value(fields: dict[str, object], column: str) -> str:
    """A CSV cell as HAProxy's exporter writes the field: NaN when empty."""
    cell = fields.get(column, "")
    if cell == "":
        return "NaN"
    if column in _MILLISECONDS:
        return f"{int(str(cell)) / 1000:f}"
    return str(cell)


class _Object:
    """A frontend, backend or server: its labels, CSV row, mode and state label."""

    __slots__ = ("fields", "labels", "mode", "state")

    def __init__(self, labels: str, fields: dict[str, object], mode: str, state: str) -> None:
        self.labels, self.fields, self.mode, self.state = labels, fields, mode, state


def _samples(column: str, objects: Sequence[_Object], states: Sequence[str],
             full: str) -> Iterator[str]:
    if column in _HTTP_ONLY:
        objects = [o for o in objects if o.mode == "http"]
    if column == "hrsp_1xx":
        for code, cell in _CODES:
            for o in objects:
                yield f'{full}{{{o.labels},code="{code}"}} {_value(o.fields, cell)}\n'
    elif column == "status":
        for o in objects:
            for state in states:
                yield f'{full}{{{o.labels},state="{state}"}} {int(state == o.state)}\n'
    elif column == "check_status":
        for o in objects:
            if "check_status" in o.fields:
                now = str(o.fields["check_status"]).removeprefix("* ")
                for state in CHECK_STATES:
                    yield f'{full}{{{o.labels},state="{state}"}} {int(state == now)}\n'
    elif column == "check_code":
        # HAProxy writes 0 for a check without a layer 5-7 code (the CSV's empty).
        for o in objects:
            if "check_status" in o.fields:
                yield f"{full}{{{o.labels}}} {o.fields.get('check_code', 0)}\n"
    elif column == "check_duration":
        # Not before the first check is over.
        for o in objects:
            if "check_duration" in o.fields:
                yield f"{full}{{{o.labels}}} {_value(o.fields, column)}\n"
    else:
        for o in objects:
            yield f"{full}{{{o.labels}}} {_value(o.fields, column)}\n"


def _block(prefix: str, columns: Sequence[str], objects: Sequence[_Object],
           states: Sequence[str] = _PROXY_STATES) -> Iterator[str]:
    for column in columns:
        name, kind, help_text = _METRICS[column]
        full = f"haproxy_{prefix}_{name}"
        samples = list(_samples(column, objects, states, full))
        if samples:  # HAProxy writes a metric's head with its first sample
            yield f"# HELP {full} {help_text}\n# TYPE {full} {kind}\n"
            yield from samples


def render_metrics(registry: StatsRegistry) -> str:
    now = registry.now
    frontends: list[_Object] = []
    backends: list[_Object] = []
    servers: list[_Object] = []
    for proxy in registry.proxies:
        proxy_label = f'proxy="{_label(proxy.name)}"'
        if proxy.frontend is not None:
            frontends.append(_Object(proxy_label, frontend_fields(proxy, proxy.frontend, now),
                                     proxy.mode, "UP"))
        be = proxy.backend
        if be is not None:
            backends.append(_Object(proxy_label, backend_fields(proxy, be, now), proxy.mode,
                                    be.status))
            servers.extend(
                _Object(f'{proxy_label},server="{_label(srv.name)}"',
                        server_fields(proxy, srv, now), proxy.mode, server_state(srv.status))
                for srv in be.servers)
    return "".join([*_block("frontend", _FRONTEND, frontends),
                    *_block("backend", _BACKEND, backends),
                    *_block("server", _SERVER, servers, _SERVER_STATES)])
