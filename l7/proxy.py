"""The client side of ``mode http`` frontends: listeners, and the protocol that
parses requests, answers the stats page, forwards everything else to a server
chosen by the backend's balancer and relays the response back.

Shape (after uvicorn's httptools protocol): httptools callbacks fill an
``Exchange`` per request; exchanges queue in arrival order so pipelined requests
are answered in order, and only the first one talks to a server. Bytes are
forwarded as they arrive in both directions, with back-pressure: a full client
write buffer pauses reading from the server, a full server write buffer pauses
reading from the client.

Processing order follows HAProxy's http_process_req_common: a frontend with
rules (http-request, redirect, use_backend, or a backend's http-request rules) runs
them through ``rules.engine.RuleEngine`` once the head is parsed, which answers the
request (deny, auth, redirect), asks for the stats page, or names the backend and
rewrites the head; a frontend without rules goes to stats, then default_backend.

Each proxied exchange holds its server from the pick until it leaves it (response
done, failure, or either side gone): ``acquire`` and ``release`` bracket that, for
leastconn and maxconn. ``_start`` takes the server; ``_leave_server`` gives it back
and is the only place that does, called from ``response_end`` and
``_drop_upstream`` (which every failure and close goes through), and, for a
WebSocket, ``_tunnel_closed``. A request that finds every server at its maxconn
waits in the backend's queues (``balance.queue.Queues``) for `timeout queue`;
the slot ``_leave_server`` gives back goes to the oldest waiter.

An upgrade request answered by a 101 turns the connection into a byte tunnel to
its server (``tunnel.Tunnel``, under ``timeout tunnel``); a backend with a
``cookie`` line has its persistence cookie read before the pick and set in the
response (``cookies.CookiePersistence``); ``bind ... ssl`` listeners terminate
TLS (``tls.server_context``). ``timeout http-request`` and ``timeout
http-keep-alive`` each have a timer of their own, created only when set.

Each exchange counts its request's and response's bytes as HAProxy does
(``htx``: requests as they arrive, responses as the server sent them, tunnels
both ways) and adds them to the stats' bin/bout and the log's %B once, when it
leaves its server or ends (``_account``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping
from functools import partial
from ipaddress import ip_address
from typing import Any, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserInvalidMethodError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from pyxlb.l7.balance import Need, source_key
from pyxlb.l7.balance.queue import Full, Pending
from pyxlb.l7.cookies import CookieRequest
from pyxlb.l7.http1 import (
    CONNECTION,
    CONNECTION_CLOSE,
    CONNECTION_KEEP_ALIVE,
    CONTENT_LENGTH,
    HTX_BLOCK,
    HTX_REQUEST_HEAD,
    LENIENCIES_OFF,
    MAX_HEAD,
    SPECIAL_HEADERS,
    TRANSFER_ENCODING,
    UPGRADE,
    MethodToken,
    absolute_target,
    chunk,
    connection_line,
    foreign_coding,
    has_token,
    header_line,
    is_chunked,
    last_chunk,
    method_in_progress,
    request_head,
    response_head,
    same_host,
    version_bytes,
)
from pyxlb.l7.htx import (
    CHUNKED_END,
    chunked_reply_size,
    fields_size,
    head_size,
    message_size,
)
from pyxlb.l7.listeners import ConnectionLimit, Listener, ProcessLimit
from pyxlb.l7.responses import (
    BAD_REQUEST,
    REQUEST_TIMEOUT,
    UNPROCESSABLE,
    error_response,
    status_of,
)
from pyxlb.l7.rules.acl import RequestView
from pyxlb.l7.rules.engine import RuleEngine
from pyxlb.l7.timers import IdleTimer
from pyxlb.l7.tls import server_context
from pyxlb.l7.tunnel import Tunnel, tunnel_timeout
from pyxlb.l7.upstream import Backend, Server, UpstreamConnection, Upstreams
from pyxlb.log.session import (
    PROMEX_SERVER,
    STATS_SERVER,
    ConnectionLog,
    FrontendLog,
    RequestLog,
    Sender,
)
from pyxlb.stats.counters import (
    BackendStats,
    FrontendStats,
    StatsRegistry,
    add_times,
    loop_ms,
    status_class,
)
from pyxlb.stats.service import (
    StatsRequest,
    StatsService,
    headers_of,
    metrics_answer,
    serves_metrics,
)

log = logging.getLogger(__name__)

PENDING_LIMIT = 65536
"""Request bytes buffered while no server connection is ready; past this the
client is not read until the connection is up."""

REPLAY_LIMIT = 65536
"""A request sent on a reused server connection is kept up to this size so it can
be sent again on a fresh connection if the server had closed the old one."""

_BACKGROUND: set[asyncio.Task[None]] = set()
"""Tasks nothing else holds (asyncio keeps only weak references)."""


class Frontend:
    """What a frontend's connections share, computed once at start."""

    __slots__ = (
        "name", "backend", "stats", "registry", "stats_page",
        "forwardfor", "server_close", "client_timeout", "loop", "connections",
        "request_timeout", "keepalive_timeout",
        "need", "key_header", "rules", "upstreams", "options", "log", "limit", "own_backend",
    )

    def __init__(
        self, config: Any, upstreams: Upstreams, registry: StatsRegistry,
        loop: asyncio.AbstractEventLoop, rules: RuleEngine | None = None,
        log: FrontendLog | None = None,
    ) -> None:
        if getattr(config, "mode", "http") != "http":
            raise ValueError(f"frontend {config.name}: the l7 tier serves mode http only")
        self.name: str = config.name
        self.loop = loop
        self.backend: Backend | None = (
            upstreams.backend(config.default_backend) if config.default_backend else None
        )
        # What the balancer hashes, taken from each request only when it wants it
        # (None: nothing, a test against None being the cheapest on the hot path).
        balancer = None if self.backend is None else self.backend.balancer
        need = Need.NONE if balancer is None else balancer.need
        self.need: Need | None = None if need is Need.NONE else need
        self.key_header: bytes | None = None if balancer is None else balancer.header
        self.stats: FrontendStats = registry.frontend(config.name)
        # A `listen`'s backend half: HAProxy counts there the bytes of the requests
        # no backend took (stats, rule answers), its stream's backend until then.
        self.own_backend: BackendStats | None = registry.proxy(config.name).backend
        self.registry = registry
        stats = getattr(config, "stats", None)
        self.stats_page: StatsService | None = None if stats is None else StatsService(
            stats, registry,
            serves_metrics(config, lambda name: bool(upstreams.backend(name).servers)))
        # None: no rules, every request goes to ``backend`` (the default_backend).
        self.rules = rules
        self.upstreams = upstreams
        # Both options work from either side of the proxy, as in HAProxy.
        options = frozenset(config.options or ())
        self.options = options
        if self.backend is not None:
            options |= self.backend.options
        self.forwardfor = "forwardfor" in options
        self.server_close = "http-server-close" in options
        client_ms = getattr(config.timeouts, "client", None)
        self.client_timeout = None if client_ms is None else client_ms / 1000.0
        # ``timeout http-request``: a request head must arrive within it, counted
        # from its first byte (from the accept for the first request).
        # ``timeout http-keep-alive`` (else http-request): how long a connection
        # may wait for its next request.
        request_ms = getattr(config.timeouts, "http_request", None)
        keepalive_ms = getattr(config.timeouts, "http_keep_alive", None)
        if keepalive_ms is None:
            keepalive_ms = request_ms
        self.request_timeout = None if request_ms is None else request_ms / 1000.0
        self.keepalive_timeout = None if keepalive_ms is None else keepalive_ms / 1000.0
        self.connections: set[ClientConnection] = set()
        # None: the frontend logs nothing, and its connections take no log hooks.
        self.log = log
        # None: no maxconn applies (start_frontend sets it).
        self.limit: ConnectionLimit | None = None


# Exchange kinds.
PROXY, STATS, BAD, ANSWER = 0, 1, 2, 3


