"""What the l7 proxy logs for its requests, as HAProxy 2.6 does: the `SessionRecord`
of each request filled from the proxy's events, ended with the termination flags
HAProxy gives the same ending, and handed to the `LogSender`.

The proxy holds a `FrontendLog` only for frontends with `log` targets, a
`ConnectionLog` per client connection of those, and a `RequestLog` per request;
everything here is pure: times are the event loop's clock, passed in by the caller at
events it handles anyway, and turned into dates through the connection's offset.

Endings and their `%tsc` (what HAProxy 2.6.12 logged for the same exchange):
deny `PR`, auth challenge and redirect `LR`, stats `LR` with server `<STATS>`, no
server or a refused connection `SC`, `timeout queue` `sQ`, a full maxqueue `SQ`, a
client leaving while queued `CQ`, a server closing before its response head `SH`,
a response head it cannot parse `PH`, `timeout server` before the head `sH`, a server
cutting its body short `SD`, a client gone mid-response `CD` (`cD` on `timeout
client`), a bad request `PR` with `<BADREQ>`, and on a connection's first request,
`timeout http-request`/`client` `cR` (408) and a client closing `CR` (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pyxlb.config.model import LogTarget
from pyxlb.log.format import SessionRecord, connect_line

STATS_SERVER = "<STATS>"
PROMEX_SERVER = "<PROMEX>"  # `http-request use-service prometheus-exporter`


class Sender(Protocol):
    def emit(self, targets: Iterable[LogTarget], level: str, message: str,
             when: float | None = None) -> None: ...

    def log_session(self, frontend: Any, record: SessionRecord,
                    when: float | None = None) -> None: ...


# Counts at log time: (process connections, this frontend's connections).
Connections = Callable[[], tuple[int, int]]


class FrontendLog:
    """A frontend that logs: its config (targets, options) and where lines go."""

    __slots__ = ("config", "sender", "connections", "httplog")

    def __init__(self, config: Any, sender: Sender, connections: Connections) -> None:
        self.config = config
        self.sender = sender
        self.connections = connections
        # Without `option httplog`/`tcplog`, HAProxy logs `Connect from` per stream.
        self.httplog = bool({"httplog", "tcplog"} & config.options)

    @classmethod
    def build(cls, config: Any, sender: Sender | None,
              connections: Connections) -> FrontendLog | None:
        """None when the frontend has no log target (or nothing to send with)."""
        if sender is None or not config.logs:
            return None
        return cls(config, sender, connections)

    def connection(self, client: tuple[Any, ...] | None, local: tuple[Any, ...] | None,
                   wall: float, now: float) -> ConnectionLog:
        """A client connection accepted at `now` (loop clock), `wall` (epoch)."""
        return ConnectionLog(self, client, local, wall - now, now)


class ConnectionLog:
    """One client connection: its addresses, the loop-to-epoch offset, the bytes
    sent to the client so far (as HAProxy counts them), and where the current request
    began."""

    __slots__ = ("fe", "client_ip", "client_port", "local_ip", "local_port", "offset",
                 "accepted", "begin", "sent", "mark", "requests", "ended")

    def __init__(self, fe: FrontendLog, client: tuple[Any, ...] | None,
                 local: tuple[Any, ...] | None, offset: float, now: float) -> None:
        self.fe = fe
        self.client_ip, self.client_port = _address(client)
        self.local_ip, self.local_port = _address(local)
        self.offset = offset
        self.accepted = now
        self.begin = now
        self.sent = 0  # bytes sent to the client as HAProxy counts them (l7.htx; the proxy adds)
        self.mark = 0  # `sent` when the current response began
        self.requests = 0
        self.ended = False  # the connection's end was logged

    def started(self, now: float) -> None:
        """A request's first bytes were parsed."""
        self.begin = now

    def request(self, line: bytes, now: float, answer: bytes = b"",
                applet: str | None = None, backend: str | None = None) -> RequestLog | None:
        """A request head was parsed at `now`: its log, or None when the frontend
        logs in the default format (a `Connect from` line per request, sent here).
        `answer`: the response a rule made instead (its status line says which);
        `applet`: the server name of what answers it in pyxlb (STATS_SERVER,
        PROMEX_SERVER); `backend`: the backend whose rule answered or chose it."""
        self.requests += 1
        fe = self.fe
        if not fe.httplog:
            fe.sender.emit(fe.config.logs, "info", connect_line(
                self.client_ip, self.client_port, self.local_ip, self.local_port,
                fe.config.name, "HTTP"), self.offset + now)
            return None
        record = self._record(self.begin)
        record.request_line = line.decode("utf-8", "surrogateescape")
        record.t_request = _ms(now - self.begin)
        record.bytes_in = 1  # a request arrived: never a null connection
        req = RequestLog(record, self.begin)
        if answer:
            req.answered_locally(int(answer[9:12]))
        elif applet is not None:
            req.applet(applet)
        if backend is not None:
            record.backend = backend
        return req

    def bad_request(self) -> RequestLog | None:
        """The parser rejected what the client sent (400, `PR`; HAProxy logs 0
        bytes sent for it)."""
        self.requests += 1
        if not self.fe.httplog:
            return None
        record = self._record(self.begin)
        record.status, record.termination, record.bytes_in = 400, "PR", 1
        req = RequestLog(record, self.begin)
        req.answered = req.fixed_bytes = True
        return req

    def unanswered(self, timed_out: bool, bytes_in: int, now: float) -> None:
        """The connection ends before its first request was complete: HAProxy logs a
        408 `cR` on a timeout, a 400 `CR` when the client closed; later requests of
        a kept-alive connection end silently."""
        if self.requests or self.ended or not self.fe.httplog:
            return
        self.ended = True
        record = self._record(self.accepted)
        record.status = 408 if timed_out else 400
        record.termination = "cR" if timed_out else "CR"
        record.bytes_in = bytes_in
        record.t_active = _ms(now - self.accepted)
        self._send(record, now)

    def end(self, req: RequestLog, now: float, cause: str | None = None) -> None:
        """The request's exchange is over at `now`. `cause` (`C`, `c`, `K`) is set
        when the connection ended it, unless the request was already answered."""
        record = req.record
        if cause is not None and not req.answered:
            record.termination = cause + req.state()
        if req.cookie is not None:
            record.cookies = req.cookie.seen + req.cookie.sent
        if not req.fixed_bytes:
            record.bytes_out = self.sent - self.mark
        self.mark = self.sent
        record.t_active = _ms(now - req.start)
        backend, server = req.backend, req.server
        if backend is not None:
            served = backend.balancer.served
            # HAProxy's beconn counts the backend's queued requests too.
            queues = getattr(backend, "queues", None)
            record.beconn = (sum(served(s) for s in backend.servers)
                             + (0 if queues is None else queues.total()))
            if server is not None:
                record.srv_conn = server.sessions
        self._send(record, now)

    def _record(self, start: float) -> SessionRecord:
        name = self.fe.config.name
        return SessionRecord(client_ip=self.client_ip, client_port=self.client_port,
                             accept_date=self.offset + self.accepted,
                             request_date=self.offset + start, frontend=name, backend=name)

    def _send(self, record: SessionRecord, now: float) -> None:
        fe = self.fe
        record.actconn, record.feconn = fe.connections()
        record.t_total = _ms(now - self.accepted)  # %Tt, for `option tcplog`
        fe.sender.log_session(fe.config, record, self.offset + now)


