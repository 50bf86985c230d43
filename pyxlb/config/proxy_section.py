"""Proxy sections (defaults, frontend, backend, listen): their keywords, and how a draft
becomes the Frontend, Backend or Defaults of the model.

As in HAProxy, a proxy starts as a copy of the last defaults section before it, then
its own statements change that copy. Settings that do not apply to a proxy (a client
timeout in a backend) are ignored with a warning, and HTTP-only ones in a `mode tcp`
proxy are dropped with a warning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

from pyxlb.config.bind import BIND_USAGE, bind_from
from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.keywords import UNSUPPORTED, Cap, Kind, Registry, Statement
from pyxlb.config.logs import LOG_USAGE, log_target
from pyxlb.config.model import (
    Backend,
    Bind,
    Defaults,
    Frontend,
    LogTarget,
    Mode,
    Server,
    Timeouts,
)
from pyxlb.config.server import SERVER_USAGE, server_from
from pyxlb.config.values import parse_int, parse_name, parse_time_ms

MODES: tuple[Mode, ...] = ("http", "tcp")
BALANCE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri")
# Who acts on each option; the HTTP-only ones are dropped in mode tcp.
OPTION_CAPS = {"httplog": Cap.FE, "tcplog": Cap.FE, "dontlognull": Cap.FE,
               "http-server-close": Cap.FE | Cap.BE, "forwardfor": Cap.FE | Cap.BE}
HTTP_ONLY_OPTIONS = frozenset({"httplog", "http-server-close", "forwardfor"})
# Options whose arguments (`option httplog clf`, `option forwardfor except ...`) HAProxy has.
_OPTIONS_WITH_ARGS = frozenset({"httplog", "forwardfor"})
TIMEOUT_CAPS = {"connect": Cap.BE, "client": Cap.FE, "server": Cap.BE, "tunnel": Cap.BE,
                "http-keep-alive": Cap.FE | Cap.BE, "http-request": Cap.FE | Cap.BE,
                "queue": Cap.BE, "tarpit": Cap.FE | Cap.BE, "check": Cap.BE}


@dataclass
class ProxyDraft:
    """A proxy or defaults section while it is being read."""

    kind: Kind
    name: str | None
    where: Where
    mode: Mode = "tcp"
    options: dict[str, Where] = field(default_factory=dict)  # enabled, and where
    timeouts: dict[str, int] = field(default_factory=dict)  # HAProxy name -> ms
    # "global" (from `log global`) stands for the global section's targets, expanded
    # once every global section has been read.
    logs: list[LogTarget | Literal["global"]] = field(default_factory=list)
    balance: str = "roundrobin"
    maxconn: int | None = None
    default_backend: str | None = None
    stats_uri: str | None = None
    # Where settings that are checked after parsing were made (perhaps in a defaults).
    origins: dict[str, Where] = field(default_factory=dict)
    binds: list[Bind] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind is Kind.DEFAULTS and self.name is None:
            return "the defaults section"
        return f"{self.kind.value} '{self.name}'"

    def inherit(self, defaults: ProxyDraft) -> None:
        """Start from a defaults section's settings, as HAProxy copies them."""
        for name in ("mode", "options", "timeouts", "logs", "balance", "maxconn",
                     "default_backend", "stats_uri", "origins"):
            setattr(self, name, copy.copy(getattr(defaults, name)))


PROXY: Registry[ProxyDraft] = Registry("a defaults, frontend, backend or listen section")


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
    else:
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


@PROXY.keyword("stats uri", "<uri prefix>", args=1, caps=Cap.FE, misplaced="unsupported")
def _stats_uri(st: Statement, p: ProxyDraft) -> None:
    p.stats_uri = st.text(st.args[0])
    p.origins["stats uri"] = st.where


@PROXY.keyword("default_backend", "<backend name>", args=1, caps=Cap.FE, misplaced="warn")
def _default_backend(st: Statement, p: ProxyDraft) -> None:
    p.default_backend = st.parse(st.args[0], parse_name)
    p.origins["default_backend"] = st.at(st.args[0])


@PROXY.keyword("maxconn", "<number>", args=1, caps=Cap.FE, misplaced="warn")
def _maxconn(st: Statement, p: ProxyDraft) -> None:
    p.maxconn = st.parse(st.args[0], parse_int, 0)


@PROXY.keyword("balance", "<algorithm>", args=(1, None), caps=Cap.BE, misplaced="warn")
def _balance(st: Statement, p: ProxyDraft) -> None:
    algorithm = st.args[0]
    if algorithm.text not in BALANCE_ALGORITHMS:
        if algorithm.text in ("random", "url_param", "rdp-cookie", "hash") or \
                algorithm.text.startswith(("hdr(", "rdp-cookie(", "random(")):
            raise st.error(f"'balance {algorithm.text}' {UNSUPPORTED}", algorithm)
        raise st.error(f"unknown balance algorithm '{algorithm.text}' (expected one of "
                       f"{', '.join(BALANCE_ALGORITHMS)})", algorithm)
    if len(st.args) > 1:
        raise st.error(f"'balance {algorithm.text} {st.args[1].text}' {UNSUPPORTED}", st.args[1])
    p.balance = algorithm.text


