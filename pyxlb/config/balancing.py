"""How a backend picks a server: `balance`, `hash-type`, and `cookie` persistence.

The layer-7 variants (`balance uri`, `balance hdr(NAME)`, cookies) need `mode http`;
in a tcp backend HAProxy drops them with a warning, and so does pyxlb.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pyxlb.config.errors import ConfigError
from pyxlb.config.keywords import UNSUPPORTED, Cap, Statement, did_you_mean
from pyxlb.config.model import BalanceParams, Cookie, Server
from pyxlb.config.proxy_draft import PROXY, ProxyDraft
from pyxlb.config.values import parse_int, parse_time_s

SIMPLE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source")
BALANCE_ALGORITHMS = (*SIMPLE_ALGORITHMS, "uri", "hdr(<name>)")
_UNSUPPORTED_ALGORITHMS = ("random", "url_param", "rdp-cookie", "hash")
_HEADER = re.compile(r"hdr\(([^()]*)\)")
HASH_TYPES = ("map-based", "consistent")
COOKIE_MODES = ("insert", "rewrite", "prefix")
_COOKIE_FLAGS = {"indirect": "indirect", "nocache": "nocache", "postonly": "postonly",
                 "preserve": "preserve", "httponly": "httponly", "secure": "secure"}
_COOKIE_OPTIONS = (*COOKIE_MODES, *_COOKIE_FLAGS, "domain", "maxidle", "maxlife")


@PROXY.keyword("balance", "<algorithm> [arguments]", args=(1, None), caps=Cap.BE,
               misplaced="warn")
def _balance(st: Statement, p: ProxyDraft) -> None:
    algorithm, *rest = st.args
    name = algorithm.text
    if name in SIMPLE_ALGORITHMS:
        if rest:
            raise st.error(f"unexpected argument '{rest[0].text}': 'balance {name}' takes none",
                           rest[0])
        p.balance, p.balance_params = name, BalanceParams()
    elif name == "uri":
        p.balance, p.balance_params = name, _uri_params(st, rest)
    elif (header := _HEADER.fullmatch(name)) is not None:
        if not header.group(1):
            raise st.error("'balance hdr()' expects a header name, as in 'hdr(host)'", algorithm)
        use_domain_only = False
        for word in rest:
            if word.text != "use_domain_only":
                raise st.error(f"unexpected argument '{word.text}': 'balance hdr' only takes "
                               "'use_domain_only'", word)
            use_domain_only = True
        p.balance = "hdr"
        p.balance_params = BalanceParams(header=header.group(1).lower(),
                                         use_domain_only=use_domain_only)
    elif name in _UNSUPPORTED_ALGORITHMS or name.startswith(("rdp-cookie(", "random(")):
        raise st.error(f"'balance {name}' {UNSUPPORTED}", algorithm)
    else:
        hint = did_you_mean(name, [*SIMPLE_ALGORITHMS, "uri"])
        raise st.error(f"unknown balance algorithm '{name}' (expected one of "
                       f"{', '.join(BALANCE_ALGORITHMS)}){hint}", algorithm)


def _uri_params(st: Statement, words: list[Any]) -> BalanceParams:
    fields: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.text == "whole":
            fields["whole"] = True
        elif word.text in ("len", "depth"):
            if i + 1 == len(words):
                raise st.error(f"'balance uri {word.text}' expects a positive integer", word)
            i += 1
            fields[word.text] = st.parse(words[i], parse_int, 1, name=f"balance uri {word.text}")
        elif word.text == "path-only":
            raise st.error(f"'balance uri path-only' {UNSUPPORTED}", word)
        else:
            raise st.error(f"unexpected argument '{word.text}': 'balance uri' takes 'whole', "
                           "'len N' and 'depth N'", word)
        i += 1
    return BalanceParams(**fields)


@PROXY.keyword("hash-type", "map-based or consistent", args=(1, None), caps=Cap.BE,
               misplaced="warn")
def _hash_type(st: Statement, p: ProxyDraft) -> None:
    kind, *rest = st.args
    if kind.text not in HASH_TYPES:
        hint = did_you_mean(kind.text, HASH_TYPES)
        raise st.error(f"unknown hash-type '{kind.text}' (expected 'map-based' or "
                       f"'consistent'){hint}", kind)
    if rest:
        raise st.error(f"'hash-type {kind.text} {rest[0].text}': hash functions and "
                       f"modifiers {UNSUPPORTED}", rest[0])
    p.hash_type = kind.text  # type: ignore[assignment]


FORWARD_MODES = ("nat", "dsr")


@PROXY.keyword("pyxlb-forward", "nat or dsr", args=1, caps=Cap.BE)
def _forward(st: Statement, p: ProxyDraft) -> None:
    """pyxlb's own keyword, not HAProxy's: how the kernel tier sends a layer-4
    service's flows to its servers. `nat` (the default) rewrites both ends as
    `mode tcp` would look to servers; `dsr` (direct server return) only
    changes MACs: servers see the client, must hold the VIP on a loopback and
    listen on the bind's port, and answer clients without the balancer."""
    mode = st.args[0].text
    if mode not in FORWARD_MODES:
        hint = did_you_mean(mode, FORWARD_MODES)
        raise st.error(f"unknown forwarding '{mode}' (expected 'nat' or 'dsr'){hint}",
                       st.args[0])
    p.forward = mode  # type: ignore[assignment]