class Exchange:
    """One request on a client connection, from its head to the end of its response."""

    __slots__ = (
        "kind", "version", "keep_alive", "head_only", "chunked", "stats", "streams", "started",
        "pending", "pending_size", "request_done", "response_started", "response_done",
        "close_after", "upstream", "connecting", "replay", "replay_size", "retried",
        "key", "backend", "server", "route", "answer", "upgrade", "early", "cookie",
        "log", "view", "status", "retries", "redispatched", "wait", "wait_timer", "hold",
        "bytes_in", "bytes_out", "first", "begin", "picked", "t_connect", "t_response",
        "served",
    )

    def __init__(self, kind: int, version: bytes, keep_alive: bool, head_only: bool) -> None:
        self.kind = kind
        self.version = version
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.chunked = False
        self.stats: StatsRequest | None = None
        # A request with a body starts as soon as its head is parsed so the body
        # can stream; others start once complete, so that an answer made here
        # (stats, 503) can keep the connection alive.
        self.streams = False
        self.started = False
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.request_done = False
        self.response_started = False
        self.response_done = False
        self.close_after = not keep_alive
        self.upstream: UpstreamConnection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.replay: list[bytes] | None = None
        self.replay_size = 0
        self.retried = False
        # The balancer's key (``Frontend.need``), and the server the exchange holds.
        self.key: bytes | None = None
        self.backend: Backend | None = None
        self.server: Server | None = None
        # Set by the rules: the backend they chose (None: the frontend's default),
        # or the answer made instead of forwarding (kind ANSWER).
        self.route: Backend | None = None
        self.answer = b""
        # The request asks for a protocol switch (Connection: upgrade, no body), and
        # the bytes that followed its head: the tunnel's first bytes if the server
        # answers 101, the next request otherwise.
        self.upgrade = False
        self.early = b""
        # What the request's persistence cookie said (its backend has a ``cookie``).
        self.cookie: CookieRequest[Server] | None = None
        self.log: RequestLog | None = None
        # For rules with stick counters: the request as they saw it, and the
        # status it was answered with, which they are told at the end.
        self.view: RequestView | None = None
        self.status = 0
        # Connection attempts retried, and whether the last went to another server.
        self.retries = 0
        self.redispatched = False
        # Its place in a maxconn queue, and the `timeout queue` timer while there
        # (or the `timeout tarpit` timer of a tarpitted request).
        self.wait: Pending[Server] | None = None
        self.wait_timer: asyncio.TimerHandle | None = None
        # A tarpit: seconds to hold the answer (0: for ever); None otherwise.
        self.hold: float | None = None
        # Bytes of the request and of its response as HAProxy counts them (l7.htx),
        # added to the stats and the log once the exchange is over (``_account``).
        self.bytes_in = 0
        # The client connection's first request (`http-reuse safe` keeps it off
        # other clients' server connections).
        self.first = False
        # For the stats' ctime, rtime, ttime: when its head was parsed and its server
        # given (loop clock), and its %Tc and %Tr (ms; -1 until known).
        self.begin = 0.0
        self.picked = 0.0
        self.t_connect = -1
        self.t_response = -1
        self.served: Server | None = None  # the server it held last
        self.bytes_out = 0


class _Closed(Exception):
    """Raised from a parser callback to stop parsing input of a closed connection."""


class _Rejected(Exception):
    """Raised from a parser callback: the request is bad (a 400), not the parser."""


class _HeadTooLarge(_Rejected):
    """The request head would not fit HAProxy's buffer (HTX_REQUEST_HEAD, MAX_HEAD)."""


class _Unprocessable(_Rejected):
    """A chunked request naming another transfer coding too (HAProxy 2.6: 422)."""


class _NoWebSocketKey(_Rejected):
    """A WebSocket upgrade without Sec-WebSocket-Key (HAProxy 2.6 answers 400)."""


