"""Rule statements: `acl`, `use_backend`, `redirect`, `http-request` and
`tcp-request connection`, read into PendingRules (rules.py has their model).

HAProxy's placement warnings are reproduced: a rule written after one that runs later
(an `http-request` after a `redirect`), a rule after a final one without condition,
and conditions using fetches that have no value where the rule runs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from pyxlb.config.acl import (
    PendingRule,
    Ref,
    bad_condition_start,
    condition_start,
    parse_acl_statement,
    parse_condition,
    parse_fetch,
    warn_if_unusable,
)
from pyxlb.config.conditions import Fetch
from pyxlb.config.fetches import MAX_TRACK_COUNTER, Stage, available, counter_ref
from pyxlb.config.keywords import UNSUPPORTED, Cap, Statement, did_you_mean
from pyxlb.config.lexer import Word
from pyxlb.config.proxy_draft import PROXY, ProxyDraft
from pyxlb.config.rules import (
    FINAL_HTTP_ACTIONS,
    Accept,
    Allow,
    Auth,
    DelHeader,
    Deny,
    HttpRequestRule,
    Redirect,
    RedirectRule,
    Reject,
    ReplaceHeader,
    ReplacePath,
    SetHeader,
    SetPath,
    Tarpit,
    TcpRequestRule,
    TrackSc,
    UseBackendRule,
    UseService,
)
from pyxlb.config.values import parse_int, parse_name

REDIRECT_CODES = (301, 302, 303, 307, 308)
# Statuses HAProxy has an error page for (http_err_codes), the ones `deny` may send.
DENY_STATUSES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500,
                 501, 502, 503, 504)
# The actions pyxlb implements.
HTTP_ACTIONS = ("allow", "deny", "tarpit", "auth", "track-sc0", "track-sc1", "track-sc2",
                "set-header", "add-header", "del-header", "replace-header", "set-path",
                "replace-path", "replace-uri", "redirect", "use-service")
# The services `http-request use-service` can name.
SERVICES = ("prometheus-exporter",)
TCP_ACTIONS = ("accept", "reject", "silent-drop", "track-sc0", "track-sc1", "track-sc2")
# HAProxy 2.6's other http-request actions; a trailing "*" stands for any suffix.
_HAPROXY_HTTP_ACTIONS = (
    "wait-for-handshake", "ot-group", "set-log-level", "set-nice", "sc-inc-gpc*",
    "sc-set-gpt*", "send-spoe-group", "do-resolve*", "cache-use", "add-acl*", "capture",
    "del-acl*", "del-map*", "disable-l7-retry", "early-hint", "normalize-uri", "reject",
    "replace-pathq", "replace-value", "return", "set-map*", "set-method", "set-pathq",
    "set-query", "set-uri", "strict-mode", "set-timeout", "wait-for-body",
    "set-var-fmt*", "set-var*", "unset-var*", "set-dst", "set-dst-port", "set-mark", "set-src",
    "set-src-port", "set-tos", "silent-drop", "set-priority-class", "set-priority-offset")
_HAPROXY_TCP_ACTIONS = ("capture", "expect-proxy", "expect-netscaler-cip", "sc-inc-gpc*",
                        "sc-set-gpt*", "set-var-fmt*", "set-var*", "unset-var*", "set-dst",
                        "set-dst-port", "set-mark", "set-src", "set-src-port", "set-tos")
# Log-format variables (`%ci`, `%T`, ...) of HAProxy 2.6.
LOG_VARIABLES = frozenset({
    "o", "B", "CC", "CS", "H", "ID", "ST", "T", "Ta", "Tc", "Th", "Ti", "Tl", "Tq", "Tr", "TR",
    "Td", "Ts", "Tt", "Tu", "Tw", "U", "ac", "b", "bc", "bi", "bp", "bq", "ci", "cp", "f",
    "fc", "fi", "fp", "ft", "hr", "hrl", "hs", "hsl", "HM", "HP", "HPO", "HQ", "HU", "HV",
    "lc", "ms", "pid", "r", "rc", "rt", "s", "sc", "si", "sp", "sq", "sslc", "sslv", "t", "tr",
    "trg", "trl", "ts", "tsc",
})
_TRACK = re.compile(r"track-sc([0-9]+)")


def _named_defaults_only(st: Statement, p: ProxyDraft) -> None:
    if p.anonymous_defaults:
        raise st.error(f"'{st.keyword}' is not allowed in an anonymous defaults section; name "
                       "it (defaults NAME) and inherit from it with 'from NAME'")


@PROXY.keyword("acl", "<name> <criterion> [flags] [patterns]", args=(2, None),
               caps=Cap.FE | Cap.BE)
def _acl(st: Statement, p: ProxyDraft) -> None:
    _named_defaults_only(st, p)
    parse_acl_statement(st, p.scope)


def _condition(st: Statement, p: ProxyDraft, words: Sequence[Word], what: str) -> Any:
    """The condition that ends a rule (words from its `if`/`unless`), or None."""
    if not words:
        return None
    if words[0].text not in ("if", "unless"):
        raise bad_condition_start(st, what, words[0])
    return parse_condition(st, words, p.scope)


def _after(st: Statement, p: ProxyDraft, rule: str, *later: str) -> None:
    """HAProxy's warning for a rule written after one of a kind that runs after it."""
    lists = {"http-request": p.http_request, "redirect": p.redirects,
             "use_backend": p.use_backends}
    for kind in later:
        if lists[kind]:
            article = "an" if kind == "http-request" else "a"
            st.warn(f"a '{rule}' rule placed after {article} '{kind}' rule will still be "
                    "processed before")
            return


