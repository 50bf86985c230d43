"""Proxy sections (defaults, frontend, backend, listen): their general keywords, and how
a draft becomes the Frontend, Backend or Defaults of the model.

As in HAProxy, a proxy starts as a copy of the defaults section it inherits from, then
its own statements change that copy. Settings that do not apply to a proxy (a client
timeout in a backend) are ignored with a warning, and HTTP-only ones in a `mode tcp`
proxy are dropped with a warning. The keywords of rules, stats, checks, balancing and
stick tables live in their own modules, registered on the same PROXY registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyxlb.config import actions, balancing, checks, stats_page, stick_table
from pyxlb.config.acl import PendingRule, freeze_acl
from pyxlb.config.bind import BIND_USAGE, bind_from
from pyxlb.config.conditions import Acl
from pyxlb.config.errors import ConfigError
from pyxlb.config.keywords import UNSUPPORTED, Cap, Kind, Statement
from pyxlb.config.logs import LOG_USAGE, log_target
from pyxlb.config.model import (
    HTTP_REUSE_MODES,
    Backend,
    Defaults,
    Frontend,
    LogTarget,
    Mode,
    Timeouts,
)
from pyxlb.config.proxy_draft import PROXY, ProxyDraft
from pyxlb.config.server import SERVER_USAGE, default_server_from, server_from
from pyxlb.config.values import parse_int, parse_name, parse_time_ms

__all__ = ["PROXY", "ProxyDraft", "build_defaults", "build_proxy"]

MODES: tuple[Mode, ...] = ("http", "tcp")
# Who acts on each option; the HTTP-only ones are dropped in mode tcp.
OPTION_CAPS = {"httplog": Cap.FE, "tcplog": Cap.FE, "dontlognull": Cap.FE,
               "log-separate-errors": Cap.FE, "contstats": Cap.FE,
               "http-server-close": Cap.FE | Cap.BE, "forwardfor": Cap.FE | Cap.BE,
               "redispatch": Cap.BE, "allbackups": Cap.BE, "abortonclose": Cap.BE}
HTTP_ONLY_OPTIONS = frozenset({"httplog", "http-server-close", "forwardfor"})
_LOG_FORMATS = ("httplog", "tcplog")
# Options whose arguments (`option httplog clf`, `option forwardfor except ...`) HAProxy has.
_OPTIONS_WITH_ARGS = frozenset({"httplog", "forwardfor", "redispatch"})
TIMEOUT_CAPS = {"connect": Cap.BE, "client": Cap.FE, "server": Cap.BE, "tunnel": Cap.BE,
                "http-keep-alive": Cap.FE | Cap.BE, "http-request": Cap.FE | Cap.BE,
                "queue": Cap.BE, "tarpit": Cap.FE | Cap.BE, "check": Cap.BE}


@PROXY.keyword("mode", "http or tcp", args=1, caps=Cap.FE | Cap.BE)
def _mode(st: Statement, p: ProxyDraft) -> None:
    for mode in MODES:
        if st.args[0].text == mode:
            p.mode = mode
            return
    raise st.error(f"unknown mode '{st.args[0].text}' (expected 'http' or 'tcp')", st.args[0])


@PROXY.keyword("log", LOG_USAGE + " or 'global'", args=(0, None), caps=Cap.FE | Cap.BE,
               negatable=True)
def _log(st: Statement, p: ProxyDraft) -> None:
    if st.negated:
        if st.args:
            raise st.error("'no log' takes no argument", st.args[0])
        p.logs.clear()
    elif not st.args:
        raise st.error(f"'log' expects {st.usage}")
    elif st.args[0].text == "global":
        if len(st.args) > 1:
            raise st.error(f"unexpected argument '{st.args[1].text}': 'log global' takes none",
                           st.args[1])
        p.logs.append("global")
    else:
        p.logs.append(log_target(st))


def _option(st: Statement, p: ProxyDraft) -> None:
    name = st.keyword.split(" ", 1)[1]
    if st.args:
        if name in _OPTIONS_WITH_ARGS:
            raise st.error(f"'{st.keyword} {st.args[0].text}' {UNSUPPORTED}", st.args[0])
        raise st.error(f"unexpected argument '{st.args[0].text}': '{st.keyword}' takes none",
                       st.args[0])
    if st.negated:
        p.options.pop(name, None)
        return
    if name in _LOG_FORMATS:
        # One log format per proxy: the last one written wins, as in HAProxy.
        for other in _LOG_FORMATS:
            p.options.pop(other, None)
    p.options[name] = st.where


for _name, _caps in OPTION_CAPS.items():
    PROXY.keyword(f"option {_name}", args=(0, None), caps=_caps, misplaced="warn",
                  negatable=True)(_option)


def _timeout(st: Statement, p: ProxyDraft) -> None:
    p.timeouts[st.keyword.split(" ", 1)[1]] = st.parse(st.args[0], parse_time_ms)


for _name, _caps in TIMEOUT_CAPS.items():
    PROXY.keyword(f"timeout {_name}", "<time>", args=1, caps=_caps, misplaced="warn")(_timeout)


@PROXY.keyword("bind", BIND_USAGE, args=(1, None), caps=Cap.FE, in_defaults=False,
               misplaced="warn")
def _bind(st: Statement, p: ProxyDraft) -> None:
    p.binds.append(bind_from(st))


@PROXY.keyword("default_backend", "<backend name>", args=1, caps=Cap.FE, misplaced="warn")
def _default_backend(st: Statement, p: ProxyDraft) -> None:
    p.default_backend = st.parse(st.args[0], parse_name)
    p.origins["default_backend"] = st.at(st.args[0])


@PROXY.keyword("maxconn", "<number>", args=1, caps=Cap.FE, misplaced="warn")
def _maxconn(st: Statement, p: ProxyDraft) -> None:
    p.maxconn = st.parse(st.args[0], parse_int, 0)


@PROXY.keyword("backlog", "<number>", args=1, caps=Cap.FE, misplaced="warn")
def _backlog(st: Statement, p: ProxyDraft) -> None:
    p.backlog = st.parse(st.args[0], parse_int, 0)


@PROXY.keyword("retries", "<number>", args=1, caps=Cap.BE, misplaced="warn")
def _retries(st: Statement, p: ProxyDraft) -> None:
    p.retries = st.parse(st.args[0], parse_int, 0)


@PROXY.keyword("http-reuse", "never, safe, aggressive or always", args=1, caps=Cap.BE,
               misplaced="warn")
def _http_reuse(st: Statement, p: ProxyDraft) -> None:
    mode = st.text(st.args[0])
    if mode not in HTTP_REUSE_MODES:
        raise st.error(f"'http-reuse' expects one of {', '.join(HTTP_REUSE_MODES)}, "
                       f"not '{mode}'", st.args[0])
    p.http_reuse = mode  # type: ignore[assignment]


@PROXY.keyword("server", SERVER_USAGE, args=(2, None), caps=Cap.BE, in_defaults=False)
def _server(st: Statement, p: ProxyDraft) -> None:
    server = server_from(st, p.default_server, p.mode)
    for other in p.servers:
        if other.name == server.name:
            raise st.error(f"{p.label} already has a server named '{server.name}' (at "
                           f"{other.where}); use distinct names", st.args[0])
    p.servers.append(server)


@PROXY.keyword("default-server", "[server options]", args=(0, None), caps=Cap.BE)
def _default_server(st: Statement, p: ProxyDraft) -> None:
    p.default_server = {**p.default_server, **default_server_from(st, p.mode)}


PROXY.unsupported(
    "bind-process", "capture", "clitcpka-cnt", "clitcpka-idle", "clitcpka-intvl",
    "compression", "declare", "description", "disabled", "dispatch",
    "email-alert", "enabled", "errorfile", "errorfiles", "errorloc", "errorloc302", "errorloc303",
    "error-log-format", "external-check", "filter", "force-persist", "fullconn",
    "hash-balance-factor", "http-after-response", "http-error",
    "http-response", "http-send-name-header", "id", "ignore-persist",
    "load-server-state-from-file", "log-format", "log-format-sd", "log-tag",
    "max-keep-alive-queue", "max-session-srv-conns", "monitor", "monitor-uri", "persist",
    "rate-limit", "retry-on", "server-state-file-name", "server-template",
    "source", "srvtcpka-cnt", "srvtcpka-idle", "srvtcpka-intvl", "stick",
    "tcp-check", "tcp-response", "unique-id-format", "unique-id-header",
    "use-fcgi-app", "use-server", "dynamic-cookie-key", "http-check connect",
    "http-check disable-on-404", "http-check send", "http-check send-state",
    "http-check set-var", "http-check set-var-fmt", "http-check unset-var", "http-check comment",
    "tcp-request content", "tcp-request inspect-delay", "tcp-request session",
    "stats http-request", "stats scope", "stats show-desc", "stats show-legends",
    "stats show-modules", "stats show-node", "stats bind-process",
    "timeout client-fin", "timeout server-fin",
    "option accept-invalid-http-request",
    "option accept-invalid-http-response", "option checkcache",
    "option clitcpka", "option disable-h2-upgrade", "option dontlog-normal",
    "option external-check", "option h1-case-adjust-bogus-client",
    "option h1-case-adjust-bogus-server", "option http-buffer-request",
    "option http-ignore-probes", "option http-keep-alive", "option http-no-delay",
    "option http-pretend-keepalive", "option http-restrict-req-hdr-names",
    "option http-use-proxy-header", "option http_proxy", "option httpclose",
    "option httpslog", "option idle-close-on-response", "option independent-streams",
    "option ldap-check", "option log-health-checks",
    "option logasap", "option mysql-check", "option nolinger", "option originalto",
    "option persist", "option pgsql-check", "option prefer-last-server", "option redis-check",
    "option smtpchk", "option socket-stats", "option splice-auto",
    "option splice-request", "option splice-response", "option spop-check", "option srvtcpka",
    "option ssl-hello-chk", "option tcp-check", "option tcp-smart-accept",
    "option tcp-smart-connect", "option tcpka", "option transparent",
)


def _timeouts(p: ProxyDraft, caps: Cap) -> Timeouts:
    return Timeouts(**{name.replace("-", "_"): ms for name, ms in p.timeouts.items()
                       if TIMEOUT_CAPS[name] & caps})


def _logs(p: ProxyDraft, global_logs: list[LogTarget]) -> list[LogTarget]:
    logs: list[LogTarget] = []
    for target in p.logs:
        logs.extend(global_logs if target == "global" else [target])
    return logs


def build_defaults(p: ProxyDraft, global_logs: list[LogTarget]) -> Defaults:
    return Defaults(name=p.name, mode=p.mode, options=frozenset(p.options),
                    timeouts=_timeouts(p, Cap.FE | Cap.BE), logs=_logs(p, global_logs),
                    balance=p.balance, maxconn=p.maxconn, default_backend=p.default_backend,
                    stats_uri=p.stats_uri, where=p.where)


def _effective_options(p: ProxyDraft, warnings: list[ConfigError]) -> set[str]:
    """The options that act in this proxy; HTTP-only ones leave a tcp proxy, with a warning."""
    options = {name for name in p.options if OPTION_CAPS[name] & p.kind.caps}
    if p.mode == "http":
        return options
    for name in [name for name in p.options if name in options & HTTP_ONLY_OPTIONS]:
        options.discard(name)
        if name == "httplog":
            # HAProxy logs such a proxy in the TCP format instead.
            options.add("tcplog")
            message = (f"'option httplog' not usable with {p.label} (needs 'mode http'); "
                       "falling back to 'option tcplog'")
        else:
            message = f"'option {name}' ignored for {p.label} as it requires 'mode http'"
        warnings.append(ConfigError(message, p.options[name]))
    return options


def _warn_missing_timeouts(p: ProxyDraft, warnings: list[ConfigError]) -> None:
    needed = [name for name in ("client", "connect", "server")
              if TIMEOUT_CAPS[name] & p.kind.caps and not p.timeouts.get(name)]
    if needed:
        names = ", ".join(f"'timeout {name}'" for name in needed)
        warnings.append(ConfigError(f"missing timeouts for {p.label}: set {names}, or "
                                    "connections can stay open forever", p.where))


@dataclasses.dataclass
class _Rules:
    """A proxy's rules in the model's form, ACLs shared between its conditions."""

    acls: dict[str, Acl]
    tcp_request: list[Any]
    http_request: list[Any]
    redirects: list[Any]
    use_backends: list[Any]


def _build(p: ProxyDraft, pending: list[PendingRule], frozen: dict[int, Acl],
           **extra: Any) -> list[Any]:
    return [rule.build(condition=p.scope.freeze(rule.condition, frozen), **extra)
            for rule in pending]


def _rules(p: ProxyDraft, frozen: dict[int, Acl], warnings: list[ConfigError]) -> _Rules:
    acls = {name: freeze_acl(draft, frozen) for name, draft in p.scope.acls.items()}
    parent, parent_frozen = p.parent, {}
    inherited_tcp = _build(parent, parent.tcp_request, parent_frozen, inherited=True) \
        if parent else []
    inherited_http = _build(parent, parent.http_request, parent_frozen, inherited=True) \
        if parent else []
    rules = _Rules(acls, inherited_tcp + _build(p, p.tcp_request, frozen),
                   inherited_http + _build(p, p.http_request, frozen),
                   _build(p, p.redirects, frozen), _build(p, p.use_backends, frozen))
    if p.mode != "http":
        for name, kept in (("http-request", rules.http_request), ("redirect", rules.redirects)):
            if kept:
                warnings.append(ConfigError(f"'{name}' rules ignored for {p.label} as they "
                                            "require 'mode http'", kept[0].where))
                kept.clear()
    return rules


def build_proxy(p: ProxyDraft, global_logs: list[LogTarget],
                warnings: list[ConfigError]) -> tuple[Frontend | None, Backend | None]:
    """The Frontend and/or Backend a proxy section stands for (a listen gives both)."""
    assert p.name is not None
    options = _effective_options(p, warnings)
    _warn_missing_timeouts(p, warnings)
    logs = _logs(p, global_logs)
    frozen: dict[int, Acl] = {}
    rules = _rules(p, frozen, warnings)
    frontend = backend = None
    if p.kind.caps & Cap.FE:
        stats = stats_page.build_stats(p, frozen, warnings)
        if not p.binds:
            warnings.append(ConfigError(f"{p.label} has no 'bind' directive; declare it as a "
                                        "backend if this was intended", p.where))
        front_options = frozenset(o for o in options if OPTION_CAPS[o] & Cap.FE)
        if not logs and front_options & {"httplog", "tcplog"}:
            warnings.append(ConfigError(f"log format ignored for {p.label} since it has no "
                                        "log address", p.where))
        default_backend = p.default_backend
        if default_backend is None and p.kind is Kind.LISTEN:
            default_backend = p.name
        frontend = Frontend(name=p.name, mode=p.mode, binds=list(p.binds),
                            default_backend=default_backend,
                            stats_uri=stats.uri if stats else None, stats=stats,
                            options=front_options, timeouts=_timeouts(p, Cap.FE),
                            maxconn=p.maxconn, backlog=p.backlog, logs=logs, where=p.where,
                            tarpit_timeout=(p.timeouts.get("tarpit")
                                            or p.timeouts.get("connect")),
                            acls=dict(rules.acls), tcp_request=list(rules.tcp_request),
                            http_request=list(rules.http_request),
                            redirects=list(rules.redirects),
                            use_backends=list(rules.use_backends), stick_table=p.stick_table)
    if p.kind.caps & Cap.BE:
        balance, params = balancing.effective_balance(p, warnings)
        backend = Backend(name=p.name, mode=p.mode, balance=balance, balance_params=params,
                          hash_type=p.hash_type, forward=p.forward,
                          servers=balancing.effective_servers(p, warnings),
                          options=frozenset(o for o in options if OPTION_CAPS[o] & Cap.BE),
                          timeouts=_timeouts(p, Cap.BE), logs=list(logs), where=p.where,
                          retries=p.retries, http_reuse=p.http_reuse,
                          cookie=balancing.effective_cookie(p, warnings),
                          httpchk=checks.build_httpchk(p, warnings), acls=dict(rules.acls),
                          http_request=list(rules.http_request),
                          redirects=list(rules.redirects), stick_table=p.stick_table)
    return frontend, backend


# The modules whose keywords are registered on PROXY by importing them.
KEYWORD_MODULES = (actions, balancing, checks, stats_page, stick_table)
