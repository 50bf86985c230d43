"""The `server NAME ADDRESS[:PORT] [options]` statement: one server of a backend."""

from __future__ import annotations

from typing import Any

from pyxlb.config.keywords import Statement, WordOptions, did_you_mean
from pyxlb.config.lexer import Word
from pyxlb.config.model import Server
from pyxlb.config.values import parse_address, parse_int, parse_name, parse_positive_time_ms

SERVER_USAGE = "<name> <address>[:<port>] [options]"
MAX_WEIGHT = 256
OBSERVE_MODES = ("none", "layer4", "layer7")
ON_ERROR_ACTIONS = ("fastinter", "fail-check", "sudden-death", "mark-down")
SERVER_OPTIONS = WordOptions("server")


@SERVER_OPTIONS.option("check")
def _check(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["check"] = True


@SERVER_OPTIONS.option("backup")
def _backup(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["backup"] = True


@SERVER_OPTIONS.option("inter", "<time>")
def _inter(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["inter_ms"] = st.parse(word, parse_positive_time_ms, name="inter")


@SERVER_OPTIONS.option("rise", "<count>")
def _rise(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["rise"] = st.parse(word, parse_int, 1, name="rise")


@SERVER_OPTIONS.option("fall", "<count>")
def _fall(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["fall"] = st.parse(word, parse_int, 1, name="fall")


@SERVER_OPTIONS.option("weight", "<weight>")
def _weight(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["weight"] = st.parse(word, parse_int, 0, MAX_WEIGHT, name="weight")


@SERVER_OPTIONS.option("maxconn", "<count>")
def _maxconn(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["maxconn"] = st.parse(word, parse_int, 0, name="maxconn")


@SERVER_OPTIONS.option("maxqueue", "<count>")
def _maxqueue(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["maxqueue"] = st.parse(word, parse_int, 0, name="maxqueue")


@SERVER_OPTIONS.option("cookie", "<value>")
def _cookie(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if not word.text:
        raise st.error("'cookie' expects <value>, not an empty word", word)
    fields["cookie"] = word.text


@SERVER_OPTIONS.option("no-check")
def _no_check(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["check"] = False


@SERVER_OPTIONS.option("no-backup")
def _no_backup(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["backup"] = False


@SERVER_OPTIONS.option("disabled")
def _disabled(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["disabled"] = True


@SERVER_OPTIONS.option("enabled")
def _enabled(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["disabled"] = False


@SERVER_OPTIONS.option("fastinter", "<time>")
def _fastinter(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["fastinter_ms"] = st.parse(word, parse_positive_time_ms, name="fastinter")


@SERVER_OPTIONS.option("downinter", "<time>")
def _downinter(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["downinter_ms"] = st.parse(word, parse_positive_time_ms, name="downinter")


@SERVER_OPTIONS.option("observe", "<mode>")
def _observe(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if word.text not in OBSERVE_MODES:
        raise st.error(f"'observe' expects one of {', '.join(OBSERVE_MODES)}, not "
                       f"'{word.text}'", word)
    fields["observe"] = word.text
    fields["observe_at"] = word


@SERVER_OPTIONS.option("error-limit", "<count>")
def _error_limit(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["error_limit"] = st.parse(word, parse_int, 1, name="error-limit")


@SERVER_OPTIONS.option("on-error", "<action>")
def _on_error(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if word.text not in ON_ERROR_ACTIONS:
        hint = did_you_mean(word.text, ON_ERROR_ACTIONS)
        raise st.error(f"'on-error' expects one of {', '.join(ON_ERROR_ACTIONS)}, not "
                       f"'{word.text}'{hint}", word)
    fields["on_error"] = word.text


SERVER_OPTIONS.unsupported(
    "addr", "agent-addr", "agent-check", "agent-inter", "agent-port", "agent-send",
    "allow-0rtt", "alpn", "ca-file", "check-alpn", "check-proto", "check-send-proxy",
    "check-sni", "check-ssl", "check-via-socks4", "ciphers", "ciphersuites", "crl-file", "crt",
    "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13", "id",
    "init-addr", "log-proto", "max-reuse", "minconn", "namespace",
    "no-agent-check", "no-check-ssl", "no-send-proxy", "no-ssl", "no-ssl-reuse",
    "no-tls-tickets", "no-verifyhost", "non-stick", "npn", "on-marked-down", "on-marked-up",
    "pool-conn-name", "pool-low-conn", "pool-max-conn", "pool-purge-delay", "port", "proto",
    "redir", "resolve-net", "resolve-opts", "resolve-prefer", "resolvers", "send-proxy",
    "send-proxy-v2", "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "slowstart", "sni", "socks4",
    "source", "ssl", "ssl-max-ver", "ssl-min-ver", "ssl-reuse", "stick", "tcp-ut", "tfo",
    "track", "usesrc", "verify", "verifyhost", "ws",
)


def _checked(st: Statement, fields: dict[str, Any], mode: str) -> dict[str, Any]:
    """Drop what the proxy's mode cannot do, with HAProxy's warning."""
    word = fields.pop("observe_at", None)
    if fields.get("observe") == "layer7" and mode != "http":
        st.warn("'observe layer7' ignored: it can only be used in 'mode http' proxies", word)
        del fields["observe"]
    return fields


def default_server_from(st: Statement, mode: str) -> dict[str, Any]:
    """The server options a `default-server` line sets, for later `server` lines."""
    return _checked(st, SERVER_OPTIONS.parse(st, st.args), mode)


def server_from(st: Statement, defaults: dict[str, Any], mode: str) -> Server:
    """The Server a `server` statement describes, on top of `default-server` options."""
    name, address, *options = st.args
    server_name = st.parse(name, parse_name, name="server")
    host, port = st.parse(address, parse_address, need_port=False, any_host=False, name="server")
    assert host is not None
    fields = {**defaults, **_checked(st, SERVER_OPTIONS.parse(st, options), mode)}
    return Server(name=server_name, host=host, port=port, where=st.where, **fields)
