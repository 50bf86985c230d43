"""Backends as the l7 tier runs them: servers with resolved addresses and pools of
idle keep-alive connections, one balancer per backend, and the protocol that
reads a server's responses and hands them to the client side.

Everything a request needs from a server (address tuple, stats slot, pool, whether
its traffic is observed) is prepared here once, so the per-request path is a
``pick()``, a pool pop and writes.

``Upstreams`` is also where the rest of pyxlb changes servers at run time: health
checks and the runtime API call ``set_server_state``, ``set_server_status`` and
``set_weight``. With ``observe`` on a server line, what its connections and
responses show goes to the ``observer`` given to ``Upstreams`` (HAProxy's
health_adjust calls, with the same HANA_STATUS_* values).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

from pyxlb.health.state import Analyze
from pyxlb.l7.balance import Balancer, make_balancer
from pyxlb.l7.balance.queue import Pending, Queues
from pyxlb.l7.cookies import CookiePersistence
from pyxlb.l7.http1 import (
    CONNECTION,
    CONTENT_LENGTH,
    LENIENCIES_OFF,
    MAX_HEAD,
    SPECIAL_HEADERS,
    TRANSFER_ENCODING,
    UPGRADE,
    chunk,
    connection_line,
    has_token,
    header_line,
    is_chunked,
    last_chunk,
    response_head,
    version_bytes,
)
from pyxlb.l7.htx import CHUNKED_END, fields_size, head_size
from pyxlb.l7.timers import IdleTimer
from pyxlb.stats.counters import (
    RUNNING,
    STOPPED,
    BackendStats,
    ServerStats,
    StatsRegistry,
    phase_of,
)

log = logging.getLogger(__name__)

POOL_IDLE_SECONDS = 5.0
"""Idle server connections older than this are closed instead of reused (HAProxy's
``pool-purge-delay`` default): servers close idle connections on their own timers,
and a request sent on a connection the server is closing is lost."""

POOL_MAX_IDLE = 64
"""Idle connections kept per server; more are closed."""

Observer = Callable[[str, str, Analyze], None]
"""``observer(backend_name, server_name, analyze)``: what traffic to a server with
``observe`` showed (``HealthMonitor.observe`` has this signature)."""


TURN_AROUND_S = 1.0
"""HAProxy's longest pause before retrying a server that refused a connection."""

class Sink(Protocol):
    """The client side of an exchange, as an upstream connection feeds it."""

    def response_informational(self, head: bytes) -> None: ...

    def response_head(
        self, version: bytes, status: int, reason: bytes, lines: list[bytes], close_delimited: bool
    ) -> None: ...

    def response_data(self, data: bytes) -> None: ...

    def response_end(self, conn: UpstreamConnection, reusable: bool) -> None: ...

    def upstream_failed(self, conn: UpstreamConnection, status: int) -> None: ...

    def upstream_write_paused(self, paused: bool) -> None: ...

    def response_switched(self, conn: UpstreamConnection, rest: bytes) -> None: ...

    def cork(self) -> None: ...

    def uncork(self) -> None: ...