@PROXY.keyword("use_backend", "<backend> [if|unless <condition>]", args=(1, None), caps=Cap.FE,
               in_defaults=False, misplaced="warn")
def _use_backend(st: Statement, p: ProxyDraft) -> None:
    name_word, *rest = st.args
    if "%[" in name_word.text:
        raise st.error(f"dynamic backend names ('{name_word.text}') {UNSUPPORTED}", name_word)
    name = st.parse(name_word, parse_name, name="use_backend")
    cond = _condition(st, p, rest, "use_backend")
    p.scope.refs.append(Ref("backend", name, st.at(name_word), "use_backend"))
    p.use_backends.append(PendingRule(
        functools.partial(UseBackendRule, backend=name, where=st.where), cond, False, st.where))


def _redirect(st: Statement, p: ProxyDraft, words: Sequence[Word]) -> Redirect:
    """The `redirect ...` arguments before the condition."""
    fields: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        option = word.text
        if option in ("drop-query", "append-slash"):
            fields[option.replace("-", "_")] = True
            i += 1
            continue
        if option == "ignore-empty":
            raise st.error(f"redirect option 'ignore-empty' {UNSUPPORTED}", word)
        if option not in ("location", "prefix", "scheme", "code", "set-cookie", "clear-cookie"):
            known = ("location", "prefix", "scheme", "code", "drop-query", "append-slash",
                     "set-cookie", "clear-cookie")
            raise st.error(f"redirect expects {', '.join(known)}, not '{option}'"
                           f"{did_you_mean(option, known)}", word)
        if i + 1 == len(words):
            raise st.error(f"redirect '{option}' expects a value", word)
        value = words[i + 1]
        if option == "code":
            code = st.parse(value, parse_int, 0, name="redirect code")
            if code not in REDIRECT_CODES:
                raise st.error(f"unsupported redirect code '{value.text}' (codes are "
                               f"{', '.join(map(str, REDIRECT_CODES))})", value)
            fields["code"] = code
        elif option in ("set-cookie", "clear-cookie"):
            fields[option.replace("-", "_")] = st.text(value)
        else:
            if "kind" in fields and fields["kind"] != option:
                raise st.error(f"redirect '{option}' after '{fields['kind']}': a redirect has "
                               "one target", word)
            _check_log_format(st, value, p)
            fields["kind"], fields["target"] = option, value.text
        i += 2
    if "kind" not in fields:
        raise st.error("redirect expects a target: 'location', 'prefix' or 'scheme'")
    return Redirect(**fields)


