"""HAProxy's request processing order for one frontend (http_process_req_common), pure.

    http-request rules -> stats -> redirect rules -> use_backend / default_backend
    -> the chosen backend's http-request rules -> its redirect rules

The first allow/deny/auth/redirect ends the http-request rules of that proxy;
deny, auth and redirect answer the request here. Header and URI rewrites change the
RequestView in place; `Decision.edited` tells the proxy to build the forwarded head
from it. Conditions are compiled once (acl.compile_condition) when the engine is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyxlb.config.rules import (
    Allow,
    Auth,
    DelHeader,
    Deny,
    Redirect,
    ReplaceHeader,
    ReplacePath,
    SetHeader,
    SetPath,
    Tarpit,
    TrackSc,
    UseService,
)
from pyxlb.l7.responses import (
    ALWAYS_CLOSE,
    auth_response,
    deny_response,
    redirect_response,
)
from pyxlb.l7.rules.acl import (
    Env,
    Predicate,
    RequestView,
    compile_condition,
    sample_fetch,
    split_url,
)

# What an http-request rule did: go on with the next rule, stop the rules, or answer.
_CONTINUE, _STOP = 0, 1


@dataclass(slots=True)
class Decision:
    """What to do with a request.

    `answer`: bytes to send instead of forwarding (`status` says which), then close
    when `close`. `stats`: answer the stats page; `service`: a built-in service.
    Otherwise forward to `backend` (None: no backend, a 503), with the head rebuilt
    from the view when `edited`.
    """

    answer: bytes | None = None
    status: int = 0
    close: bool = False
    # `tarpit`: the answer goes out only after `hold` seconds (None: never, the
    # client or its timeout ends the connection first).
    tarpit: bool = False
    hold: float | None = None
    stats: bool = False
    backend: str | None = None
    edited: bool = False
    # A deny or tarpit made the answer: HAProxy's dreq counts it.
    denied: bool = False
    # `use-service NAME` answers (for `backend` when a backend's rule said so).
    service: str | None = None


# Injected: count the request in a stick table (`track-scN KEY [table T]`).
Track = Callable[[TrackSc, RequestView], None]


# -- values: log-format strings and regex replacements

_SAMPLE = re.compile(r"%\[([^\]]*)\]")
_FETCH_CALL = re.compile(r"([a-z0-9_.]+)(?:\(([^)]*)\))?")
_FETCH_NAMES = {"hdr": "req.hdr", "req.hdr": "req.hdr", "req.fhdr": "req.hdr",
                "req.ver": "req.ver"}

Value = Callable[[RequestView], bytes]


def _query(view: RequestView) -> bytes:
    query = view.query
    return b"" if query is None else query


def compile_value(fmt: str, env: Env) -> Value:
    """A log-format string: literal text with `%[fetch(args)]` samples (first value)."""
    pieces: list[bytes | Callable[[RequestView], bytes]] = []
    pos = 0
    for m in _SAMPLE.finditer(fmt):
        pieces.append(fmt[pos:m.start()].replace("%%", "%").encode("latin-1"))
        call = _FETCH_CALL.fullmatch(m.group(1).strip())
        if call is None:
            raise ValueError(f"'{m.group(0)}': only a plain sample fetch is supported here")
        name, args = call.group(1), call.group(2)
        if name == "query":
            pieces.append(_query)
        else:
            fetch = sample_fetch(_FETCH_NAMES.get(name, name),
                                 tuple(a.strip() for a in args.split(",")) if args else (),
                                 env)
            pieces.append(lambda view, fetch=fetch: _first(fetch(view)))
        pos = m.end()
    pieces.append(fmt[pos:].replace("%%", "%").encode("latin-1"))
    if all(isinstance(p, bytes) for p in pieces):
        constant = b"".join(p for p in pieces if isinstance(p, bytes))
        return lambda view: constant
    return lambda view: b"".join(p if isinstance(p, bytes) else p(view) for p in pieces)


def _first(samples: list[Any]) -> bytes:
    if not samples:
        return b""
    sample = samples[0]
    if isinstance(sample, bool):
        return b"1" if sample else b"0"
    return str(sample).encode("latin-1")


_BACKREF = re.compile(rb"\\([0-9])")


def compile_replace(regex: str, replacement: str) -> Callable[[bytes], bytes | None]:
    """HAProxy's regex rewrite: an unanchored search; when it matches, the whole value
    becomes the replacement with `\\1`-`\\9` filled in. None when it does not match."""
    compiled = re.compile(regex.encode("latin-1"), re.DOTALL)
    template = replacement.encode("latin-1")

    def replace(value: bytes) -> bytes | None:
        m = compiled.search(value)
        if m is None:
            return None
        groups = m.groups()
        return _BACKREF.sub(
            lambda r: (groups[int(r.group(1)) - 1] or b"") if 0 < int(r.group(1)) <= len(groups)
            else (m.group(0) if r.group(1) == b"0" else b""), template)

    return replace


# -- redirects

def redirect_location(r: Redirect, view: RequestView) -> bytes:
    """The Location of a redirect, as http_apply_redirect_rule builds it."""
    target = r.target.encode("latin-1")
    if r.kind == "location":
        return target
    path, query = split_url(view.url)
    if r.drop_query:
        query = None
    rest = path if query is None else path + b"?" + query
    if r.kind == "prefix":
        # A prefix of "/" adds nothing, so that the location does not start with "//".
        location = rest if target == b"/" else target + rest
    else:
        hosts = view.header_values(b"host")
        location = target + b"://" + (hosts[0] if hosts else b"") + rest
    if r.append_slash and not location.endswith(b"/"):
        location += b"/"
    return location


def redirect_answer(r: Redirect, view: RequestView, closing: bool) -> bytes:
    cookie = None
    if r.set_cookie is not None:
        cookie = r.set_cookie.encode("latin-1") + b"; path=/;"
    elif r.clear_cookie is not None:
        cookie = r.clear_cookie.encode("latin-1") + b"; path=/; Max-Age=0;"
    return redirect_response(r.code, redirect_location(r, view), closing, cookie)


# -- http-request rules of one proxy

# A compiled rule: (condition or None, action). The action returns _CONTINUE, _STOP,
# or a Decision (an answer).
Action = Callable[[RequestView, Decision, bool], "int | Decision"]


def _answer(decision: Decision, data: bytes, status: int, close: bool,
            denied: bool = False) -> Decision:
    decision.answer = data
    decision.status = status
    decision.close = close
    decision.denied = denied
    return decision


def _compile_action(action: Any, proxy: str, env: Env, track: Track | None,
                    tarpit_s: float | None = None) -> Action:
    """`tarpit_s`: the proxy's `timeout tarpit` (else `timeout connect`), seconds."""
    if isinstance(action, Allow):
        return lambda view, d, closing: _STOP
    if isinstance(action, Deny):
        status = action.status
        close_always = status in ALWAYS_CLOSE
        return lambda view, d, closing: _answer(
            d, deny_response(status, closing), status, closing or close_always, True)
    if isinstance(action, Tarpit):
        code = action.status

        def tarpit(view: RequestView, d: Decision, closing: bool) -> Decision:
            d.tarpit, d.hold = True, tarpit_s
            return _answer(d, deny_response(code, closing), code,
                           closing or code in ALWAYS_CLOSE, True)

        return tarpit
    if isinstance(action, Auth):
        realm = proxy if action.realm is None else action.realm
        return lambda view, d, closing: _answer(d, auth_response(realm, closing), 401, closing)
    if isinstance(action, Redirect):
        r = action
        return lambda view, d, closing: _answer(
            d, redirect_answer(r, view, closing), r.code, closing)
    if isinstance(action, UseService):
        name = action.name

        def use_service(view: RequestView, d: Decision, closing: bool) -> Decision:
            d.service = name
            return d

        return use_service
    if isinstance(action, TrackSc):
        t = action

        def do_track(view: RequestView, d: Decision, closing: bool) -> int:
            if track is not None:
                track(t, view)
            return _CONTINUE

        return do_track
    if isinstance(action, SetHeader):
        return _set_header(action, env)
    if isinstance(action, DelHeader):
        lname = action.name.lower().encode("latin-1")

        def del_header(view: RequestView, d: Decision, closing: bool) -> int:
            kept = [h for h in view.headers if h[0] != lname]
            if len(kept) != len(view.headers):
                view.headers = kept
                d.edited = True
            return _CONTINUE

        return del_header
    if isinstance(action, ReplaceHeader):
        return _replace_header(action)
    if isinstance(action, SetPath):
        return _set_path(action, env)
    if isinstance(action, ReplacePath):
        return _replace_path(action)
    raise ValueError(f"http-request action {type(action).__name__} is not supported by l7")


