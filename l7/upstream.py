"""Backends as the l7 tier runs them: servers with resolved addresses and pools of
idle keep-alive connections, one balancer per backend, and the protocol that
reads a server's responses and hands them to the client side.

Everything a request needs from a server (address tuple, stats slot, pool) is
prepared here once, so the per-request path is a ``pick()``, a pool pop and
writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Mapping
from typing import Any, Protocol, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

from pyxlb.l7.balance import Balancer, make_balancer
from pyxlb.l7.http1 import (
    CONNECTION,
    CONTENT_LENGTH,
    LENIENCIES_OFF,
    MAX_HEAD,
    SPECIAL_HEADERS,
    TRANSFER_ENCODING,
    chunk,
    connection_line,
    header_line,
    is_chunked,
    last_chunk,
    response_head,
    version_bytes,
)
from pyxlb.l7.timers import IdleTimer
from pyxlb.stats.counters import BackendStats, ServerStats, StatsRegistry

log = logging.getLogger(__name__)

POOL_IDLE_SECONDS = 5.0
"""Idle server connections older than this are closed instead of reused (HAProxy's
``pool-purge-delay`` default): servers close idle connections on their own timers,
and a request sent on a connection the server is closing is lost."""

POOL_MAX_IDLE = 64
"""Idle connections kept per server; more are closed."""

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

    def cork(self) -> None: ...

    def uncork(self) -> None: ...


class Server:
    """One server of a backend: where it is, its counters and its idle connections."""

    __slots__ = (
        "name", "weight", "backup", "maxconn", "host", "port", "stats", "idle",
        "connect_timeout", "server_timeout", "_config_host",
    )

    def __init__(
        self,
        config: Any,
        stats: ServerStats,
        connect_timeout: float | None,
        server_timeout: float | None,
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

    def acquire(self, now: float) -> UpstreamConnection | None:
        """The most recently used idle connection that is still fresh, if any."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < POOL_IDLE_SECONDS and not conn.closing:
                conn.reused = True
                return conn
            conn.close()
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
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

    async def connect(
        self, loop: asyncio.AbstractEventLoop, client_port: int
    ) -> UpstreamConnection:
        """A new connection; raises OSError or TimeoutError."""
        def factory() -> UpstreamConnection:
            return UpstreamConnection(self, loop, self.server_timeout)

        port = client_port if self.port is None else self.port
        if self.connect_timeout is None:
            _, conn = await loop.create_connection(factory, self.host, port)
        else:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(factory, self.host, port)
        return conn


class Backend:
    """One backend: its servers, its balancer, its counters."""

    __slots__ = ("name", "servers", "balancer", "stats", "options")

    def __init__(self, config: Any, stats: BackendStats) -> None:
        self.name: str = config.name
        self.stats = stats
        self.options: frozenset[str] = frozenset(getattr(config, "options", None) or ())
        timeouts = getattr(config, "timeouts", None)
        connect_timeout = _seconds(getattr(timeouts, "connect", None))
        server_timeout = _seconds(getattr(timeouts, "server", None))
        self.servers = [
            Server(s, stats.server(s.name), connect_timeout, server_timeout)
            for s in config.servers
        ]
        allbackups = "allbackups" in self.options
        try:
            self.balancer: Balancer[Server] = make_balancer(
                getattr(config, "balance", None), self.servers, allbackups,
                getattr(config, "balance_params", None),
                getattr(config, "hash_type", "map-based"),
            )
        except ValueError as exc:
            raise ValueError(f"backend {self.name}: {exc}") from None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


class Upstreams:
    """Every backend's runtime state (balancer position, pools), shared by all the
    frontends of a process so that they see one round-robin order and one pool."""

    def __init__(self, backends: Mapping[str, Any], registry: StatsRegistry) -> None:
        self._backends = {
            name: Backend(config, registry.backend(config.name))
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
                while server.idle:
                    server.idle.pop().close()


class _Garbage(Exception):
    """The server sent bytes after a complete response."""


class _Unsupported(Exception):
    """A response l7 cannot relay: a head over MAX_HEAD, or 101 Switching
    Protocols (no tunnels yet)."""


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
        self.idle_since = 0.0
        self.closing = False
        self.read_paused = False
        self._server_timeout = server_timeout
        self._timer: IdleTimer | None = None
        self._parser = _new_parser(self)
        self._head_only = False
        self._reset_exchange()
        self._reset_message()

    def _reset_exchange(self) -> None:
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
        # Bytes read while the head is incomplete; the parsed head's size.
        self._head_bytes = 0
        self._head_size = 0

    # -- lifetime, used by the client side and the pool

    def attach(self, sink: Sink, head_only: bool) -> None:
        self.sink = sink
        self._head_only = head_only
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
        if self._timer is not None:
            self._timer.last = self.loop.time()
        # What one read produces (head, body pieces) goes out in one write.
        sink.cork()
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            sink.uncork()
            self._fail(502)
            return
        except HttpParserError as exc:
            if self._complete and isinstance(exc.__context__, _Garbage):
                self._keep_alive = False
            else:
                sink.uncork()
                if isinstance(exc, HttpParserCallbackError) and not isinstance(
                    exc.__context__, _Unsupported
                ):
                    log.error("bug while relaying a response from %s", self.server.name,
                              exc_info=exc.__context__)
                self._fail(502)
                return
        sink.uncork()
        if self._complete:
            self._finish()
        elif self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
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
        elif kind == TRANSFER_ENCODING:
            self._chunked = is_chunked(value)
            self._lines.append(header_line(lname, value))
        elif kind == CONTENT_LENGTH:
            self._has_length = True
            self._lines.append(header_line(lname, value))
        # Upgrade: dropped, no tunnel to relay it through yet.

    def on_headers_complete(self) -> None:
        sink = self.sink
        assert sink is not None
        if self._head_size > MAX_HEAD:
            raise _Unsupported
        parser = self._parser
        status = parser.get_status_code()
        version = version_bytes(parser.get_http_version())
        self._in_head = False
        if status < 200:
            if status == 101:
                raise _Unsupported
            self._informational = True
            sink.response_informational(
                response_head(version, status, self._reason, self._lines, b"")
            )
            return
        self._in_body = True
        no_body = self._head_only or status == 204 or status == 304
        self._close_delimited = not no_body and not (self._chunked or self._has_length)
        self._keep_alive = parser.should_keep_alive() and not self._close_delimited
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
        self.sink.response_data(chunk(body) if self._chunked else body)

    def on_message_complete(self) -> None:
        if self._informational or self._complete:
            return
        assert self.sink is not None
        if self._chunked:
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

    def _fail(self, status: int) -> None:
        sink = self.sink
        if sink is not None:
            sink.upstream_failed(self, status)

    def _on_idle(self) -> bool:
        if self.sink is None or self.read_paused:
            # Pooled, or held back by a slow client: the client's timeout governs.
            return True
        self._fail(504)
        return False