@PROXY.keyword("cookie", "<name> [insert|rewrite|prefix] [options]", args=(1, None),
               caps=Cap.BE, misplaced="warn")
def _cookie(st: Statement, p: ProxyDraft) -> None:
    name, *words = st.args
    fields: dict[str, Any] = {"domains": []}
    i = 0
    while i < len(words):
        word = words[i]
        option = word.text
        if option in COOKIE_MODES:
            if fields.get("mode") not in (None, option):
                raise st.error("cookie modes 'insert', 'rewrite' and 'prefix' cannot be "
                               "combined", word)
            fields["mode"] = option
        elif option in _COOKIE_FLAGS:
            fields[_COOKIE_FLAGS[option]] = True
        elif option in ("domain", "maxidle", "maxlife"):
            if i + 1 == len(words):
                raise st.error(f"cookie '{option}' expects a value", word)
            i += 1
            if option == "domain":
                fields["domains"].append(st.text(words[i]))
            else:
                fields[f"{option}_ms"] = st.parse(words[i], _seconds, name=f"cookie {option}")
        elif option in ("dynamic", "attr"):
            raise st.error(f"cookie '{option}' {UNSUPPORTED}", word)
        else:
            hint = did_you_mean(option, _COOKIE_OPTIONS)
            raise st.error(f"unknown cookie option '{option}' (options are "
                           f"{', '.join(_COOKIE_OPTIONS)}){hint}", word)
        i += 1
    if fields.get("mode") == "rewrite" and fields.get("indirect"):
        raise st.error("cookie 'rewrite' and 'indirect' cannot be combined")
    if fields.get("preserve") and not (fields.get("mode") == "insert" or fields.get("indirect")):
        raise st.error("cookie 'preserve' requires 'insert' or 'indirect'")
    fields["domains"] = tuple(fields["domains"])
    p.cookie = Cookie(name=st.text(name), where=st.where, **fields)


def _seconds(text: str) -> int | None:
    """A cookie lifetime in milliseconds, whole seconds as HAProxy counts it; None
    for 0, which HAProxy takes as no limit."""
    return parse_time_s(text) * 1000 or None


def effective_balance(p: ProxyDraft,
                      warnings: list[ConfigError]) -> tuple[str, BalanceParams]:
    """The algorithm a backend uses: layer-7 hashes fall back to roundrobin in mode tcp."""
    if p.balance in ("uri", "hdr") and p.mode != "http":
        warnings.append(ConfigError(f"layer 7 hash not possible for {p.label} (needs 'mode "
                                    "http'); falling back to 'balance roundrobin'", p.where))
        return "roundrobin", BalanceParams()
    return p.balance, p.balance_params


def effective_cookie(p: ProxyDraft, warnings: list[ConfigError]) -> Cookie | None:
    if p.cookie is not None and p.mode != "http":
        warnings.append(ConfigError(f"cookie ignored for {p.label} (needs 'mode http')",
                                    p.cookie.where))
        return None
    return p.cookie


def effective_servers(p: ProxyDraft, warnings: list[ConfigError]) -> list[Server]:
    if p.mode == "http":
        return list(p.servers)
    servers = []
    for server in p.servers:
        if server.cookie is not None:
            warnings.append(ConfigError(f"{p.label}: ignoring cookie for server "
                                        f"'{server.name}' as it requires 'mode http'",
                                        server.where))
            server = dataclasses.replace(server, cookie=None)
        servers.append(server)
    return servers