class ClientConnection(asyncio.Protocol):
    """One accepted client connection of a frontend."""

    def __init__(self, fe: Frontend, tls: bool = False) -> None:
        self.fe = fe
        self.loop = fe.loop
        # Accepted on a ``bind ... ssl`` listener (``ssl_fc``).
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.parser = HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(**LENIENCIES_OFF)
        self.queue: deque[Exchange] = deque()
        self.parsing: Exchange | None = None
        self.closed = False
        self._xff = b""
        self._source_key: bytes | None = None
        self._header_key: bytes | None = None  # see _HeaderKeyed
        self._local_port = 0
        self._started_any = False
        # `http-reuse never`: this client's own idle server connection.
        self._private: UpstreamConnection | None = None
        # For frontends with rules: the client's address and the request's headers.
        self._src: Any = None
        self._pairs: list[tuple[bytes, bytes]] = []
        self._fresh = True  # nothing received yet
        self._timer: IdleTimer | None = None
        # ``timeout http-request`` (last: when the current head began) and
        # ``timeout http-keep-alive`` (last: when the connection became idle).
        self._request_timer: IdleTimer | None = None
        self._keepalive_timer: IdleTimer | None = None
        self._reading_paused = False
        self._write_paused = False
        self._upstream_full = False
        # No further request will be read: the connection closes once nothing is
        # left to answer (after input the parser refused, or the client's half-close).
        self._closing = False
        self._corked: list[bytes] | None = None
        self._log: ConnectionLog | None = None
        # The message being parsed.
        self._url = b""
        self._lines: list[bytes] = []
        self._trailers: list[bytes] = []
        self._chunked = False
        self._has_body = False
        self._in_head = False
        # The first Host value, and whether Transfer-Encoding named a coding
        # other than chunked: both refused as HAProxy refuses them.
        self._host: bytes | None = None
        self._foreign_coding = False
        # Upgrade: the Connection header's upgrade token, the Upgrade line, and a
        # body that llhttp left unparsed because of them (see _resume_body).
        self._conn_upgrade = False
        self._upgrade_line: bytes | None = None
        self._length = b"0"
        self._body_head: bytes | None = None
        self._skip_head = False
        # Set once a 101 has turned the connection into a tunnel.
        self._tunnel: Tunnel | None = None
        # Bytes read while a head is incomplete, and the parsed head's size: the
        # first bounds a head arriving over many reads, the second one in a single read.
        self._head_bytes = 0
        self._head_size = 0

    # -- asyncio.Protocol: client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but implement it.
        self.transport = cast(asyncio.Transport, transport)
        fe = self.fe
        stats = fe.stats
        stats.connections += 1
        now_ms = loop_ms(self.loop.time())
        stats.rate.hit(now_ms)
        stats.conn_rate.hit(now_ms)
        stats.current += 1
        if stats.current > stats.peak:
            stats.peak = stats.current
        fe.connections.add(self)
        if fe.limit is not None:
            fe.limit.opened()
        sockname = transport.get_extra_info("sockname")
        if sockname:
            self._local_port = sockname[1]
        if fe.log is not None:
            self._log = fe.log.connection(transport.get_extra_info("peername"), sockname,
                                          time.time(), self.loop.time())
        if fe.forwardfor or fe.need is Need.SOURCE:
            peer = transport.get_extra_info("peername")
            if peer:
                if fe.forwardfor:
                    self._xff = header_line(b"x-forwarded-for", str(peer[0]).encode("ascii"))
                if fe.need is Need.SOURCE:
                    self._source_key = source_key(str(peer[0]))
        if fe.rules is not None or (fe.stats_page is not None and fe.stats_page.admin):
            peer = transport.get_extra_info("peername")
            if peer:
                self._src = ip_address(peer[0].partition("%")[0])
        if fe.client_timeout is not None:
            self._timer = IdleTimer(self.loop, fe.client_timeout, self._on_idle)
        if fe.request_timeout is not None:
            self._request_timer = IdleTimer(self.loop, fe.request_timeout,
                                            self._on_request_timeout)
        if fe.keepalive_timeout is not None:
            self._keepalive_timer = IdleTimer(self.loop, fe.keepalive_timeout,
                                              self._on_keepalive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed and self.queue:
            self._client_left(self.queue[0])
        if self._log is not None:
            self._log_ended("C")
        self.closed = True
        fe = self.fe
        fe.stats.current -= 1
        if fe.limit is not None and self in fe.connections:
            fe.limit.closed()
        fe.connections.discard(self)
        self._cancel_timers()
        for ex in self.queue:
            self._drop_upstream(ex)
        self.queue.clear()
        if self._private is not None:
            self._private.close()
            self._private = None

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._timer.last = self.loop.time()
        self._fresh = False
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            # llhttp stops after a request with Connection: upgrade and Upgrade.
            rest = data[exc.args[0]:]
            if self._body_head is not None:
                self._resume_body(rest)
            elif rest and not self.closed:
                if self.queue:
                    self.queue[-1].early += rest
                else:
                    self.data_received(rest)
            return
        except HttpParserError as exc:
            if isinstance(exc.__context__, _Closed):
                return
            if exc.__class__ is HttpParserInvalidMethodError and method_in_progress(data):
                # HAProxy waits for the rest of a request line that begins with a
                # token (e.g. text sent after an Upgrade request the server
                # refused): a 408 at `timeout http-request`, unless it goes bad.
                self.parser = MethodToken()  # type: ignore[assignment]
            else:
                if isinstance(exc, HttpParserCallbackError) and not isinstance(
                    exc.__context__, _Rejected
                ):
                    log.error("bug while parsing a request on %s", self.fe.name,
                              exc_info=exc.__context__)
                self._bad_request(
                    UNPROCESSABLE if isinstance(exc.__context__, _Unprocessable)
                    else BAD_REQUEST)
                return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._bad_request()

    def eof_received(self) -> bool | None:
        if (self._in_head or self._fresh) and not self.queue:
            # HAProxy 2.6 answers a head cut short by the client's close (or a
            # connection closed before its first byte) with a 400, and counts it
            # as a bad request.
            self._refuse_head(BAD_REQUEST)
            return None
        if self._in_head:
            # The same, after answering the requests before it.
            self._bad_request()
            return True
        if self._in_head or self.parsing is not None or not self.queue:
            return None  # nothing complete to answer: close
        ex = self.queue[0]
        if (ex.wait is not None and ex.wait.queued and ex.backend is not None
                and "abortonclose" in ex.backend.options):
            return None  # `option abortonclose`: a queued request is dropped (CQ)
        # The client finished sending (half-close): answer what it asked, then close,
        # without saying so in the answers (as HAProxy: no `connection: close`).
        self._closing = True
        return True

    def pause_writing(self) -> None:
        self._write_paused = True
        if self.queue:
            up = self.queue[0].upstream
            if up is not None and not up.read_paused and up.transport is not None:
                up.read_paused = True
                up.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._timer is not None:
            self._timer.touch()
        if self.queue:
            up = self.queue[0].upstream
            if up is not None and up.read_paused and up.transport is not None:
                up.read_paused = False
                up.transport.resume_reading()

    # -- httptools callbacks: the request

    def on_message_begin(self) -> None:
        if self.closed:
            raise _Closed
        if self._skip_head:
            return
        if self._request_timer is not None:
            self._request_timer.touch()
        self._url = b""
        self._lines = []
        self._trailers = []
        self._chunked = False
        self._has_body = False
        self._in_head = True
        self._host = None
        self._foreign_coding = False
        self._head_bytes = 0
        self._head_size = 0
        self._conn_upgrade = False
        self._upgrade_line = None
        if self.fe.rules is not None:
            self._pairs = []
        if self._log is not None:
            self._log.started(self.loop.time())

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if self.parsing is not None:
            self._trailers.append(header_line(lname, value))
            return
        self._head_size += len(name) + len(value) + HTX_BLOCK
        kind = SPECIAL_HEADERS.get(lname)
        if kind is None and lname == b"host":
            if self._host is None:
                self._host = value
            elif same_host(self._host, value):
                return  # HAProxy forwards the first Host only
            else:
                raise _Rejected
        if self.fe.rules is not None:
            self._pairs.append((lname, value))
        if kind is None:
            self._lines.append(lname + b": " + value + b"\r\n")
        elif kind == CONNECTION:
            line = connection_line(value)
            if line is not None:
                self._lines.append(line)
                self._conn_upgrade = self._conn_upgrade or has_token(value, b"upgrade")
        elif kind == TRANSFER_ENCODING:
            self._chunked = is_chunked(value)
            self._foreign_coding = self._foreign_coding or foreign_coding(value)
            self._has_body = True
            self._lines.append(header_line(lname, value))
        elif kind == CONTENT_LENGTH:
            # llhttp has checked that it is digits only.
            self._has_body = int(value) > 0
            self._length = value
            self._lines.append(header_line(lname, value))
        elif kind == UPGRADE:
            line = header_line(lname, value)
            self._lines.append(line)
            self._upgrade_line = line

    def on_headers_complete(self) -> None:
        if self.closed:
            raise _Closed
        if self._skip_head:
            self._skip_head = False
            self._trailers = []
            return
        if self._head_size + len(self.parser.get_method()) > HTX_REQUEST_HEAD:
            raise _HeadTooLarge
        self._check_target()
        if self._conn_upgrade or self._upgrade_line is not None:
            self._check_upgrade()
        parser = self.parser
        fe = self.fe
        self._in_head = False
        fe.stats.requests += 1
        now = self.loop.time()
        fe.stats.req_rate.hit(loop_ms(now))
        method = parser.get_method()
        version = version_bytes(parser.get_http_version())
        url = self._url
        head_only = method == b"HEAD"
        stats_page = fe.stats_page
        if fe.rules is not None:
            ex = self._apply_rules(fe.rules, method, url, version, head_only)
        elif stats_page is not None and stats_page.wants(method, url):
            fe.stats.intercepted += 1
            ex = Exchange(STATS, version, parser.should_keep_alive(), head_only)
            ex.stats = self._stats_request(method, url, version)
        else:
            ex = Exchange(PROXY, version, parser.should_keep_alive(), head_only)
            ex.chunked = self._chunked
            ex.streams = self._has_body
            need = fe.need
            if need is not None:
                if need is Need.URI:
                    ex.key = url
                elif need is Need.SOURCE:
                    ex.key = self._source_key
                else:
                    ex.key = self._header_key
            ex.upgrade = self._conn_upgrade and not self._has_body
            if self._conn_upgrade:
                # The upgrade token speaks for the connection (HAProxy adds nothing).
                extra = self._xff
            elif fe.server_close:
                # HTTP/1.0 closes without saying so (HAProxy adds nothing then).
                extra = self._xff if version == b"1.0" else self._xff + CONNECTION_CLOSE
            elif version == b"1.0":
                # HTTP/1.0 closes by default; ask the server to keep the connection.
                extra = self._xff + CONNECTION_KEEP_ALIVE
            else:
                extra = self._xff
            lines = self._lines
            backend = fe.backend
            if backend is not None and backend.cookie is not None:
                lines, ex.cookie = backend.cookie.request(lines, method)
            head = request_head(method, url, version, lines, extra)
            ex.pending.append(head)
            ex.pending_size = len(head)
        ex.begin = now
        if self._log is not None:
            applet = None
            if ex.stats is not None:
                applet = STATS_SERVER if ex.stats.service is None else PROMEX_SERVER
            # Set here only where a backend's rule answered (a forwarded request
            # gets its backend later).
            backend_name = None if ex.backend is None else ex.backend.name
            ex.log = self._log.request(method + b" " + url + b" HTTP/" + version,
                                       now, ex.answer, applet, backend_name)
        ex.bytes_in = head_size(len(method) + len(url) + 8, self._lines)
        self.parsing = ex
        self.queue.append(ex)
        if ex.streams and len(self.queue) == 1:
            self._start(ex)

    def _backend_answers(self, ex: Exchange, name: str) -> Backend:
        """A backend's rule answers the request: HAProxy counts it as a request of
        that backend (stot, req_tot, and its bytes and status through ex.backend)."""
        ex.backend = backend = self.fe.upstreams.backend(name)
        backend.stats.requests += 1
        backend.stats.session(self.loop.time())
        return backend

    def _apply_rules(
        self, rules: RuleEngine, method: bytes, url: bytes, version: bytes, head_only: bool
    ) -> Exchange:
        """The exchange for a request of a frontend with rules (see RuleEngine)."""
        fe = self.fe
        keep_alive = self.parser.should_keep_alive()
        view = RequestView(method, url, version, self._pairs, self._src, self._local_port,
                           self.tls)
        # HAProxy closes after an answer when the request body is not read yet.
        decision = rules.decide(view, not keep_alive or self._has_body)
        if decision.answer is not None:
            # Not "intercepted" (stats only); a deny is HAProxy's dreq.
            if decision.denied:
                self.fe.stats.denied += 1
            ex = Exchange(ANSWER, version, keep_alive, head_only)
            if decision.backend is not None:
                # A backend's rule answered: HAProxy counts it in that backend.
                backend = self._backend_answers(ex, decision.backend)
                if decision.denied:
                    backend.stats.denied += 1
            if view.stick is not None:
                ex.view, ex.status = view, decision.status
            ex.answer = decision.answer
            ex.close_after = decision.close
            ex.streams = self._has_body
            if decision.tarpit:
                ex.hold = decision.hold or 0.0
            return ex
        if decision.stats or decision.service is not None:
            ex = Exchange(STATS, version, keep_alive, head_only)
            ex.stats = self._stats_request(method, url, version)
            ex.stats.service = decision.service
            if decision.service is not None and decision.backend is not None:
                # A backend's rule: counted in that backend, not as the frontend's
                # intercepted.
                self._backend_answers(ex, decision.backend)
            else:
                fe.stats.intercepted += 1
            return ex
        ex = Exchange(PROXY, version, keep_alive, head_only)
        if view.stick is not None:
            ex.view = view
        ex.chunked = self._chunked
        ex.streams = self._has_body
        backend = None if decision.backend is None else fe.upstreams.backend(decision.backend)
        ex.route = backend
        options = fe.options if backend is None else fe.options | backend.options
        if backend is not None:
            balancer = backend.balancer
            need = balancer.need
            if need is Need.URI:
                ex.key = view.url
            elif need is Need.SOURCE:
                ex.key = None if self._src is None else source_key(str(self._src))
            elif need is Need.HEADER:
                wanted = balancer.header
                ex.key = next((v for n, v in view.headers if n == wanted), None)
        lines = self._lines
        if decision.edited:
            lines = [line for line in map(_forwarded_line, view.headers) if line is not None]
            if self._has_body:
                lines = [line for line in lines if not line.startswith(b"upgrade:")]
        ex.upgrade = self._conn_upgrade and not self._has_body
        extra = b""
        if "forwardfor" in options and self._src is not None:
            extra = header_line(b"x-forwarded-for", str(self._src).encode("ascii"))
        if self._conn_upgrade:
            pass  # the upgrade token speaks for the connection (HAProxy adds nothing)
        elif "http-server-close" in options:
            if version != b"1.0":
                extra += CONNECTION_CLOSE
        elif version == b"1.0":
            extra += CONNECTION_KEEP_ALIVE
        target = backend or fe.backend
        if target is not None and target.cookie is not None:
            lines, ex.cookie = target.cookie.request(lines, method)
        head = request_head(method, view.url, version, lines, extra)
        ex.pending.append(head)
        ex.pending_size = len(head)
        return ex

    def _check_target(self) -> None:
        """HAProxy's checks of the request line and framing llhttp lets pass: a
        fragment in the target, an absolute target naming another host than the
        Host header (its default port dropped, as HAProxy forwards it), a chunked
        body under another coding too. (A coding that is not chunked in the end,
        llhttp refuses after this callback.)"""
        url = self._url
        if b"#" in url:
            raise _Rejected
        if url[:1] != b"/":
            target = absolute_target(url)
            if target is not None:
                self._url, authority = target
                if self._host is not None and not same_host(self._host, authority):
                    raise _Rejected
        if self._foreign_coding and self._chunked:
            raise _Unprocessable

    def _check_upgrade(self) -> None:
        """HAProxy's checks of an Upgrade request, before any rule sees it."""
        upgrade = self._upgrade_line
        if self._has_body:
            # A request with a body cannot switch protocols: HAProxy forwards it
            # without its Upgrade header. llhttp stops after such a head anyway.
            if upgrade is not None:
                self._lines.remove(upgrade)
                if self._conn_upgrade:
                    self._body_head = (
                        b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
                        if self._chunked else
                        b"POST / HTTP/1.1\r\ncontent-length: %s\r\n\r\n" % self._length
                    )
            return
        if (
            self._conn_upgrade
            and upgrade is not None
            and has_token(upgrade[9:-2], b"websocket")
            and not any(
                line.startswith(b"sec-websocket-key: ") and len(line) > 21
                for line in self._lines
            )
        ):
            raise _NoWebSocketKey

    def _resume_body(self, rest: bytes) -> None:
        """llhttp stopped after the head of an Upgrade request with a body: a fresh
        parser reads the body, fed a head that frames it the same way."""
        head = self._body_head
        assert head is not None
        self._body_head = None
        self.parser = HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(**LENIENCIES_OFF)
        self._skip_head = True
        self.data_received(head + rest)

    def on_body(self, body: bytes) -> None:
        if self.closed:
            raise _Closed
        ex = self.parsing
        assert ex is not None
        ex.bytes_in += len(body)
        if ex.kind == PROXY:
            self._send(ex, chunk(body) if ex.chunked else body)
        elif ex.stats is not None:
            ex.stats.add_body(body)  # a `stats admin` form

    def on_message_complete(self) -> None:
        if self.closed:
            raise _Closed
        if self._body_head is not None:
            return  # llhttp's upgrade pause, before the body: _resume_body reads it
        ex = self.parsing
        assert ex is not None
        self.parsing = None
        if self._chunked:
            ex.bytes_in += CHUNKED_END + fields_size(self._trailers)
        if ex.kind == PROXY and ex.chunked:
            self._send(ex, last_chunk(self._trailers))
        ex.request_done = True
        if not ex.started and self.queue[0] is ex:
            self._start(ex)
        elif ex.response_done:
            self._finish(ex)
        else:
            # Pipelined requests wait until this response is done.
            self._update_reading()

    # -- forwarding the request

    def _send(self, ex: Exchange, data: bytes) -> None:
        up = ex.upstream
        if up is not None:
            assert up.transport is not None
            up.transport.write(data)
            up.touch()
            if ex.replay is not None:
                ex.replay.append(data)
                ex.replay_size += len(data)
                if ex.replay_size > REPLAY_LIMIT:
                    ex.replay = None
        elif not ex.response_done:
            ex.pending.append(data)
            ex.pending_size += len(data)
            if ex.pending_size > PENDING_LIMIT:
                self._update_reading()

    def _start(self, ex: Exchange) -> None:
        """Make the first queued exchange the active one."""
        ex.started = True
        ex.first = not self._started_any
        self._started_any = True
        if ex.kind == STATS:
            self._answer_stats(ex)
            return
        if ex.kind == BAD:
            self._write(ex.answer)
            self._answered(ex, status_of(ex.answer))
            self._close()
            return
        if ex.kind == ANSWER:
            if ex.hold is not None:
                self._tarpit(ex)
            else:
                self._answer(ex)
            return
        backend = ex.route or self.fe.backend
        if backend is None:
            self._generated(ex, 503)
            return
        backend.stats.requests += 1
        now = self.loop.time()
        backend.stats.session(now)
        cookie = ex.cookie
        persist = None
        if cookie is not None:
            persist = cookie.pick(backend.balancer.is_up)
            if ex.log is not None and backend.cookie is not None and backend.cookie.mode:
                ex.log.cookie = cookie  # HAProxy logs no flags for passive cookies
        got = backend.queues.admit(None, now, ex.key, persist)
        ex.backend = backend
        if got.__class__ is Server:
            server = cast(Server, got)
            if persist is not None and server is not persist:
                # `option redispatch`: the cookie's server has its maxqueue waiting;
                # HAProxy logs the cookie as D and the retries with a `+`.
                assert cookie is not None
                cookie.valid = False
                cookie.seen = "D"
                ex.redispatched = True
            if ex.log is not None:
                ex.log.picked(backend, server, now)
                if ex.redispatched:
                    ex.log.record.redispatched = True
            self._serve(ex, server)
        elif isinstance(got, Pending):
            # Every server at its maxconn (or the cookie's one): wait for a slot.
            got.owner = partial(self._dequeued, ex)
            ex.wait = got
            if ex.log is not None:
                ex.log.queued(backend, got.server, now)
            if got.deadline is not None:
                ex.wait_timer = self.loop.call_at(got.deadline, self._queue_expired, ex)
        else:
            full = got.server if isinstance(got, Full) else None
            if ex.log is not None:
                if full is not None:
                    ex.log.queued(backend, full, now)  # HAProxy logs Tw -1 here
                else:
                    ex.log.picked(backend, None, now)
            self._refused(ex, full)

    def _refused(self, ex: Exchange, full: Server | None) -> None:
        """No server and no queue: none usable (SC), or ``full``'s queue is at its
        maxqueue (SQ). HAProxy counts both in econ, a server's when it had one."""
        assert ex.backend is not None
        if full is not None:
            full.stats.connect_errors += 1
        else:
            ex.backend.stats.unassigned_errors += 1
        self._generated(ex, 503, None if full is None else "SQ")

    def _answer(self, ex: Exchange) -> None:
        """Send the answer a rule made."""
        self._write(ex.answer)
        self._answered(ex, status_of(ex.answer))
        ex.bytes_out += message_size(ex.answer)
        ex.response_done = True
        if ex.close_after:
            self._close()
        elif ex.request_done:
            self._finish(ex)

    def _tarpit(self, ex: Exchange) -> None:
        """`http-request tarpit`: the answer waits for `timeout tarpit` (for ever
        without one: the client's leaving ends it)."""
        now = self.loop.time()
        if ex.log is not None:
            ex.log.tarpit(now)
        if ex.hold:
            ex.wait_timer = self.loop.call_later(ex.hold, self._tarpit_over, ex, now)

    def _tarpit_over(self, ex: Exchange, since: float) -> None:
        ex.wait_timer = None
        if self.closed or not self.queue or self.queue[0] is not ex:
            return
        if ex.log is not None:
            ex.log.tarpitted(ex.status or status_of(ex.answer), since, self.loop.time())
        self._answer(ex)

    def _dequeued(self, ex: Exchange, p: Pending[Server], moved: bool = False) -> None:
        """A server freed a slot for the queued ``ex`` (the queue has counted it
        as ``p.server``'s): go on at the next turn of the loop. ``moved``: its
        server stopped taking requests and `option redispatch` balanced it again
        (``Queues.redistribute``), to a server, another queue or a 503."""
        if ex.wait_timer is not None:
            ex.wait_timer.cancel()
            ex.wait_timer = None
        if moved:
            self._moved(ex, p)
            if p.queued or p.refused is not None:
                return
        self.loop.call_soon(self._leave_queue, ex)

    def _moved(self, ex: Exchange, p: Pending[Server]) -> None:
        """HAProxy's redispatch of a request whose server went away from under
        its queue: the cookie's flag D, the log's retries prefixed `+`."""
        ex.redispatched = True
        cookie = ex.cookie
        if cookie is not None and cookie.valid:
            cookie.valid = False
            cookie.seen = "D"
        refused = p.refused
        full = refused.server if isinstance(refused, Full) else None
        if ex.log is not None:
            ex.log.moved(p.server if refused is None else full)
        if refused is not None:
            ex.wait = None
            self._refused(ex, full)
        elif p.queued and p.deadline is not None:
            ex.wait_timer = self.loop.call_at(p.deadline, self._queue_expired, ex)

    def _leave_queue(self, ex: Exchange) -> None:
        p = ex.wait
        if p is None or p.server is None or self.closed or ex.response_done:
            return  # the exchange ended meanwhile and gave the slot back
        server = p.server
        ex.wait = None
        now = self.loop.time()
        if ex.log is not None:
            ex.log.dequeued(server, p, now)
        self._serve(ex, server, int((now - p.since) * 1000))

    def _queue_expired(self, ex: Exchange) -> None:
        """`timeout queue`: still no slot, a 503 (HAProxy logs sQ)."""
        ex.wait_timer = None
        p = ex.wait
        if p is None or not p.queued:
            return
        assert ex.backend is not None
        ex.backend.queues.cancel(p)
        ex.wait = None
        if ex.log is not None:
            ex.log.dequeued(None, p, self.loop.time())
        # HAProxy counts it in econ: the server's whose queue it was in, and always
        # the backend's.
        if p.server is not None:
            p.server.stats.connect_errors += 1
        else:
            ex.backend.stats.unassigned_errors += 1
        self._generated(ex, 503, "sQ")

    def _serve(self, ex: Exchange, server: Server, waited_ms: int = 0) -> None:
        """Send ``ex`` to ``server``, whose slot it holds, after ``waited_ms`` in a
        queue."""
        ex.server = server
        server.sessions += 1
        server.stats.requests += 1
        ex.picked = now = self.loop.time()
        server.stats.session(now)
        server.stats.queue_time.add(waited_ms, server.stats.requests)
        assert ex.backend is not None
        stats = ex.backend.stats
        stats.queue_time.add(waited_ms, stats.requests)
        private = self._private
        if private is not None and private.server is server and not private.closing:
            self._private = None
            up: UpstreamConnection | None = private
        else:
            up = server.take_idle(now, ex.first, ex.backend.reuse)
        if up is not None:
            self._attach(ex, up)
        else:
            ex.connecting = self.loop.create_task(self._connect(ex, server))

    async def _connect(self, ex: Exchange, server: Server) -> None:
        """Connects `ex` to `server`, retrying a failed attempt as HAProxy 2.6
        does (back_handle_st_cer): `retries` more, then a 503. With `option
        redispatch` a retry goes to the server balancing picks again when
        `_redispatch_now` says so. A refused attempt (not a timeout) waits
        MIN(1 s, timeout connect) first when it retries the same server, or when
        the backend has no other active server."""
        backend = ex.backend
        assert backend is not None
        while True:
            try:
                up = await server.connect(self.loop, self._local_port)
                break
            except (OSError, TimeoutError) as exc:
                if self.closed or not self.queue or self.queue[0] is not ex:
                    ex.connecting = None
                    return
                if ex.retries >= backend.retries:
                    ex.connecting = None
                    server.stats.connect_errors += 1
                    self._generated(ex, 503)
                    return
                ex.retries += 1
                failed, redispatch = server, self._redispatch_now(ex, server)
                if redispatch:
                    server = self._redispatch(ex, server)
                if server is failed:
                    server.stats.retries += 1
                if not isinstance(exc, TimeoutError) and (
                        not redispatch or backend.balancer.active_usable <= 1):
                    await asyncio.sleep(backend.turn_around)
                if ex.log is not None:
                    ex.log.retried(server, ex.redispatched)
        ex.connecting = None
        if self.closed or not self.queue or self.queue[0] is not ex or ex.response_done:
            # Nobody needs it any more; a fresh connection is still worth keeping
            # (where connections are shared at all).
            if backend.reuse == "never":
                up.close()
            else:
                server.keep_idle(up, self.loop.time())
            return
        self._attach(ex, up)

    @staticmethod
    def _redispatch_now(ex: Exchange, failed: Server) -> bool:
        """HAProxy 2.6's stream_choose_redispatch: with `option redispatch`, on
        the last retry, when the server is no longer usable, or at once when no
        cookie chose it, the backend has more than one active server and its
        algorithm does not hash (another server does as well)."""
        backend = ex.backend
        assert backend is not None
        if not backend.redispatch:
            return False
        balancer = backend.balancer
        direct = ex.cookie is not None and ex.cookie.valid
        return (not balancer.is_up(failed) or ex.retries == backend.retries
                or (not direct and balancer.active_usable > 1
                    and balancer.need is Need.NONE))

    def _redispatch(self, ex: Exchange, failed: Server) -> Server:
        """The server balancing picks again for a retry, avoiding the one that
        failed as HAProxy's algorithms do (a map-based hash may give it again)."""
        backend = ex.backend
        assert backend is not None
        other = backend.balancer.pick(ex.key, avoid=failed)
        if other is None or other is failed:
            return failed
        failed.stats.redispatches += 1
        backend.balancer.acquire(other)
        failed.sessions -= 1
        other.sessions += 1
        backend.release(failed)
        other.stats.requests += 1
        other.stats.session(self.loop.time())
        ex.server = other
        ex.redispatched = True
        if ex.cookie is not None:
            ex.cookie.valid = False  # the response names the server that answered
        return other

    def _keep(self, ex: Exchange, conn: UpstreamConnection) -> None:
        """A server connection the exchange is done with, kept for the next
        request: the server's pool, or with `http-reuse never` this client's."""
        if ex.backend is not None and ex.backend.reuse == "never":
            if self._private is not None:
                self._private.close()
            self._private = conn
        else:
            conn.server.keep_idle(conn, self.loop.time())

    def _attach(self, ex: Exchange, up: UpstreamConnection) -> None:
        ex.upstream = up
        up.uses += 1
        now = self.loop.time()
        ex.t_connect = int((now - ex.picked) * 1000)
        if ex.log is not None:
            ex.log.connected(now)
        up.attach(self, ex.head_only, ex.upgrade)
        transport = up.transport
        assert transport is not None
        data = b"".join(ex.pending)
        ex.pending = []
        ex.pending_size = 0
        if up.reused:
            up.server.stats.reuses += 1
        else:
            up.server.stats.connects += 1
        if up.reused and not ex.retried and len(data) <= REPLAY_LIMIT:
            ex.replay = [data]
            ex.replay_size = len(data)
        transport.write(data)
        if self._write_paused:
            up.read_paused = True
            transport.pause_reading()
        self._update_reading()

    def _drop_upstream(self, ex: Exchange) -> None:
        """Forget the exchange's server side; its connection is in an unknown state."""
        if ex.connecting is not None:
            ex.connecting.cancel()
            ex.connecting = None
        up = ex.upstream
        if up is not None:
            ex.upstream = None
            ex.bytes_out += up.counted
            up.close()
        self._account(ex)
        self._leave_server(ex)

    @staticmethod
    def _leave_server(ex: Exchange) -> None:
        """The exchange is done with its server: the balancer's count drops, once,
        and the slot goes to a queued request; or it leaves the queue (or tarpit)."""
        if ex.wait_timer is not None:
            ex.wait_timer.cancel()
            ex.wait_timer = None
        p = ex.wait
        if p is not None and p.queued:
            assert ex.backend is not None
            ex.backend.queues.cancel(p)
        elif p is not None and p.server is not None:
            # A slot given to it that it never used.
            ex.wait = None
            assert ex.backend is not None
            ex.backend.release(p.server)
        server = ex.server
        if server is not None:
            ex.server = None
            ex.served = server
            server.sessions -= 1
            assert ex.backend is not None
            ex.backend.release(server)

    # -- the response (UpstreamConnection's sink interface)

    def response_informational(self, head: bytes) -> None:
        log = self.queue[0].log
        if log is not None:
            log.informational()
        self._write(head)

    def response_head(
        self, version: bytes, status: int, reason: bytes, lines: list[bytes], close_delimited: bool
    ) -> None:
        ex = self.queue[0]
        ex.response_started = True
        ex.status = status
        self._answered(ex, status)
        if ex.server is not None:
            ex.server.stats.hrsp[status_class(status)] += 1
        now = self.loop.time()
        if ex.t_connect >= 0:
            ex.t_response = int((now - ex.picked) * 1000) - ex.t_connect
        if ex.log is not None:
            ex.log.responded(status, now)
        if ex.cookie is not None:
            assert ex.backend is not None and ex.backend.cookie is not None
            lines = ex.backend.cookie.response(lines, status, ex.cookie, ex.server)
        if close_delimited:
            ex.close_after = True
        if status == 101:
            extra = b""  # the tunnel follows
        elif ex.close_after:
            extra = CONNECTION_CLOSE
        elif ex.version == b"1.0":
            extra = CONNECTION_KEEP_ALIVE
        else:
            extra = b""
        self._write(response_head(version, status, reason, lines, extra))

    def response_data(self, data: bytes) -> None:
        self._write(data)

    def response_end(self, conn: UpstreamConnection, reusable: bool) -> None:
        ex = self.queue[0]
        ex.upstream = None
        ex.bytes_out += conn.counted
        conn.detach()
        if reusable and ex.request_done and not self.fe.server_close:
            self._keep(ex, conn)
        else:
            conn.close()
        self._account(ex)
        self._leave_server(ex)
        ex.response_done = True
        if not ex.request_done:
            # The server answered before the request body ended; the rest of the
            # body has nowhere to go.
            ex.close_after = True
        self._finish(ex)

    def upstream_failed(self, conn: UpstreamConnection, status: int) -> None:
        ex = self.queue[0]
        if ex.log is not None:
            ex.log.server_failed(status, conn.closing)
        ex.upstream = None
        ex.bytes_out += conn.counted
        conn.close()
        if ex.response_started:
            # Part of a response is out; the client can only learn of the failure
            # from the connection closing.
            self._server_failed(ex, failed=status != 504, aborted=True)
            self._abort()
            return
        if status == 502 and conn.reused and ex.replay is not None and not ex.retried:
            # The server had closed the pooled connection: send again on a fresh one.
            ex.retried = True
            ex.pending = ex.replay
            ex.pending_size = ex.replay_size
            ex.replay = None
            ex.connecting = self.loop.create_task(self._connect(ex, conn.server))
            return
        self._server_failed(ex, failed=True, aborted=False)
        self._generated(ex, status)

    def _server_failed(self, ex: Exchange, failed: bool, aborted: bool) -> None:
        """HAProxy's counts of a response its server failed: eresp (``failed``: no
        valid head came, SH sH PH, or the body was cut short, SD) on the backend
        and server, srv_abrt (``aborted``: mid-body, SD sD) on the frontend too."""
        backend, server = ex.backend, ex.server
        assert backend is not None
        if aborted:
            self.fe.stats.server_aborts += 1
            backend.stats.server_aborts += 1
            if server is not None:
                server.stats.server_aborts += 1
        if failed:
            backend.stats.failed_responses += 1
            if server is not None:
                server.stats.failed_responses += 1

    def _client_left(self, ex: Exchange) -> None:
        """The client connection ends (closed, reset, `timeout client`) while ``ex``
        holds a server and its response is not done: HAProxy's cli_abrt on the
        frontend, backend and server (CD, cD, a request body cut short)."""
        server = ex.server
        if server is None or ex.response_done:
            return
        assert ex.backend is not None
        self.fe.stats.client_aborts += 1
        ex.backend.stats.client_aborts += 1
        server.stats.client_aborts += 1

    def upstream_write_paused(self, paused: bool) -> None:
        self._upstream_full = paused
        self._update_reading()

    def response_switched(self, conn: UpstreamConnection, rest: bytes) -> None:
        """The server's 101 is out: the connection becomes a tunnel to it."""
        ex = self.queue[0]
        ex.upstream = None
        ex.bytes_out += conn.counted
        if len(self.queue) > 1 or self.transport is None or conn.transport is None:
            # Requests pipelined behind an upgrade: the bytes are HTTP, not a tunnel.
            conn.close()
            self._abort()
            return
        self.queue.clear()
        self._cancel_timers()
        backend = ex.backend
        assert backend is not None and ex.server is not None
        timeout = tunnel_timeout(
            backend.tunnel_timeout, self.fe.client_timeout, ex.server.server_timeout
        )
        self._tunnel = Tunnel(
            self.loop, self.transport, conn.transport, timeout,
            lambda exc: self._tunnel_closed(ex, exc),
            client_full=self._write_paused, server_full=self._upstream_full,
        )
        self._tunnel.send(rest, ex.early)

    def _tunnel_closed(self, ex: Exchange, exc: Exception | None) -> None:
        tunnel = self._tunnel
        assert tunnel is not None
        # HAProxy counts what went through the tunnel, both ways.
        ex.bytes_in += tunnel.client.count
        ex.bytes_out += tunnel.server.count
        self._account(ex)
        self._leave_server(ex)
        now = self.loop.time()
        self._times(ex, now)
        if ex.log is not None:
            assert self._log is not None
            self._log.end(ex.log, now)
        self.connection_lost(exc)

    # -- answers pyxlb makes itself

    def _stats_request(self, method: bytes, url: bytes, version: bytes) -> StatsRequest:
        return StatsRequest(RequestView(method, url, version, headers_of(self._lines),
                                        self._src, self._local_port, self.tls))

    def _answer_stats(self, ex: Exchange, shown: StatsRegistry | None = None) -> None:
        """The stats page's answer, or a `use-service` service's."""
        page = self.fe.stats_page
        registry = self.fe.registry
        assert ex.stats is not None
        if shown is None and registry.collect is not None:
            # Several processes serve (nbthread): every one's counters first.
            task = self.loop.create_task(self._answer_stats_totals(ex))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
            return
        close = ex.close_after or not ex.request_done
        if ex.stats.service is not None:  # prometheus-exporter, the only one
            answer = metrics_answer(shown or registry.fresh(), ex.head_only, close)
        else:
            assert page is not None
            answer = page.respond(ex.stats, ex.head_only, close, shown)
        ex.bytes_out += chunked_reply_size(answer, ex.head_only)
        self._write(answer)
        self._answered(ex, status_of(answer))
        ex.response_done = True
        if close:
            self._close()
        elif ex.request_done:
            self._finish(ex)

    async def _answer_stats_totals(self, ex: Exchange) -> None:
        shown = await self.fe.registry.current()
        if not self.closed and self.queue and self.queue[0] is ex:
            self._answer_stats(ex, shown)

    def _generated(self, ex: Exchange, status: int, termination: str | None = None) -> None:
        """A 502/503/504 page instead of the server's response; ``termination``: the
        log's %ts when not the usual one for the status."""
        ex.status = status
        if ex.log is not None:
            ex.log.generated(status, termination)
        self._drop_upstream(ex)
        close = ex.close_after or not ex.request_done
        answer = error_response(status, close)
        ex.bytes_out += message_size(answer)
        self._write(answer)
        self._answered(ex, status)
        ex.response_done = True
        if close:
            self._stick_done(ex)
            self._close()
        else:
            self._finish(ex)

    def _bad_request(self, answer: bytes = BAD_REQUEST) -> None:
        """The parser rejected the input: answer 400 (or ``answer``) in turn, then close."""
        if self.closed:
            return
        fe = self.fe
        fe.stats.bad_requests += 1
        self._closing = True
        self._update_reading()
        ex = self.parsing
        self.parsing = None
        if ex is None:
            # The head itself was bad: it is a request HAProxy counts.
            fe.stats.requests += 1
            fe.stats.req_rate.hit(loop_ms(self.loop.time()))
        elif self.queue and self.queue[0] is ex:
            # The body of the active request was bad.
            self._drop_upstream(ex)
            if not ex.response_started:
                self._write(answer)
            self._close()
            return
        else:
            self.queue.remove(ex)
        bad = Exchange(BAD, b"1.1", False, False)
        bad.answer = answer
        if self._log is not None:
            bad.log = self._log.bad_request()
        bad.request_done = True
        bad.streams = True
        self.queue.append(bad)
        if len(self.queue) == 1:
            self._start(bad)

    # -- connection state

    def _stick_done(self, ex: Exchange) -> None:
        """Tells the stick counters how a tracked request ended (its HTTP error)."""
        if ex.view is not None:
            rules = self.fe.rules
            assert rules is not None and rules.stick is not None
            rules.stick.finish(ex.view, ex.status, ex.hold is not None)
            ex.view = None

    def _times(self, ex: Exchange, now: float) -> None:
        """A served exchange's %Tc, %Tr and %Tt into its server's and backend's
        ctime, rtime, ttime (HAProxy's stream_update_time_stats: only those that
        got a server's response head). %Tt runs from its head's parsing: HAProxy's
        also counts the idle time before a keep-alive request."""
        server, backend = ex.server or ex.served, ex.backend
        if server is None or backend is None or ex.t_response < 0:
            return
        total = int((now - ex.begin) * 1000)
        add_times(server.stats, ex.t_connect, ex.t_response, total)
        add_times(backend.stats, ex.t_connect, ex.t_response, total)

    def _finish(self, ex: Exchange) -> None:
        """The exchange's request and response are both done."""
        self.queue.popleft()
        self._stick_done(ex)
        self._account(ex)
        now = self.loop.time()
        self._times(ex, now)
        if ex.log is not None:
            assert self._log is not None
            self._log.end(ex.log, now)
        if ex.close_after or self._closing and not self.queue:
            self._close()
            return
        if ex.early:
            # No switch after all: what followed the Upgrade request is HTTP.
            self.loop.call_soon(self._feed_early, ex.early)
        if self._timer is not None:
            self._timer.touch()
        if self._keepalive_timer is not None:
            self._keepalive_timer.touch()
        if self._request_timer is not None and self._in_head and not self.queue:
            self._request_timer.touch()  # a pipelined head's time starts now
        if self.queue:
            nxt = self.queue[0]
            if nxt.streams or nxt.request_done:
                self._start(nxt)
        if not self.closed:
            self._update_reading()

    def _answered(self, ex: Exchange, status: int) -> None:
        """HAProxy's hrsp_* counts: the frontend's, and the backend's once the
        request has one."""
        n = status_class(status)
        self.fe.stats.hrsp[n] += 1
        if ex.backend is not None:
            ex.backend.stats.hrsp[n] += 1

    def _account(self, ex: Exchange) -> None:
        """Adds the exchange's bytes to the stats of its frontend, backend and server
        (the one it holds: call before ``_leave_server``) and to what the log counts
        as sent; once, the counts start again from 0."""
        bytes_in, bytes_out = ex.bytes_in, ex.bytes_out
        if not (bytes_in or bytes_out):
            return
        ex.bytes_in = ex.bytes_out = 0
        stats = self.fe.stats
        stats.bytes_in += bytes_in
        stats.bytes_out += bytes_out
        backend = ex.backend
        if backend is not None:
            backend.stats.bytes_in += bytes_in
            backend.stats.bytes_out += bytes_out
            server = ex.server
            if server is not None:
                server.stats.bytes_in += bytes_in
                server.stats.bytes_out += bytes_out
        elif self.fe.own_backend is not None:
            self.fe.own_backend.bytes_in += bytes_in
            self.fe.own_backend.bytes_out += bytes_out
        if self._log is not None:
            self._log.sent += bytes_out

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        queue = self.queue
        pause = (
            self._closing
            or self._upstream_full
            # Pipelining: do not read the next request before this one is answered.
            or (bool(queue) and queue[-1].request_done)
            or (bool(queue) and queue[-1].pending_size > PENDING_LIMIT)
        )
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked.append(data)
        elif self.transport is not None and not self.closed:
            self.transport.write(data)

    def cork(self) -> None:
        """Hold writes until ``uncork``: one write, one syscall, per server read."""
        self._corked = []

    def uncork(self) -> None:
        corked = self._corked
        self._corked = None
        if corked:
            self._write(b"".join(corked))

    def _close(self) -> None:
        """Close after what was written has been sent."""
        self._end(abort=False)

    def _abort(self) -> None:
        """Close at once, dropping what is not sent yet."""
        self._end(abort=True)

    def _end(self, abort: bool) -> None:
        if self.closed:
            return
        if self._log is not None:
            self._log_ended("C")
        self.closed = True
        for ex in self.queue:
            self._drop_upstream(ex)
        if self.transport is not None:
            if abort:
                self.transport.abort()
                return
            if self.transport.can_write_eof():
                # FIN first, as HAProxy's shutw: closing with bytes still unread
                # (a trickling client's) sends a RST, which must not come first.
                self.transport.write_eof()
            self.transport.close()

    def _on_idle(self) -> bool:
        """``timeout client`` expired; True keeps watching."""
        queue = self.queue
        if queue and (self._write_paused or (queue[0] is self.parsing
                                             and not queue[0].response_started)):
            self._client_left(queue[0])  # before the log's ending lets its server go
        if self._log is not None and (self._write_paused or not self.queue
                                      or self._in_head or self.parsing is not None):
            self._log_ended("c")
        if self._write_paused:
            # The client stopped reading its response.
            self._abort()
            return False
        if self._in_head or self.parsing is not None:
            # A request is arriving too slowly.
            if not queue:
                self._refuse_head(REQUEST_TIMEOUT)
            elif queue[0] is self.parsing and not queue[0].response_started:
                self._drop_upstream(queue[0])
                self._write(REQUEST_TIMEOUT)
            self._close()
            return False
        if queue:
            return True  # waiting for a server: ``timeout server`` governs
        if self._fresh:
            # HAProxy 2.6 answers a connection that never sent a byte with a 408 too.
            self._refuse_head(REQUEST_TIMEOUT)
        # An idle keep-alive connection closes silently.
        self._close()
        return False

    def _on_request_timeout(self) -> bool:
        """``timeout http-request`` expired; True keeps watching."""
        if self.queue or not (self._in_head or self._fresh):
            # No request head on its way, or one pipelined behind requests still
            # being answered (HAProxy would not have read it yet).
            return True
        if self._log is not None:
            self._log_ended("c")
        self._refuse_head(REQUEST_TIMEOUT)
        self._close()
        return False

    def _refuse_head(self, answer: bytes) -> None:
        """Answers a request whose head never came whole (a 408, or a 400 when the
        client closed), counted as HAProxy 2.6 counts it: req_tot, ereq, hrsp_4xx."""
        self._write(answer)
        stats = self.fe.stats
        stats.requests += 1
        stats.req_rate.hit(loop_ms(self.loop.time()))
        stats.bad_requests += 1
        stats.hrsp[4] += 1

    def _on_keepalive_timeout(self) -> bool:
        """``timeout http-keep-alive`` expired; True keeps watching."""
        if self._fresh or self.queue or self._in_head or self.parsing is not None:
            return True
        # No next request in time: the connection closes silently, as HAProxy's.
        if self._log is not None:
            self._log_ended("c")
        self._close()
        return False

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._request_timer, self._keepalive_timer):
            if timer is not None:
                timer.cancel()

    def _feed_early(self, data: bytes) -> None:
        if not self.closed:
            self.data_received(data)

    def shutdown(self) -> None:
        """Close at once (the frontend is stopping)."""
        if self._log is not None:
            self._log_ended("K")
        if self._tunnel is not None:
            self._tunnel.lost(None)
        self._close()

    def _log_ended(self, cause: str) -> None:
        """The connection ends (`cause`: HAProxy's C, c or K): log the requests it
        cuts short, or its first request that never came."""
        log = self._log
        assert log is not None
        now = self.loop.time()
        if not self.queue and (self._in_head or self._fresh):
            log.unanswered(cause == "c", self._head_bytes if self._in_head else 0, now)
        for ex in self.queue:
            if ex.log is not None and ex.started:
                waiting = ex.wait if ex.wait is not None and ex.wait.queued else None
                self._drop_upstream(ex)  # what the backend counts no longer includes it
                if waiting is not None:
                    # Gone while queued: logged as HAProxy's `option abortonclose` does.
                    ex.log.dequeued(None, waiting, now)
                log.end(ex.log, now, cause)
            ex.log = None