@PROXY.keyword("redirect", "location|prefix|scheme <target> [code N] [if|unless <condition>]",
               args=(1, None), caps=Cap.FE | Cap.BE, in_defaults=False)
def _redirect_statement(st: Statement, p: ProxyDraft) -> None:
    end = condition_start(st.args)
    redirect = _redirect(st, p, st.args[:end])
    cond = _condition(st, p, st.args[end:], "redirect")
    _after(st, p, "redirect", "use_backend")
    p.redirects.append(PendingRule(
        functools.partial(RedirectRule, redirect=redirect, where=st.where), cond, True,
        st.where))


def _haproxy_has(action: str, haproxy: Sequence[str]) -> bool:
    """Whether `action` is one of HAProxy's (entries ending in '*' are prefixes)."""
    return any(action == a or (a.endswith("*") and action.startswith(a[:-1])) for a in haproxy)


def _check_log_format(st: Statement, word: Word, p: ProxyDraft) -> None:
    """Check a log-format string: `%[fetch]` samples and `%var` variables must exist."""
    text = word.text
    i = 0
    while i < len(text):
        if text[i] != "%":
            i += 1
            continue
        i += 1
        if text.startswith("%", i):
            i += 1
            continue
        if text.startswith("{", i):
            close = text.find("}", i)
            if close < 0:
                raise st.error(f"'{text}': missing '}}' after '%{{'", word)
            i = close + 1
        if text.startswith("[", i):
            close = text.find("]", i)
            if close < 0:
                raise st.error(f"'{text}': missing ']' after '%[{text[i + 1:]}'", word)
            parse_fetch(st, word, p.scope, text[i + 1:close])
            i = close + 1
            continue
        match = re.match(r"[A-Za-z]+", text[i:])
        name = match.group() if match else ""
        if name not in LOG_VARIABLES:
            raise st.error(f"'{text}': no log-format variable '%{name}'; write '%%' for a "
                           "literal '%'", word)
        i += len(name)


def _track(st: Statement, p: ProxyDraft, action: Word, words: Sequence[Word],
           stage: Stage) -> TrackSc:
    """`track-scN KEY [table T]`: the words after the action."""
    counter = int(_TRACK.fullmatch(action.text).group(1))  # type: ignore[union-attr]
    if counter > MAX_TRACK_COUNTER:
        raise st.error(f"'{action.text}': there are 3 stick counters, track-sc0 to track-sc2",
                       action)
    if not words:
        raise st.error(f"'{action.text}' expects a key, as in '{action.text} src'", action)
    key, *rest = words
    fetch = _track_key(st, p, key, stage, action.text)
    if rest and rest[0].text == "table":
        if len(rest) == 1:
            raise st.error(f"'{action.text} ... table' expects a table name", rest[0])
        table = st.parse(rest[1], parse_name, name="table")
        p.scope.refs.append(Ref("table", table, st.at(rest[1]), f"'{action.text}'"))
        rest = rest[2:]
    else:
        table = p.name or ""
        p.scope.refs.append(Ref("table", table, st.at(action), f"'{action.text}'",
                                written=False))
    if rest:
        raise st.error(f"unexpected argument '{rest[0].text}' after '{action.text}' (expected "
                       "'table NAME', 'if' or 'unless')", rest[0])
    return TrackSc(counter=counter, key=fetch, table=table)


