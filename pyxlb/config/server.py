"""The `server NAME ADDRESS[:PORT] [options]` statement: one server of a backend."""

from __future__ import annotations

from typing import Any

from pyxlb.config.keywords import Statement, WordOptions
from pyxlb.config.lexer import Word
from pyxlb.config.model import Server
from pyxlb.config.values import parse_address, parse_int, parse_name, parse_positive_time_ms

SERVER_USAGE = "<name> <address>[:<port>] [options]"
MAX_WEIGHT = 256
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


@SERVER_OPTIONS.option("cookie", "<value>")
def _cookie(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if not word.text:
        raise st.error("'cookie' expects <value>, not an empty word", word)
    fields["cookie"] = word.text


SERVER_OPTIONS.unsupported(
    "addr", "agent-addr", "agent-check", "agent-inter", "agent-port", "agent-send", "allow-0rtt",
    "alpn", "ca-file", "check-alpn", "check-proto", "check-send-proxy", "check-sni", "check-ssl",
    "check-via-socks4", "ciphers", "ciphersuites", "crl-file", "crt", "disabled", "downinter",
    "enabled", "error-limit", "fastinter", "force-sslv3", "force-tlsv10", "force-tlsv11",
    "force-tlsv12", "force-tlsv13", "id", "init-addr", "log-proto", "max-reuse", "maxqueue",
    "minconn", "namespace", "no-agent-check", "no-backup", "no-check", "no-check-ssl",
    "no-send-proxy", "no-ssl", "no-ssl-reuse", "no-tls-tickets", "no-verifyhost", "non-stick",
    "npn", "observe", "on-error", "on-marked-down", "on-marked-up", "pool-conn-name",
    "pool-low-conn", "pool-max-conn", "pool-purge-delay", "port", "proto", "redir", "resolve-net",
    "resolve-opts", "resolve-prefer", "resolvers", "send-proxy", "send-proxy-v2",
    "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "slowstart", "sni", "socks4", "source",
    "ssl", "ssl-max-ver", "ssl-min-ver", "ssl-reuse", "stick", "tcp-ut", "tfo", "track", "usesrc",
    "verify", "verifyhost", "ws",
)


def server_from(st: Statement) -> Server:
    """The Server a `server` statement describes."""
    name, address, *options = st.args
    server_name = st.parse(name, parse_name, name="server")
    host, port = st.parse(address, parse_address, need_port=False, any_host=False, name="server")
    assert host is not None
    return Server(name=server_name, host=host, port=port, where=st.where,
                  **SERVER_OPTIONS.parse(st, options))