class Server:
    """One server of a backend: where it is, its counters and its idle connections."""

    __slots__ = (
        "name", "weight", "backup", "maxconn", "host", "port", "stats", "idle",
        "connect_timeout", "server_timeout", "observe", "_config_host",
    )

    def __init__(
        self,
        config: Any,
        stats: ServerStats,
        connect_timeout: float | None,
        server_timeout: float | None,
        observe: Callable[[Analyze], None] | None = None,
    ) -> None:
        self.name: str = config.name
        self.weight: int = config.weight
        self.backup: bool = bool(config.backup)
        self.maxconn: int = config.maxconn
        self._config_host: str = config.host
        self.host: str = config.host
        # None: the port the client connected to, as HAProxy does.
        self.port: int | None = config.port
        self.stats = stats
        self.idle: list[UpstreamConnection] = []
        # The backend's ``timeout connect`` and ``timeout server``, in seconds.
        self.connect_timeout = connect_timeout
        self.server_timeout = server_timeout
        # None unless the server line says ``observe``: one test per event.
        self.observe = observe

    @property
    def sessions(self) -> int:
        """Requests sent to it now (HAProxy's cur_sess: the log's %sc, the stats'
        scur, whose highest is smax): unlike the balancer's count, not one a freed
        slot went to until it goes on."""
        return self.stats.current

    @sessions.setter
    def sessions(self, count: int) -> None:
        stats = self.stats
        stats.current = count
        if count > stats.peak:
            stats.peak = count

    async def resolve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Turn a host name into an address once, at start (HAProxy resolves at start too)."""
        try:
            ipaddress.ip_address(self._config_host)
            return
        except ValueError:
            pass
        try:
            infos = await loop.getaddrinfo(self._config_host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ValueError(
                f"server {self.name}: cannot resolve {self._config_host!r}: {exc}"
            ) from None
        self.host = infos[0][4][0]

    def take_idle(self, now: float, first: bool = False,
                  reuse: str = "always") -> UpstreamConnection | None:
        """The most recently used idle connection that is still fresh, if
        `http-reuse` lets the request take one: HAProxy's `safe` (its default)
        sends the first request of a client connection over a connection of
        its own; `aggressive` lets it take one that carried two requests or
        more already; `always` any; `never` none (the client keeps its own)."""
        if reuse == "never" or (first and reuse == "safe"):
            return None
        proven_only = first and reuse == "aggressive"
        idle = self.idle
        at = len(idle)
        while at:
            at -= 1
            conn = idle[at]
            if now - conn.idle_since >= POOL_IDLE_SECONDS or conn.closing:
                del idle[at]
                conn.close()
            elif not proven_only or conn.uses > 1:
                del idle[at]
                conn.reused = True
                return conn
        return None

    def keep_idle(self, conn: UpstreamConnection, now: float) -> None:
        """Pool a connection whose exchange is over, for the next request."""
        # A server without a port is reached on whichever port each client used, so
        # its connections are not interchangeable.
        if len(self.idle) >= POOL_MAX_IDLE or self.port is None:
            conn.close()
            return
        conn.idle_since = now
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """Drop a pooled connection the server closed."""
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def close_idle(self) -> None:
        while self.idle:
            self.idle.pop().close()

    async def connect(
        self, loop: asyncio.AbstractEventLoop, client_port: int
    ) -> UpstreamConnection:
        """A new connection; raises OSError or TimeoutError."""
        def factory() -> UpstreamConnection:
            return UpstreamConnection(self, loop, self.server_timeout)

        port = client_port if self.port is None else self.port
        try:
            if self.connect_timeout is None:
                _, conn = await loop.create_connection(factory, self.host, port)
            else:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await loop.create_connection(factory, self.host, port)
        except (OSError, TimeoutError):
            if self.observe is not None:
                self.observe(Analyze.L4_ERR)
            raise
        if self.observe is not None:
            self.observe(Analyze.L4_OK)
        return conn


class Backend:
    """One backend: its servers, its balancer, its counters."""

    __slots__ = (
        "name", "servers", "balancer", "stats", "options", "tunnel_timeout", "cookie",
        "retries", "redispatch", "queues", "turn_around", "reuse",
    )

    def __init__(
        self, config: Any, stats: BackendStats, observer: Observer | None = None
    ) -> None:
        self.name: str = config.name
        self.stats = stats
        self.options: frozenset[str] = frozenset(getattr(config, "options", None) or ())
        # Connection attempts after a failed one (`retries`), the last one to
        # another server with `option redispatch`.
        self.retries: int = getattr(config, "retries", 0)
        self.redispatch = "redispatch" in self.options
        self.reuse: str = getattr(config, "http_reuse", "safe")
        timeouts = getattr(config, "timeouts", None)
        connect_timeout = _seconds(getattr(timeouts, "connect", None))
        server_timeout = _seconds(getattr(timeouts, "server", None))
        self.tunnel_timeout = _seconds(getattr(timeouts, "tunnel", None))
        # The wait before retrying a server that refused: MIN(1 s, timeout connect).
        self.turn_around = min(TURN_AROUND_S, connect_timeout or TURN_AROUND_S)
        self.servers = [
            Server(
                s, stats.server(s.name), connect_timeout, server_timeout,
                None if observer is None or getattr(s, "observe", "none") == "none"
                else partial(observer, self.name, s.name),
            )
            for s in config.servers
        ]
        # Cookie persistence (``cookie`` line), None without: one test per request.
        cookie = getattr(config, "cookie", None)
        self.cookie: CookiePersistence[Server] | None = (
            None if cookie is None else CookiePersistence(
                cookie, [(getattr(c, "cookie", None), s)
                         for c, s in zip(config.servers, self.servers, strict=True)]
            )
        )
        allbackups = "allbackups" in self.options
        try:
            self.balancer: Balancer[Server] = make_balancer(
                getattr(config, "balance", None), self.servers, allbackups,
                getattr(config, "balance_params", None),
                getattr(config, "hash_type", "map-based"),
            )
        except ValueError as exc:
            raise ValueError(f"backend {self.name}: {exc}") from None
        # Requests beyond the servers' maxconn wait here, for `timeout queue` (else
        # `timeout connect`, as HAProxy falls back).
        queue_ms = getattr(timeouts, "queue", None)
        self.queues: Queues[Server] = Queues(
            self.balancer,
            queue_ms / 1000.0 if queue_ms else connect_timeout,
            {id(s): getattr(c, "maxqueue", 0) for c, s in zip(config.servers, self.servers,
                                                               strict=True)},
            self.redispatch,
            "persist" in self.options,
        )
        stats.queue = self.queues.queue_of(None)
        for server in self.servers:
            server.stats.queue = self.queues.queue_of(server)

    def release(self, server: Server) -> None:
        """A request is done with ``server``: its slot goes to the oldest waiter."""
        for p in self.queues.release(server):
            _wake(p)

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        raise ValueError(f"backend {self.name}: no server named {name!r}")


def _wake(p: Pending[Server]) -> None:
    """A queued request got its server: its owner (the proxy's callback) goes on."""
    p.owner(p)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


class Upstreams:
    """Every backend's runtime state (balancer position, pools), shared by all the
    frontends of a process so that they see one round-robin order and one pool.

    ``observer`` receives what traffic to servers with ``observe`` showed; calls come
    from the event loop, in the middle of request processing, so it must not block.
    """

    def __init__(
        self,
        backends: Mapping[str, Any],
        registry: StatsRegistry,
        observer: Observer | None = None,
    ) -> None:
        self._backends = {
            name: Backend(config, registry.backend(config.name), observer)
            for name, config in backends.items()
        }
        self._resolved = False

    async def resolve(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._resolved:
            for backend in self._backends.values():
                for server in backend.servers:
                    await server.resolve(loop)
            self._resolved = True

    def backend(self, name: str) -> Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise ValueError(f"no backend named {name!r}") from None

    def close_idle(self) -> None:
        """Close every pooled connection (at shutdown)."""
        for backend in self._backends.values():
            for server in backend.servers:
                server.close_idle()

    # -- run-time changes (health checks, runtime API), from the event loop

    def set_server_state(
        self, backend: str, server: str, up: bool, status: str | None = None,
        check: Mapping[str, object] | None = None,
    ) -> int:
        """The server may take new requests (``up``) or not (DOWN, MAINT, DRAIN).

        Requests already on it finish; the next pick already sees the change. The
        stats show ``status`` (HAProxy's text, e.g. ``HealthMonitor.status_text``),
        plain ``UP`` or ``DOWN`` without one, and ``check``'s columns when given.
        Going down closes the server's idle connections, as HAProxy does
        (srv_cleanup_connections), and with `option redispatch` balances the
        requests in its queue again (pendconn_redistribute). Returns how many
        requests the change moved: given to other servers, or taken from the
        backend's queue (the logs' "requeued").
        """
        be = self.backend(backend)
        srv = be.server(server)
        be.balancer.set_usable(srv, up)
        self.set_server_status(backend, server, status if status is not None
                               else ("UP" if up else "DOWN"), check)
        moved = 0
        if not up:
            srv.close_idle()
            if be.queues.waiting(srv):
                now = asyncio.get_running_loop().time()
                for p in be.queues.redistribute(srv, now):
                    srv.stats.redispatches += 1  # it is another server's now
                    moved += 1
                    p.owner(p, True)
        else:
            waiting = be.queues.waiting()
            for p in be.queues.dequeue(srv):
                _wake(p)
            moved = waiting - be.queues.waiting()
        return moved

    def set_server_status(self, backend: str, server: str, text: str,
                          check: Mapping[str, object] | None = None) -> None:
        """What the stats show of the server's health: its status text (``UP 2/3``,
        ``DOWN 1/2``, ``DRAIN``) and, when given, its check columns; the server's
        and its backend's state clocks (lastchg, downtime) follow the text."""
        be = self.backend(backend).stats
        srv = be.server(server)
        now = int(time.monotonic())  # the clock StatsRegistry.fresh() reads them by
        srv.status = text
        srv.clock.move(phase_of(text), now)
        be.clock.move(RUNNING if be.status == "UP" else STOPPED, now)
        if check is not None:
            srv.check_cells = check

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        """A new user weight (0-256), as ``set weight`` sets it. Raises ValueError with
        HAProxy's CLI message when the weight is out of range or the backend's
        algorithm is static."""
        be = self.backend(backend)
        srv = be.server(server)
        be.balancer.set_weight(srv, weight)
        srv.stats.weight = weight
        if weight:
            for p in be.queues.dequeue(srv):
                _wake(p)

    def queue_figures(self, backend: str, server: str) -> tuple[int, int]:
        """The server's requests now (cur_sess) and in its queue: what a change of
        its state logs."""
        be = self.backend(backend)
        srv = be.server(server)
        return srv.sessions, be.queues.waiting(srv)

    def served(self, backend: str, server: str) -> int:
        """Requests the server has now (its balancer's acquire/release count)."""
        be = self.backend(backend)
        return be.balancer.served(be.server(server))


class _Garbage(Exception):
    """The server sent bytes after a complete response."""


class _Unsupported(Exception):
    """A response l7 cannot relay: a head over MAX_HEAD, or a 101 Switching
    Protocols that does not answer an upgrade request (a 502, as HAProxy's)."""


def _head_end(data: bytes) -> int:
    """Where a head that ends in ``data`` ends (its CRLFCRLF may start in the
    previous read)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    for tail in (b"\n\r\n", b"\r\n", b"\n"):
        if data.startswith(tail):
            return len(tail)
    return 0


def _new_parser(conn: UpstreamConnection) -> HttpResponseParser:
    parser = HttpResponseParser(conn)
    parser.set_dangerous_leniencies(**LENIENCIES_OFF)
    return parser


class UpstreamConnection(asyncio.Protocol):
    """One connection to a server, carrying one request at a time.

    While attached to a client's exchange (``sink``), it parses the response and
    passes the re-framed head and body to the sink; when the response is complete
    it tells the sink whether the connection can be reused.
    """

    def __init__(
        self, server: Server, loop: asyncio.AbstractEventLoop, server_timeout: float | None
    ) -> None:
        self.server = server
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.sink: Sink | None = None
        self.reused = False
        self.uses = 0  # requests it carried
        self.idle_since = 0.0
        self.closing = False
        self.read_paused = False
        self._server_timeout = server_timeout
        self._timer: IdleTimer | None = None
        self._parser = _new_parser(self)
        self._head_only = False
        self._upgrade = False
        # The bytes of the exchange's response as HAProxy counts them (l7.htx), for
        # logs and stats; they start again at each ``attach``.
        self.counted = 0
        self._reset_exchange()
        self._reset_message()

    def _reset_exchange(self) -> None:
        self._received = False
        self._complete = False
        self._spent = False
        self._keep_alive = False
        self._close_delimited = False

    def _reset_message(self) -> None:
        self._lines: list[bytes] = []
        self._trailers: list[bytes] = []
        self._reason = b""
        self._in_head = False
        self._in_body = False
        self._informational = False
        self._chunked = False
        self._has_length = False
        self._conn_upgrade = False
        self._switching = False
        # Bytes read while the head is incomplete; the parsed head's size.
        self._head_bytes = 0
        self._head_size = 0

    # -- lifetime, used by the client side and the pool

    def attach(self, sink: Sink, head_only: bool, upgrade: bool = False) -> None:
        """Carry an exchange; ``upgrade``: its request asks for a protocol switch,
        so a 101 may answer it."""
        self.sink = sink
        self._head_only = head_only
        self._upgrade = upgrade
        self.counted = 0
        self._reset_exchange()
        if self._timer is not None:
            self._timer.touch()

    def detach(self) -> None:
        self.sink = None
        if self.read_paused:
            self.read_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    def touch(self) -> None:
        """Activity towards the server (request bytes) also counts as server activity."""
        if self._timer is not None:
            self._timer.last = self.loop.time()

    def close(self) -> None:
        self.sink = None
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but implement it.
        self.transport = cast(asyncio.Transport, transport)
        if self._server_timeout is not None:
            self._timer = IdleTimer(self.loop, self._server_timeout, self._on_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        sink = self.sink
        if sink is None:
            self.server.forget(self)
        elif self._in_body and self._close_delimited:
            # A body without length ends when the server closes: that is success.
            self._keep_alive = False
            self._complete = True
            self._finish()
        else:
            # A pooled connection closed before any answer is the pool's race with
            # the server's keep-alive timeout, not a sign of ill health; a body cut
            # short is a server abort, which HAProxy does not count either.
            if not self._in_body and (self._received or not self.reused):
                self._observe(
                    Analyze.HTTP_BROKEN_PIPE if exc is None else Analyze.HTTP_READ_ERROR
                )
            sink.upstream_failed(self, 502)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_write_paused(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_write_paused(False)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            # A server talking while no request is outstanding: the connection's
            # state is unknown, so it must not carry another request.
            self.close()
            return
        self._received = True
        if self._timer is not None:
            self._timer.last = self.loop.time()
        # What one read produces (head, body pieces) goes out in one write.
        sink.cork()
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as exc:
            sink.uncork()
            if self._switching:
                self._switched(data[exc.args[0]:])
            else:
                self._fail(502)
            return
        except HttpParserError as exc:
            if self._switching:
                # A valid 101 without an Upgrade header: llhttp pauses without
                # saying where the head ended.
                sink.uncork()
                self._switched(data[_head_end(data):])
                return
            if self._complete and isinstance(exc.__context__, _Garbage):
                self._keep_alive = False
            else:
                sink.uncork()
                if isinstance(exc, HttpParserCallbackError) and not isinstance(
                    exc.__context__, _Unsupported
                ):
                    log.error("bug while relaying a response from %s", self.server.name,
                              exc_info=exc.__context__)
                self._observe(Analyze.HTTP_RSP if self._in_body else Analyze.HTTP_HDRRSP)
                self._fail(502)
                return
        sink.uncork()
        if self._complete:
            self._finish()
        elif self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._observe(Analyze.HTTP_HDRRSP)
                self._fail(502)

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Garbage
        self._reset_message()
        self._in_head = True

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        self._head_size += len(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if self._in_body:
            self._trailers.append(header_line(lname, value))
            return
        self._head_size += len(name) + len(value) + 4
        kind = SPECIAL_HEADERS.get(lname)
        if kind is None:
            self._lines.append(lname + b": " + value + b"\r\n")
        elif kind == CONNECTION:
            line = connection_line(value)
            if line is not None:
                self._lines.append(line)
                self._conn_upgrade = self._conn_upgrade or has_token(value, b"upgrade")
        elif kind == TRANSFER_ENCODING:
            self._chunked = is_chunked(value)
            self._lines.append(header_line(lname, value))
        elif kind == CONTENT_LENGTH:
            self._has_length = True
            self._lines.append(header_line(lname, value))
        elif kind == UPGRADE:
            self._lines.append(header_line(lname, value))

    def on_headers_complete(self) -> None:
        sink = self.sink
        assert sink is not None
        if self._head_size > MAX_HEAD:
            raise _Unsupported
        parser = self._parser
        status = parser.get_status_code()
        version = version_bytes(parser.get_http_version())
        self._in_head = False
        observe = self.server.observe
        if observe is not None:
            # Interim responses count too (http_wait_for_response).
            observe(Analyze.of_status(status))
        if status < 200:
            if status == 101:
                # HAProxy relays a 101 only for an upgrade request, and only when the
                # server's Connection header says upgrade too.
                if not (self._upgrade and self._conn_upgrade):
                    raise _Unsupported
                self._switching = True
                self._informational = True
                self.counted += head_size(11 + len(self._reason), self._lines)
                sink.response_head(version, status, self._reason, self._lines, False)
                return
            self._informational = True
            self.counted += head_size(11 + len(self._reason), self._lines)
            sink.response_informational(
                response_head(version, status, self._reason, self._lines, b"")
            )
            return
        self._in_body = True
        no_body = self._head_only or status == 204 or status == 304
        self._close_delimited = not no_body and not (self._chunked or self._has_length)
        self._keep_alive = parser.should_keep_alive() and not self._close_delimited
        self.counted += head_size(11 + len(self._reason), self._lines)
        sink.response_head(version, status, self._reason, self._lines, self._close_delimited)
        if self._head_only:
            # llhttp cannot be told that a HEAD response has no body; the exchange
            # ends here and a fresh parser takes the next response.
            self._complete = True
            self._spent = True

    def on_body(self, body: bytes) -> None:
        if self._complete:
            raise _Garbage
        assert self.sink is not None
        self.counted += len(body)
        self.sink.response_data(chunk(body) if self._chunked else body)

    def on_message_complete(self) -> None:
        if self._informational or self._complete:
            return
        assert self.sink is not None
        if self._chunked:
            self.counted += CHUNKED_END + fields_size(self._trailers)
            self.sink.response_data(last_chunk(self._trailers))
        self._keep_alive = self._keep_alive and self._parser.should_keep_alive()
        self._complete = True

    # -- endings

    def _finish(self) -> None:
        sink = self.sink
        assert sink is not None
        reusable = self._keep_alive and not self.closing
        if self._spent:
            self._parser = _new_parser(self)
        self._reset_message()
        self._reset_exchange()
        sink.response_end(self, reusable)

    def _switched(self, rest: bytes) -> None:
        """The 101 is out: the connection leaves HTTP (and this protocol) for a tunnel."""
        sink = self.sink
        assert sink is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sink = None
        self.closing = True  # never pooled again
        sink.response_switched(self, rest)

    def _fail(self, status: int) -> None:
        sink = self.sink
        if sink is not None:
            sink.upstream_failed(self, status)

    def _observe(self, analyze: Analyze) -> None:
        observe = self.server.observe
        if observe is not None:
            observe(analyze)

    def _on_idle(self) -> bool:
        if self.sink is None or self.read_paused:
            # Pooled, or held back by a slow client: the client's timeout governs.
            return True
        if not self._in_body:
            # HAProxy counts a timeout only while it waits for the response head.
            self._observe(Analyze.HTTP_READ_TIMEOUT)
        self._fail(504)
        return False