def _set_header(action: SetHeader, env: Env) -> Action:
    lname = action.name.lower().encode("latin-1")
    value = compile_value(action.value, env)
    replace = action.replace

    def set_header(view: RequestView, d: Decision, closing: bool) -> int:
        # The value is computed before the old header goes: it may read it.
        new = value(view)
        if replace:
            view.headers = [h for h in view.headers if h[0] != lname]
        view.headers.append((lname, new))
        d.edited = True
        return _CONTINUE

    return set_header


def _replace_header(action: ReplaceHeader) -> Action:
    lname = action.name.lower().encode("latin-1")
    replace = compile_replace(action.regex, action.replacement)

    def replace_header(view: RequestView, d: Decision, closing: bool) -> int:
        headers = view.headers
        for i, (name, value) in enumerate(headers):
            if name == lname:
                new = replace(value)
                if new is not None:
                    headers[i] = (name, new)
                    d.edited = True
        return _CONTINUE

    return replace_header


def _set_path(action: SetPath, env: Env) -> Action:
    value = compile_value(action.value, env)

    def set_path(view: RequestView, d: Decision, closing: bool) -> int:
        query = view.query
        path = value(view)
        view.url = path if query is None else path + b"?" + query
        d.edited = True
        return _CONTINUE

    return set_path