def _forwarded_line(header: tuple[bytes, bytes]) -> bytes | None:
    """A header as forwarded after rewrites: as ``on_header`` treats it."""
    lname, value = header
    kind = SPECIAL_HEADERS.get(lname)
    if kind is None:
        return lname + b": " + value + b"\r\n"
    if kind == CONNECTION:
        return connection_line(value)
    return header_line(lname, value)


class _HeaderKeyed(ClientConnection):
    """A client connection whose backend balances on a header (``balance hdr``):
    it also keeps the raw value of the first such header of each request. A class
    of its own, so that other frontends pay nothing per header for it."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_key = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if (
            self._header_key is None
            and self.parsing is None
            and name.lower() == self.fe.key_header
        ):
            self._header_key = value
        super().on_header(name, value)


async def start_frontend(
    frontend: Any,
    backends: Mapping[str, Any] | Upstreams,
    stats: StatsRegistry,
    rules: RuleEngine | None = None,
    sender: Sender | None = None,
    process_limit: ProcessLimit | None = None,
) -> list[asyncio.AbstractServer]:
    """Listen on every ``bind`` of a ``mode http`` frontend and serve it.

    ``backends`` maps backend names to config backends, or is an ``Upstreams``
    built from them: frontends of one process should share one ``Upstreams`` so
    that they share round-robin positions and server connection pools. A bind
    without an address listens on every IPv4 and IPv6 address. Listening sockets
    set SO_REUSEADDR and SO_REUSEPORT so worker processes can share them.

    ``rules`` runs the frontend's and its backends' rules (``RuleEngine.needed``);
    built here from ``backends`` when those are config backends, with no userlists
    nor stick-table counters: callers with either pass their own.

    ``sender`` sends the frontend's log lines, when it has ``log`` targets.

    With a ``maxconn`` (the frontend's, or ``process_limit``: the `global maxconn`
    shared by all frontends), listeners stop accepting at the limit
    (``listeners.Listener``).
    """
    loop = asyncio.get_running_loop()
    if (rules is None and not isinstance(backends, Upstreams)
            and RuleEngine.needed(frontend, backends)):
        rules = RuleEngine(frontend, backends)
    upstreams = backends if isinstance(backends, Upstreams) else Upstreams(backends, stats)
    await upstreams.resolve(loop)
    fe = Frontend(frontend, upstreams, stats, loop, rules, FrontendLog.build(
        frontend, sender, lambda: (_active_connections(), len(fe.connections))))
    maxconn = getattr(frontend, "maxconn", None) or 0
    if maxconn or process_limit is not None:
        fe.limit = ConnectionLimit(maxconn, process_limit)
    connection = (
        _HeaderKeyed if fe.need is Need.HEADER and rules is None else ClientConnection
    )

    def factory() -> ClientConnection:
        return connection(fe)

    def tls_factory() -> ClientConnection:
        return connection(fe, True)

    # Certificates load before anything listens: a bad one stops the start.
    contexts = [
        server_context(bind.crt, bind.where) if bind.ssl else None for bind in frontend.binds
    ]
    servers: list[asyncio.AbstractServer] = []
    try:
        for bind, context in zip(frontend.binds, contexts, strict=True):
            servers.append(
                await loop.create_server(
                    factory if context is None else tls_factory,
                    host=bind.host,
                    port=bind.port,
                    family=socket.AF_UNSPEC,
                    reuse_address=True,
                    reuse_port=True,
                    ssl=context,
                    # The handshake is part of the request's time (HAProxy counts it in
                    # ``timeout client``).
                    ssl_handshake_timeout=None if context is None else fe.client_timeout,
                )
            )
            for sock in servers[-1].sockets:
                # As HAProxy's http listeners: accepted connections start with
                # delayed ACKs, so a request's ACK leaves with its response.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            if fe.limit is not None:
                servers[-1] = _pausable(loop, servers[-1], fe,
                                        factory if context is None else tls_factory, context)
        for server in servers:
            _frontend_of[server] = fe
    except OSError:
        await close_servers(servers)
        raise
    return servers


def _pausable(loop: asyncio.AbstractEventLoop, server: asyncio.AbstractServer,
              fe: Frontend, factory: Any, context: Any) -> Listener:
    """``server`` as a listener that stops accepting at the frontend's maxconn."""
    def serve(sock: socket.socket) -> Any:
        return loop.create_server(factory, sock=sock, ssl=context,
                                  ssl_handshake_timeout=None if context is None
                                  else fe.client_timeout)

    listener = Listener(loop, server, serve)
    assert fe.limit is not None
    fe.limit.listeners.append(listener)
    return listener


# Which frontend each listener serves, so that closing listeners can also close
# their client connections.
_frontend_of: dict[asyncio.AbstractServer, Frontend] = {}


def _active_connections() -> int:
    """The process's client connections (HAProxy's actconn), for log lines."""
    return sum(len(fe.connections) for fe in dict.fromkeys(_frontend_of.values()))


async def close_servers(servers: Iterable[asyncio.AbstractServer]) -> None:
    """Stop listening, close the frontends' client connections, and wait until the
    listeners are closed."""
    servers = list(servers)
    frontends = []
    for server in servers:
        server.close()
        fe = _frontend_of.pop(server, None)
        if fe is not None and fe not in frontends:
            frontends.append(fe)
    for fe in frontends:
        for conn in list(fe.connections):
            conn.shutdown()
    for server in servers:
        await server.wait_closed()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
