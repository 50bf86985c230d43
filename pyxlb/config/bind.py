"""The `bind ADDRESS [options]` statement: one listening address of a frontend."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyxlb.config.keywords import Statement, WordOptions
from pyxlb.config.lexer import Word
from pyxlb.config.model import Bind
from pyxlb.config.values import parse_address

BIND_USAGE = "<address>:<port> [options]"
BIND_OPTIONS = WordOptions("bind")


@BIND_OPTIONS.option("ssl")
def _ssl(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["ssl"] = True


@BIND_OPTIONS.option("crt", "<certificate file>")
def _crt(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if not word.text:
        raise st.error("'crt' expects <certificate file>, not an empty word", word)
    fields["crt"] = word.text


BIND_OPTIONS.unsupported(
    "accept-netscaler-cip", "accept-proxy", "allow-0rtt", "alpn", "backlog", "ca-file",
    "ca-ignore-err", "ca-sign-file", "ca-sign-pass", "ca-verify-file", "ciphers", "ciphersuites",
    "crl-file", "crt-ignore-err", "crt-list", "curves", "defer-accept", "ecdhe", "expose-fd",
    "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13",
    "generate-certificates", "gid", "group", "id", "interface", "level", "maxconn", "mode", "mss",
    "name", "namespace", "nbconn", "nice", "no-ca-names", "no-sslv3", "no-tls-tickets",
    "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "npn", "prefer-client-ciphers", "process",
    "proto", "severity-output", "ssl-max-ver", "ssl-min-ver", "strict-sni", "tcp-ut", "tfo",
    "thread", "tls-ticket-keys", "transparent", "uid", "user", "v4v6", "v6only", "verify",
)


# HAProxy's address prefixes that pyxlb takes on a bind, and the protocol each means.
_PROTOCOL_PREFIXES = {"udp@": "udp", "tcp@": "tcp"}


def bind_from(st: Statement) -> Bind:
    """The Bind a `bind` statement describes."""
    address, *options = st.args
    text, proto = address.text, "tcp"
    for prefix, name in _PROTOCOL_PREFIXES.items():
        if text.startswith(prefix):
            text, proto = text[len(prefix):], name
    host, port = st.parse(dataclasses.replace(address, text=text), parse_address,
                          need_port=True, any_host=True)
    fields = BIND_OPTIONS.parse(st, options)
    if fields.get("ssl") and not fields.get("crt"):
        raise st.error(f"'bind {address.text}' has 'ssl' but no certificate: add 'crt <file>'")
    if fields.get("crt") and not fields.get("ssl"):
        st.warn(f"'crt' has no effect on 'bind {address.text}' without 'ssl'")
    assert port is not None
    if proto == "udp" and fields.get("ssl"):
        raise st.error(f"'bind {address.text}': 'ssl' is for TCP, not a udp@ address")
    return Bind(host=host, port=port, proto=proto, where=st.where, **fields)