def _replace_path(action: ReplacePath) -> Action:
    replace = compile_replace(action.regex, action.replacement)
    whole = action.whole_uri

    def replace_path(view: RequestView, d: Decision, closing: bool) -> int:
        if whole:
            new = replace(view.url)
            if new is not None:
                view.url = new
                d.edited = True
            return _CONTINUE
        query = view.query
        new = replace(view.path)
        if new is not None:
            view.url = new if query is None else new + b"?" + query
            d.edited = True
        return _CONTINUE

    return replace_path


class _ProxyRules:
    """One proxy's http-request and redirect rules, compiled."""

    __slots__ = ("http_request", "redirects")

    def __init__(self, proxy: Any, env: Env, track: Track | None) -> None:
        # A frontend carries its tarpit fallback; a backend has its connect timeout.
        tarpit_ms = getattr(proxy, "tarpit_timeout", None)
        timeouts = getattr(proxy, "timeouts", None)
        if tarpit_ms is None and timeouts is not None:
            tarpit_ms = (getattr(timeouts, "tarpit", None)
                         or getattr(timeouts, "connect", None))
        tarpit_s = None if not tarpit_ms else tarpit_ms / 1000.0
        self.http_request: list[tuple[Predicate | None, Action]] = [
            (compile_condition(rule.condition, env),
             _compile_action(rule.action, proxy.name, env, track, tarpit_s))
            for rule in proxy.http_request
        ]
        self.redirects: list[tuple[Predicate | None, Redirect]] = [
            (compile_condition(rule.condition, env), rule.redirect)
            for rule in proxy.redirects
        ]

    def run_http_request(self, view: RequestView, d: Decision, closing: bool) -> bool:
        """True when the request was answered."""
        for cond, action in self.http_request:
            if cond is None or cond(view):
                result = action(view, d, closing)
                if result is d:
                    return True
                if result == _STOP:
                    return False
        return False

    def run_redirects(self, view: RequestView, d: Decision, closing: bool) -> bool:
        for cond, r in self.redirects:
            if cond is None or cond(view):
                _answer(d, redirect_answer(r, view, closing), r.code, closing)
                return True
        return False


class RuleEngine:
    """A frontend's rules and those of the backends it may choose, compiled once."""

    __slots__ = ("frontend", "use_backends", "default_backend", "backends", "stats_uri",
                 "stick")

    def __init__(self, frontend: Any, backends: Mapping[str, Any], env: Env | None = None,
                 track: Track | None = None, stick: Any = None) -> None:
        env = env or Env()
        # The stick counters `track` and env.counters belong to (pyxlb.l7.stick),
        # told how each request ended; None when the rules use none.
        self.stick = stick
        self.frontend = _ProxyRules(frontend, env, track)
        self.use_backends: list[tuple[Predicate | None, str]] = [
            (compile_condition(rule.condition, env), rule.backend)
            for rule in frontend.use_backends
        ]
        self.default_backend: str | None = frontend.default_backend
        # A listen's backend half runs its rules only when another frontend chose it.
        self.backends = {
            name: _ProxyRules(backends[name], env, track)
            for name in frontend.backends_used()
            if name in backends and name != frontend.name
            and (backends[name].http_request or backends[name].redirects)
        }
        uri = frontend.stats_uri
        self.stats_uri: bytes | None = uri.encode("latin-1") if uri else None

    @staticmethod
    def needed(frontend: Any, backends: Mapping[str, Any]) -> bool:
        """Whether a frontend or a backend it may choose has rules (otherwise the proxy
        goes straight to default_backend, paying nothing for the engine)."""
        if frontend.http_request or frontend.redirects or frontend.use_backends:
            return True
        return any(name in backends and name != frontend.name
                   and (backends[name].http_request or backends[name].redirects)
                   for name in frontend.backends_used())

    def decide(self, view: RequestView, closing: bool) -> Decision:
        """`closing`: the connection ends after this request (HTTP/1.0, `Connection:
        close`, or a request body not read yet): an answer then says `connection: close`."""
        d = Decision()
        if self.frontend.run_http_request(view, d, closing):
            return d
        stats_uri = self.stats_uri
        if (stats_uri is not None and view.method in (b"GET", b"HEAD")
                and view.url.startswith(stats_uri)):
            d.stats = True
            return d
        if self.frontend.run_redirects(view, d, closing):
            return d
        backend = self.default_backend
        for cond, name in self.use_backends:
            if cond is None or cond(view):
                backend = name
                break
        d.backend = backend
        rules = self.backends.get(backend) if backend is not None else None
        if rules is not None and not rules.run_http_request(view, d, closing):
            rules.run_redirects(view, d, closing)
        return d
