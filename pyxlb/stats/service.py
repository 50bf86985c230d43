"""A frontend's statistics service: which requests it answers and what, as the
`stats` keywords of HAProxy 2.6 configure it.

* `stats uri` prefix: the HTML page, `;csv` (with `;norefresh`, `;st=CODE`);
* `stats auth` / `stats realm`: Basic authentication, HAProxy's 401 otherwise;
* `stats refresh`: a `refresh` header; `stats hide-version`;
* `stats admin if|unless COND`: the page's server forms, POSTed back to the uri,
  answered with a 303 to `;st=DONE` (or DENY, NONE, PART, ERRP);
* `/metrics` (Prometheus, pyxlb.stats.prometheus) on a stats listener that has
  nothing else to serve (its backends have no servers, as a `listen stats`);
  `http-request use-service prometheus-exporter` answers the same anywhere
  (`metrics_answer`).

Pure: the proxy hands over a `StatsRequest` and writes the bytes it gets back.
Server state changes go to `StatsRegistry.control` (the daemon's ServerAdmin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pyxlb.l7.responses import (
    auth_response,
    promex_response,
    stats_admin_redirect,
    stats_response,
)
from pyxlb.l7.rules.acl import Env, RequestView, basic_credentials, compile_condition
from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.page import render_csv, render_html
from pyxlb.stats.prometheus import CONTENT_TYPE as METRICS_TYPE
from pyxlb.stats.prometheus import render_metrics

METRICS_PATH = b"/metrics"
MAX_FORM = 16384  # bytes of admin form kept; HAProxy's buffer is of that order
_ACTIONS = ("ready", "drain", "maint")


@dataclass(slots=True)
class StatsRequest:
    """What the service needs of a request; `body` fills while it arrives.
    `service`: a `use-service` rule's service answers it, not the stats page."""

    view: RequestView
    body: bytearray = field(default_factory=bytearray)
    service: str | None = None

    def add_body(self, data: bytes) -> None:
        room = MAX_FORM - len(self.body)
        if room > 0:
            self.body += data[:room]


def headers_of(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) pairs from the proxy's `name: value\\r\\n` lines."""
    pairs = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            pairs.append((name.strip().lower(), value.strip()))
    return pairs


def serves_metrics(frontend: Any, has_servers: Callable[[str], bool]) -> bool:
    """A stats listener with nothing else to serve: no backend it may use has
    servers (a `listen stats` with `stats enable`)."""
    if frontend.stats is None:
        return False
    return not any(has_servers(name) for name in frontend.backends_used())


def metrics_answer(registry: StatsRegistry, head_only: bool, close: bool) -> bytes:
    """The Prometheus exposition as HAProxy's exporter answers it (a stats
    listener's /metrics, `http-request use-service prometheus-exporter`)."""
    return promex_response(render_metrics(registry).encode(), METRICS_TYPE, head_only, close)


class StatsService:
    """One frontend's stats page; `stats` is the config model's `Stats`."""

    def __init__(self, stats: Any, registry: StatsRegistry, metrics: bool = False,
                 env: Env | None = None) -> None:
        self.registry = registry
        self.uri: bytes = stats.uri.encode("latin-1")
        self.users = {(u.user, u.password) for u in stats.auth}
        self.realm: str = stats.realm
        self.hide_version: bool = stats.hide_version
        self.refresh_s: int | None = (None if stats.refresh_ms is None
                                      else max(1, stats.refresh_ms // 1000))
        env = env or Env()
        self.admin = [p for cond in stats.admin
                      if (p := compile_condition(cond, env)) is not None]
        self.metrics = metrics

    def wants(self, method: bytes, url: bytes) -> bool:
        """Whether the request is the service's to answer (it is, then, intercepted)."""
        if self.metrics and method in (b"GET", b"HEAD") and url.partition(b"?")[0] == METRICS_PATH:
            return True
        if not url.startswith(self.uri):
            return False
        return method in (b"GET", b"HEAD") or (method == b"POST" and bool(self.admin))

    def respond(self, request: StatsRequest, head_only: bool, close: bool,
                shown: StatsRegistry | None = None) -> bytes:
        """The answer; `shown`: the counters to show, when not this process's
        (`StatsRegistry.current()` where several processes serve)."""
        view = request.view
        http10 = view.version == b"1.0"
        if self.metrics and view.url.partition(b"?")[0] == METRICS_PATH:
            return metrics_answer(self._counters(shown), head_only, close)
        if self.users and self._user(view) is None:
            return auth_response(self.realm, close)
        options = view.url[len(self.uri):].split(b";")
        if view.method == b"POST":
            outcome = self._admin(view, bytes(request.body))
            return stats_admin_redirect(self.uri + b";st=" + outcome.encode(), close)
        refresh = None if b"norefresh" in options else self.refresh_s
        if b"csv" in options:
            body = render_csv(self._counters(shown)).encode()
            return stats_response(body, b"text/plain", head_only, close, refresh, http10)
        status = next((o[3:].decode("latin-1") for o in options if o.startswith(b"st=")), None)
        uri = self.uri.decode("latin-1")
        body = render_html(self._counters(shown), f"{uri};csv", hide_version=self.hide_version,
                           admin=self._admin_allowed(view), message=status,
                           home=uri).encode()
        return stats_response(body, b"text/html", head_only, close, refresh, http10)

    def _counters(self, shown: StatsRegistry | None) -> StatsRegistry:
        return shown if shown is not None else self.registry.fresh()

    def _user(self, view: RequestView) -> str | None:
        credentials = basic_credentials(view)
        return credentials[0] if credentials in self.users else None

    def _admin_allowed(self, view: RequestView) -> bool:
        return any(allows(view) for allows in self.admin)

    def _admin(self, view: RequestView, body: bytes) -> str:
        """Applies the form; returns HAProxy's outcome code."""
        control = self.registry.control
        if control is None or not self._admin_allowed(view):
            return "DENY"
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        action = next((v for k, v in fields if k == "action"), "")
        backend_ref = next((v for k, v in fields if k == "b"), "")
        servers = [v for k, v in fields if k == "s"]
        if action not in _ACTIONS or not backend_ref:
            return "ERRP"
        backend = self._backend(backend_ref)
        if backend is None:
            return "ERRP"
        if not servers:
            return "NONE"
        known = {s.name for s in self.registry.backend(backend).servers}
        done = 0
        for server in servers:
            if server in known:
                control(backend, server, action)
                done += 1
        return "DONE" if done == len(servers) else "PART"

    def _backend(self, ref: str) -> str | None:
        """`#IID` (what the page's form sends) or a backend name."""
        for proxy in self.registry.proxies:
            if proxy.backend is not None and (ref == f"#{proxy.iid}" or ref == proxy.name):
                return proxy.name
        return None