class RequestLog:
    """One request's record while it is served; `state()` is HAProxy's session
    state letter for where it stands (R request, C connecting, H waiting for the
    response head, D data)."""

    __slots__ = ("record", "start", "picked_at", "connected_at", "backend", "server",
                 "answered", "fixed_bytes", "server_closed", "queued_at", "cookie")

    def __init__(self, record: SessionRecord, start: float) -> None:
        self.record = record
        self.start = start
        self.picked_at: float | None = None
        self.connected_at: float | None = None
        self.backend: Any = None
        self.server: Any = None
        self.answered = False  # the termination flags are final
        self.fixed_bytes = False
        self.server_closed = False
        self.queued_at: float | None = None
        # The request's persistence cookie (l7.cookies.CookieRequest): its flags
        # (`seen`, `sent`) are the cookie characters of %tsc.
        self.cookie: Any = None

    def picked(self, backend: Any, server: Any, now: float) -> None:
        """The backend's balancer chose `server` (None: none usable) at `now`."""
        record = self.record
        record.backend = backend.name
        self.backend = backend
        if server is not None:
            record.server = server.name
            record.t_queue = 0
            self.server = server
            self.picked_at = now

    def queued(self, backend: Any, server: Any, now: float) -> None:
        """Every server was full at `now`: the request waits in the backend's queue
        (`server` None) or in that of the server its cookie chose."""
        self.record.backend = backend.name
        self.backend = backend
        if server is not None:
            self.record.server = server.name
            self.server = server
        self.queued_at = now

    def dequeued(self, server: Any, pending: Any, now: float) -> None:
        """The request left its queue at `now`, for `server` (None: `timeout queue`
        expired); %Tw is its wait, %sq/%bq HAProxy's positions (`pending`'s)."""
        record = self.record
        if self.queued_at is not None:
            record.t_queue = _ms(now - self.queued_at)
        record.srv_queue, record.backend_queue = pending.srv_pos, pending.be_pos
        if server is not None:
            record.server = server.name
            self.server = server
            self.picked_at = now

    def moved(self, server: Any) -> None:
        """Its server stopped taking requests while it waited in that server's
        queue: balanced again (`option redispatch`), it now waits for `server`
        (None: any, in the backend's queue) and logs its retries `+` prefixed."""
        record = self.record
        record.redispatched = True
        record.server = None if server is None else server.name
        self.server = server

    def retried(self, server: Any, redispatched: bool) -> None:
        """Another connection attempt, to `server` (another one when
        `redispatched`): the log's retries, `+` prefixed after a redispatch."""
        self.record.retries += 1
        if redispatched:
            self.record.redispatched = True
            self.record.server = server.name
            self.server = server

    def connected(self, now: float) -> None:
        """The server connection is there (fresh or from the pool)."""
        if self.picked_at is not None:
            self.record.t_connect = _ms(now - self.picked_at)
        self.connected_at = now

    def responded(self, status: int, now: float) -> None:
        """The server's response head was received."""
        self.record.status = status
        if self.connected_at is not None:
            self.record.t_response = _ms(now - self.connected_at)

    def informational(self) -> None:
        """An interim (1xx) response went to the client: as HAProxy, the status
        reads 0 until the final one, and the request counts as in its data phase
        (a client leaving now ends it `CD`)."""
        self.record.status = 0

    def answered_locally(self, status: int) -> None:
        """A rule answered: auth challenges and redirects are `LR`, denies `PR`."""
        self.record.status = status
        self.record.termination = "LR" if status == 401 or 300 <= status < 400 else "PR"
        self.answered = True

    def tarpit(self, now: float) -> None:
        """A tarpit holds the rule's answer from `now`: not final yet (a client
        leaving meanwhile logs `CT`)."""
        self.answered = False
        self.record.status = -1
        self.record.termination = "--"
        self.queued_at = now

    def tarpitted(self, status: int, since: float, now: float) -> None:
        """The tarpit's answer went out at `now`: HAProxy logs `PT`, %TR -1 and the
        time held as %Tw."""
        record = self.record
        record.status = status
        record.termination = "PT"
        record.t_request = -1
        record.t_queue = _ms(now - since)
        self.answered = True

    def applet(self, server: str) -> None:
        """The stats page or a service answers (`LR`, all times 0)."""
        record = self.record
        record.server = server
        record.status = 200
        record.t_queue = record.t_connect = record.t_response = 0
        record.termination = "LR"
        self.answered = True

    def generated(self, status: int, termination: str | None = None) -> None:
        """pyxlb answered 502/503/504 instead of the server; `termination` when the
        ending is not the status's usual one (`sQ`: timeout queue)."""
        record = self.record
        record.status = status
        if termination is not None:
            record.termination = termination
        elif status == 504:
            record.termination = "sH"
        elif status == 502:
            record.termination = "SH" if self.server_closed else "PH"
        else:
            record.termination = "SC"
        self.answered = True

    def server_failed(self, status: int, closed: bool) -> None:
        """The server connection failed with `status` (504: `timeout server`; 502:
        it `closed`, or sent what is not HTTP). Mid-response the client connection
        is aborted (`SD`, `sD`); before, a retry or `generated` follows."""
        self.server_closed = closed
        if self.record.status > 0:
            self.record.termination = ("s" if status == 504 else "S") + "D"
            self.answered = True

    def state(self) -> str:
        if self.record.status >= 0:
            return "D"
        if self.connected_at is not None:
            return "H"
        if self.picked_at is not None:
            return "C"
        if self.queued_at is not None:
            return "Q" if self.backend is not None else "T"
        return "R"


def _ms(seconds: float) -> int:
    """Whole milliseconds, truncated as HAProxy's are, allowing for float error."""
    return max(0, int(seconds * 1000 + 1e-6))


def _address(addr: tuple[Any, ...] | None) -> tuple[str, int]:
    if not addr:
        return "-", 0
    return str(addr[0]), int(addr[1])