def _track_key(st: Statement, p: ProxyDraft, word: Word, stage: Stage, what: str) -> Fetch:
    fetch, spec, _ = parse_fetch(st, word, p.scope)
    if not available(spec.stage, stage):
        needs = {"session": "the TLS session", "request": "the HTTP request"}[spec.stage]
        raise st.error(f"'{what}': fetch '{word.text}' needs {needs}, which is not "
                       "available here", word)
    if spec.type == "bool" or counter_ref(fetch.name) is not None:
        raise st.error(f"'{what}': '{word.text}' cannot be a tracking key (use an address, "
                       "a header or a path)", word)
    return fetch


def _deny(st: Statement, p: ProxyDraft, words: Sequence[Word],
          action: str = "deny") -> Deny | Tarpit:
    """`deny` or `tarpit` (same arguments; tarpit answers 500 by default)."""
    made = Deny if action == "deny" else Tarpit
    if not words:
        return made()
    option = words[0]
    if option.text not in ("deny_status", "status"):
        if option.text in ("content-type", "default-errorfiles", "errorfile", "errorfiles",
                           "file", "lf-file", "string", "lf-string", "hdr"):
            raise st.error(f"'http-request {action} {option.text}' {UNSUPPORTED}", option)
        raise st.error(f"unexpected argument '{option.text}': 'http-request {action}' takes "
                       "'deny_status <code>'", option)
    if len(words) < 2:
        raise st.error(f"'{option.text}' expects a status code", option)
    status = st.parse(words[1], parse_int, 0, name=option.text)
    if status not in DENY_STATUSES:
        raise st.error(f"'http-request {action}': HAProxy has no error page for status "
                       f"{status} "
                       f"(statuses are {', '.join(map(str, DENY_STATUSES))})", words[1])
    if len(words) > 2:
        raise st.error(f"unexpected argument '{words[2].text}' after "
                       f"'{option.text} {status}'", words[2])
    return made(status=status)


def _exactly(st: Statement, action: Word, words: Sequence[Word], usage: str) -> list[Word]:
    count = len(usage.split())
    if len(words) < count:
        raise st.error(f"'http-request {action.text}' expects {usage}", action)
    if len(words) > count:
        raise st.error(f"unexpected argument '{words[count].text}': 'http-request "
                       f"{action.text}' expects {usage}, then 'if' or 'unless'", words[count])
    return list(words)


def _regex(st: Statement, word: Word) -> str:
    try:
        re.compile(word.text)
    except re.error as err:
        raise st.error(f"regex '{word.text}' is invalid: {err}", word) from None
    return word.text


def _http_action(st: Statement, p: ProxyDraft, action: Word, words: Sequence[Word]) -> Any:
    name = action.text
    if name == "allow":
        if words:
            raise st.error(f"unexpected argument '{words[0].text}': 'http-request allow' takes "
                           "none", words[0])
        return Allow()
    if name in ("deny", "tarpit"):
        return _deny(st, p, words, name)
    if name == "auth":
        if not words:
            return Auth()
        if words[0].text != "realm" or len(words) != 2:
            raise st.error("'http-request auth' expects 'realm <realm>' or nothing",
                           words[0])
        return Auth(realm=st.text(words[1]))
    if _TRACK.fullmatch(name):
        return _track(st, p, action, words, "request")
    if name in ("set-header", "add-header"):
        header, value = _exactly(st, action, words, "<name> <format>")
        _check_log_format(st, value, p)
        return SetHeader(name=st.text(header), value=value.text, replace=name == "set-header")
    if name == "del-header":
        (header,) = _exactly(st, action, words, "<name>")
        return DelHeader(name=st.text(header))
    if name == "replace-header":
        header, regex, replacement = _exactly(st, action, words, "<name> <regex> <replacement>")
        return ReplaceHeader(name=st.text(header), regex=_regex(st, regex),
                             replacement=replacement.text)
    if name == "set-path":
        (value,) = _exactly(st, action, words, "<format>")
        _check_log_format(st, value, p)
        return SetPath(value=st.text(value))
    if name in ("replace-path", "replace-uri"):
        regex, replacement = _exactly(st, action, words, "<regex> <replacement>")
        _check_log_format(st, replacement, p)
        return ReplacePath(regex=_regex(st, regex), replacement=replacement.text,
                           whole_uri=name == "replace-uri")
    if name == "redirect":
        return _redirect(st, p, words)
    if name == "use-service":
        (service,) = _exactly(st, action, words, "<service>")
        if service.text not in SERVICES:
            raise st.error(f"unknown service '{service.text}' (pyxlb has "
                           f"{', '.join(SERVICES)}){did_you_mean(service.text, SERVICES)}",
                           service)
        return UseService(name=service.text)
    raise _unknown_action(st, "http-request", action, HTTP_ACTIONS, _HAPROXY_HTTP_ACTIONS)


