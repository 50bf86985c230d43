"""The Prometheus text exposition of the counters, as HAProxy 2.6's built-in
exporter (`http-request use-service prometheus-exporter`) writes it.

Same metric names, HELP texts, labels (`proxy`, `server`, `state`) and order
(HAProxy's field order: frontends, then backends, then servers) for the counters
pyxlb has; metrics it does not measure are left out rather than reported as 0.
Pure: a registry in, text out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pyxlb.stats.counters import BackendStats, FrontendStats, ServerStats, StatsRegistry

CONTENT_TYPE = b"text/plain; version=0.0.4"

_STATUS_HELP = "Current status of the service, per state label value."
_SESSIONS_HELP = "Total number of sessions since process started"
_REQUESTS_HELP = ("Total number of HTTP requests processed by this object since the worker "
                  "process started")
_WEIGHT_HELP = ("Server's effective weight, or sum of active servers' effective weights for a "
                "backend")
_LB_HELP = ("Total number of requests routed by load balancing since the worker process "
            "started (ignores queue pop and stickiness)")
_SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
_BYTES_IN_HELP = "Total number of request bytes since process started"
_BYTES_OUT_HELP = "Total number of response bytes since process started"
_DENIED_HELP = "Total number of denied requests since process started"
_CONN_ERRORS_HELP = "Total number of failed connections to server since the worker process started"
_RETRIES_HELP = "Total number of server connection retries since the worker process started"
_REDISPATCH_HELP = ("Total number of server redispatches due to connection failures since the "
                    "worker process started")
_RESPONSES_HELP = ("Total number of HTTP responses with status 100-199 returned by this object "
                   "since the worker process started")
_ATTEMPTS_HELP = ("Total number of outgoing connection attempts on this backend/server since the "
                  "worker process started")
_REUSES_HELP = ("Total number of reused connection on this backend/server since the worker "
                "process started")
# The `code` labels of http_responses_total, in HAProxy's order, and where each
# one's count is in an `hrsp` list (pyxlb.stats.counters.status_class).
_CODES = (("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5), ("other", 0))

# (name, type, HELP, value of the counters; None: the per-state status gauge; a
# list: an `hrsp` list, one sample per `code`)
Metric = tuple[str, str, str, Callable[[Any], object] | None]

_FRONTEND: tuple[Metric, ...] = (
    ("current_sessions", "gauge",
     "Number of current sessions on the frontend, backend or server", lambda fe: fe.current),
    ("max_sessions", "gauge",
     "Highest value of current sessions encountered since process started",
     lambda fe: fe.peak),
    ("sessions_total", "counter", _SESSIONS_HELP, lambda fe: fe.connections),
    ("bytes_in_total", "counter", _BYTES_IN_HELP, lambda fe: fe.bytes_in),
    ("bytes_out_total", "counter", _BYTES_OUT_HELP, lambda fe: fe.bytes_out),
    ("requests_denied_total", "counter", _DENIED_HELP, lambda fe: fe.denied),
    ("request_errors_total", "counter",
     "Total number of invalid requests since process started", lambda fe: fe.bad_requests),
    ("status", "gauge", _STATUS_HELP, None),
    ("http_responses_total", "counter", _RESPONSES_HELP, lambda fe: fe.hrsp),
    ("http_requests_total", "counter", _REQUESTS_HELP, lambda fe: fe.requests),
    ("connections_total", "counter",
     "Total number of new connections accepted on this frontend since the worker process "
     "started", lambda fe: fe.connections),
    ("intercepted_requests_total", "counter",
     "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) "
     "since the worker process started", lambda fe: fe.intercepted),
)

_BACKEND: tuple[Metric, ...] = (
    ("sessions_total", "counter", _SESSIONS_HELP, lambda be: be.requests),
    ("bytes_in_total", "counter", _BYTES_IN_HELP, lambda be: be.bytes_in),
    ("bytes_out_total", "counter", _BYTES_OUT_HELP, lambda be: be.bytes_out),
    ("connection_errors_total", "counter", _CONN_ERRORS_HELP, lambda be: be.connect_errors),
    ("retry_warnings_total", "counter", _RETRIES_HELP, lambda be: be.retries),
    ("redispatch_warnings_total", "counter", _REDISPATCH_HELP, lambda be: be.redispatches),
    ("status", "gauge", _STATUS_HELP, None),
    ("weight", "gauge", _WEIGHT_HELP, lambda be: be.weight),
    ("active_servers", "gauge", "Total number of active UP servers with a non-zero weight",
     lambda be: be.active_up),
    ("backup_servers", "gauge", "Total number of backup UP servers with a non-zero weight",
     lambda be: be.backup_up),
    ("loadbalanced_total", "counter", _LB_HELP, lambda be: be.lbtot),
    ("http_responses_total", "counter", _RESPONSES_HELP, lambda be: be.hrsp),
    ("http_requests_total", "counter", _REQUESTS_HELP, lambda be: be.requests),
    ("connection_attempts_total", "counter", _ATTEMPTS_HELP,
     lambda be: sum(s.connects for s in be.servers)),
    ("connection_reuses_total", "counter", _REUSES_HELP,
     lambda be: sum(s.reuses for s in be.servers)),
)

_SERVER: tuple[Metric, ...] = (
    ("sessions_total", "counter", _SESSIONS_HELP, lambda s: s.requests),
    ("bytes_in_total", "counter", _BYTES_IN_HELP, lambda s: s.bytes_in),
    ("bytes_out_total", "counter", _BYTES_OUT_HELP, lambda s: s.bytes_out),
    ("connection_errors_total", "counter", _CONN_ERRORS_HELP, lambda s: s.connect_errors),
    ("retry_warnings_total", "counter", _RETRIES_HELP, lambda s: s.retries),
    ("redispatch_warnings_total", "counter", _REDISPATCH_HELP, lambda s: s.redispatches),
    ("status", "gauge", _STATUS_HELP, None),
    ("weight", "gauge", _WEIGHT_HELP, lambda s: s.weight),
    ("loadbalanced_total", "counter", _LB_HELP, lambda s: s.requests),
    ("http_responses_total", "counter", _RESPONSES_HELP, lambda s: s.hrsp),
    ("connection_attempts_total", "counter", _ATTEMPTS_HELP, lambda s: s.connects),
    ("connection_reuses_total", "counter", _REUSES_HELP, lambda s: s.reuses),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def server_state(status: str) -> str:
    """HAProxy's state label for a stats status (`UP 1/3` is UP, `no check` is UP,
    `DOWN 1/2` is DOWN)."""
    word = status.split(" ", 1)[0]
    return word if word in _SERVER_STATES else "UP"


def _block(prefix: str, metrics: tuple[Metric, ...],
           objects: list[tuple[str, object, str]]) -> Iterator[str]:
    """`objects`: (labels, counters, state) per frontend, backend or server."""
    for name, kind, help_text, value in metrics:
        if not objects:
            return
        full = f"haproxy_{prefix}_{name}"
        yield f"# HELP {full} {help_text}\n# TYPE {full} {kind}\n"
        values = [None if value is None else value(counters) for _, counters, _ in objects]
        if values and isinstance(values[0], list):
            for code, at in _CODES:
                for (labels, _, _), hrsp in zip(objects, values, strict=True):
                    assert isinstance(hrsp, list)
                    yield f'{full}{{{labels},code="{code}"}} {hrsp[at]}\n'
            continue
        for (labels, _, state), counted in zip(objects, values, strict=True):
            if value is None:
                states = _SERVER_STATES if prefix == "server" else ("DOWN", "UP")
                for candidate in states:
                    yield f'{full}{{{labels},state="{candidate}"}} {int(candidate == state)}\n'
            else:
                yield f"{full}{{{labels}}} {counted}\n"


def render_metrics(registry: StatsRegistry) -> str:
    frontends: list[tuple[str, object, str]] = []
    backends: list[tuple[str, object, str]] = []
    servers: list[tuple[str, object, str]] = []
    for proxy in registry.proxies:
        proxy_label = f'proxy="{_label(proxy.name)}"'
        fe: FrontendStats | None = proxy.frontend
        if fe is not None:
            frontends.append((proxy_label, fe, "UP"))
        be: BackendStats | None = proxy.backend
        if be is not None:
            backends.append((proxy_label, be, be.status))
            for srv in be.servers:
                srv_stats: ServerStats = srv
                servers.append((f'{proxy_label},server="{_label(srv.name)}"', srv_stats,
                                server_state(srv.status)))
    return "".join([*_block("frontend", _FRONTEND, frontends),
                    *_block("backend", _BACKEND, backends),
                    *_block("server", _SERVER, servers)])