@PROXY.keyword("server", SERVER_USAGE, args=(2, None), caps=Cap.BE, in_defaults=False)
def _server(st: Statement, p: ProxyDraft) -> None:
    server = server_from(st)
    for other in p.servers:
        if other.name == server.name:
            raise st.error(f"{p.label} already has a server named '{server.name}' (at "
                           f"{other.where}); use distinct names", st.args[0])
    p.servers.append(server)


PROXY.unsupported(
    "acl", "backlog", "bind-process", "capture", "clitcpka-cnt", "clitcpka-idle", "clitcpka-intvl",
    "compression", "cookie", "declare", "default-server", "description", "disabled", "dispatch",
    "email-alert", "enabled", "errorfile", "errorfiles", "errorloc", "errorloc302", "errorloc303",
    "error-log-format", "external-check", "filter", "force-persist", "fullconn", "hash-type",
    "hash-balance-factor", "http-after-response", "http-check", "http-error", "http-request",
    "http-response", "http-reuse", "http-send-name-header", "id", "ignore-persist",
    "load-server-state-from-file", "log-format", "log-format-sd", "log-tag",
    "max-keep-alive-queue", "max-session-srv-conns", "monitor", "monitor-uri", "persist",
    "rate-limit", "redirect", "retries", "retry-on", "server-state-file-name", "server-template",
    "source", "srvtcpka-cnt", "srvtcpka-idle", "srvtcpka-intvl", "stick", "stick-table",
    "tcp-check", "tcp-request", "tcp-response", "unique-id-format", "unique-id-header",
    "use_backend", "use-fcgi-app", "use-server",
    "stats admin", "stats auth", "stats enable", "stats hide-version", "stats http-request",
    "stats realm", "stats refresh", "stats scope", "stats show-desc", "stats show-legends",
    "stats show-modules", "stats show-node", "timeout client-fin", "timeout server-fin",
    "option abortonclose", "option accept-invalid-http-request",
    "option accept-invalid-http-response", "option allbackups", "option checkcache",
    "option clitcpka", "option contstats", "option disable-h2-upgrade", "option dontlog-normal",
    "option external-check", "option h1-case-adjust-bogus-client",
    "option h1-case-adjust-bogus-server", "option http-buffer-request",
    "option http-ignore-probes", "option http-keep-alive", "option http-no-delay",
    "option http-pretend-keepalive", "option http-restrict-req-hdr-names",
    "option http-use-proxy-header", "option http_proxy", "option httpchk", "option httpclose",
    "option httpslog", "option idle-close-on-response", "option independent-streams",
    "option ldap-check", "option log-health-checks", "option log-separate-errors",
    "option logasap", "option mysql-check", "option nolinger", "option originalto",
    "option persist", "option pgsql-check", "option prefer-last-server", "option redis-check",
    "option redispatch", "option smtpchk", "option socket-stats", "option splice-auto",
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


def build_proxy(p: ProxyDraft, global_logs: list[LogTarget],
                warnings: list[ConfigError]) -> tuple[Frontend | None, Backend | None]:
    """The Frontend and/or Backend a proxy section stands for (a listen gives both)."""
    assert p.name is not None
    options = _effective_options(p, warnings)
    _warn_missing_timeouts(p, warnings)
    logs = _logs(p, global_logs)
    frontend = backend = None
    if p.kind.caps & Cap.FE:
        stats_uri = p.stats_uri
        if stats_uri is not None and p.mode != "http":
            warnings.append(ConfigError(f"'stats uri' ignored for {p.label} as it requires "
                                        "'mode http'", p.origins["stats uri"]))
            stats_uri = None
        if not p.binds:
            warnings.append(ConfigError(f"{p.label} has no 'bind' directive; declare it as a "
                                        "backend if this was intended", p.where))
        default_backend = p.default_backend
        if default_backend is None and p.kind is Kind.LISTEN:
            default_backend = p.name
        frontend = Frontend(name=p.name, mode=p.mode, binds=list(p.binds),
                            default_backend=default_backend, stats_uri=stats_uri,
                            options=frozenset(o for o in options if OPTION_CAPS[o] & Cap.FE),
                            timeouts=_timeouts(p, Cap.FE), maxconn=p.maxconn, logs=logs,
                            where=p.where)
    if p.kind.caps & Cap.BE:
        backend = Backend(name=p.name, mode=p.mode, balance=p.balance, servers=list(p.servers),
                          options=frozenset(o for o in options if OPTION_CAPS[o] & Cap.BE),
                          timeouts=_timeouts(p, Cap.BE), logs=list(logs), where=p.where)
    return frontend, backend