def _unknown_action(st: Statement, rule: str, action: Word, ours: Sequence[str],
                    haproxy: Sequence[str]) -> Exception:
    if _haproxy_has(action.text, haproxy):
        return st.error(f"'{rule} {action.text}' {UNSUPPORTED}", action)
    return st.error(f"unknown '{rule}' action '{action.text}' (actions are {', '.join(ours)})"
                    f"{did_you_mean(action.text, ours)}", action)


def _rule_words(st: Statement) -> tuple[Word, list[Word], list[Word]]:
    """The action word, its arguments, and the condition's words (from `if`/`unless`)."""
    action, *rest = st.args
    end = condition_start(rest)
    return action, rest[:end], rest[end:]


@PROXY.keyword("http-request", "<action> [options] [if|unless <condition>]", args=(1, None),
               caps=Cap.FE | Cap.BE)
def _http_request(st: Statement, p: ProxyDraft) -> None:
    _named_defaults_only(st, p)
    action_word, words, cond_words = _rule_words(st)
    last = p.http_request[-1] if p.http_request else None
    if last is not None and last.condition is None and last.final:
        st.warn("previous 'http-request' action is final and has no condition attached, "
                "further entries are NOOP")
    action = _http_action(st, p, action_word, words)
    cond = _condition(st, p, cond_words, f"http-request {action_word.text}")
    _after(st, p, "http-request", "redirect", "use_backend")
    p.http_request.append(PendingRule(
        functools.partial(HttpRequestRule, action=action, where=st.where), cond,
        isinstance(action, FINAL_HTTP_ACTIONS), st.where))


def _tcp_action(st: Statement, p: ProxyDraft, action: Word, words: Sequence[Word]) -> Any:
    if action.text in ("accept", "reject", "silent-drop"):
        if words:
            raise st.error(f"unexpected argument '{words[0].text}': 'tcp-request connection "
                           f"{action.text}' takes none", words[0])
        if action.text == "accept":
            return Accept()
        return Reject(silent=action.text == "silent-drop")
    if _TRACK.fullmatch(action.text):
        return _track(st, p, action, words, "connection")
    raise _unknown_action(st, "tcp-request connection", action, TCP_ACTIONS,
                          _HAPROXY_TCP_ACTIONS)


@PROXY.keyword("tcp-request connection", "<action> [options] [if|unless <condition>]",
               args=(1, None), caps=Cap.FE)
def _tcp_request(st: Statement, p: ProxyDraft) -> None:
    _named_defaults_only(st, p)
    action_word, words, cond_words = _rule_words(st)
    action = _tcp_action(st, p, action_word, words)
    cond = _condition(st, p, cond_words, f"tcp-request connection {action_word.text}")
    _after(st, p, "tcp-request", "http-request", "redirect", "use_backend")
    if cond is not None:
        warn_if_unusable(st, cond, "tcp-request connection",
                         "frontend tcp-request connection rule", "connection")
    p.tcp_request.append(PendingRule(
        functools.partial(TcpRequestRule, action=action, where=st.where), cond,
        isinstance(action, Accept | Reject), st.where))

