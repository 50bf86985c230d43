"""What HAProxy 2.6 writes to syslog, without any I/O: the RFC3164 header, the
`option httplog` and `option tcplog` lines built from a `SessionRecord`, the level a
session is logged at (`option log-separate-errors`, `option dontlognull`), and the
server state messages (server.c, srv_update_status; backend.c, set_backend_down).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyxlb.config.logs import FACILITIES, LEVELS

# RFC 5424 numbering: a facility's code is its index, a level's code its index.
FACILITY_CODES = {name: code for code, name in enumerate(FACILITIES)}
LEVEL_CODES = {name: code for code, name in enumerate(LEVELS)}
NO_SERVER = "<NOSRV>"
BAD_REQUEST = "<BADREQ>"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pri(facility: str, level: str) -> int:
    """The syslog PRI: facility*8 + level (local0 info is 134, local0 err 131)."""
    return FACILITY_CODES[facility] * 8 + LEVEL_CODES[level]


def syslog_header(facility: str, level: str, when: float, pid: int, tag: str = "haproxy") -> str:
    """`<PRI>Mmm dd hh:mm:ss haproxy[pid]: ` in local time, no hostname; the day is
    space-padded like HAProxy's `%2d` (`Nov  4`)."""
    t = time.localtime(when)
    return (f"<{pri(facility, level)}>{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tag}[{pid}]: ")


def syslog_datagram(facility: str, level: str, message: str, when: float, pid: int) -> bytes:
    """One whole datagram: header, message and the trailing newline HAProxy sends."""
    return (syslog_header(facility, level, when, pid) + message + "\n").encode(
        "utf-8", "surrogateescape")


@dataclass(slots=True, kw_only=True)
class SessionRecord:
    """What the proxy knows when a request (http) or a connection (tcp) ends.

    Timers are milliseconds, -1 for a step never reached (HAProxy's convention):
    `t_request` %TR (request headers received), `t_queue` %Tw, `t_connect` %Tc,
    `t_response` %Tr (server response headers), `t_active` %Ta (http: request start
    to end of response), `t_total` %Tt (tcp: accept to close).
    `accept_date` is %t (tcplog); `request_date` is %tr (httplog), the start of this
    request on a keep-alive connection, the accept date when None.
    `termination` is the two characters of %ts (cause `-LcCsSPRIDKU`, state
    `-RCHDLQT`); `cookies` the two cookie characters %tsc adds in http.
    `bytes_out` is %B (sent to the client); `bytes_in` what the client sent, only
    for `option dontlognull`. `backend` is the frontend's name when no backend was
    chosen; `server` None prints `<NOSRV>`. `request_line` None prints `<BADREQ>`.
    Counters are at log time: %ac process, %fc frontend, %bc backend, %sc server
    connections; %rc `retries` (prefixed `+` when `redispatched`); %sq/%bq queues.
    """

    client_ip: str
    client_port: int
    accept_date: float
    frontend: str
    backend: str
    server: str | None = None
    request_date: float | None = None
    t_request: int = -1
    t_queue: int = -1
    t_connect: int = -1
    t_response: int = -1
    t_active: int = -1
    t_total: int = -1
    status: int = -1
    bytes_out: int = 0
    bytes_in: int = 0
    termination: str = "--"
    cookies: str = "--"
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False
    srv_queue: int = 0
    backend_queue: int = 0
    request_line: str | None = None


def log_date(when: float) -> str:
    """`%t`/`%tr`: `24/Nov/2026:03:47:15.358`, local time, milliseconds truncated
    (after a microsecond's allowance for float error: dates are sums of clocks)."""
    whole_ms = int(when * 1000 + 0.001)
    t = time.localtime(whole_ms // 1000)
    ms = whole_ms % 1000
    return (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms:03d}")


def encode_request_line(line: str) -> str:
    """%r as HAProxy escapes it (url_encode_map, log.c): control bytes, bytes from
    0x7F, `"` and `#` become `#XX`."""
    out = []
    for byte in line.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if byte < 0x20 or byte >= 0x7F or char in '"#':
            out.append(f"#{byte:02X}")
        else:
            out.append(char)
    return "".join(out)


def _client(r: SessionRecord) -> str:
    # %ci:%cp: HAProxy prints IPv6 addresses bare, as in `::1:40000`.
    return f"{r.client_ip}:{r.client_port}"


def _counters(r: SessionRecord) -> str:
    retries = f"+{r.retries}" if r.redispatched else str(r.retries)
    return (f"{r.actconn}/{r.feconn}/{r.beconn}/{r.srv_conn}/{retries} "
            f"{r.srv_queue}/{r.backend_queue}")


def httplog_line(r: SessionRecord) -> str:
    """`option httplog`: `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS
    %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`; without captures %hr and %hs
    are empty and vanish with their space, and %CC/%CS print `-`."""
    date = r.request_date if r.request_date is not None else r.accept_date
    request = BAD_REQUEST if r.request_line is None else encode_request_line(r.request_line)
    return (f"{_client(r)} [{log_date(date)}] {r.frontend} {r.backend}/{r.server or NO_SERVER} "
            f"{r.t_request}/{r.t_queue}/{r.t_connect}/{r.t_response}/{r.t_active} "
            f"{r.status} {r.bytes_out} - - {r.termination}{r.cookies} {_counters(r)} "
            f'"{request}"')


def tcplog_line(r: SessionRecord) -> str:
    """`option tcplog`: `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc
    %sq/%bq`."""
    return (f"{_client(r)} [{log_date(r.accept_date)}] {r.frontend} "
            f"{r.backend}/{r.server or NO_SERVER} {r.t_queue}/{r.t_connect}/{r.t_total} "
            f"{r.bytes_out} {r.termination} {_counters(r)}")


def session_line(r: SessionRecord, options: frozenset[str]) -> str | None:
    """The line a frontend with these options logs at the end, None when it has no
    log format (it logs a `connect_line` per request instead)."""
    if "httplog" in options:
        return httplog_line(r)
    if "tcplog" in options:
        return tcplog_line(r)
    return None


def connect_line(client_ip: str, client_port: int, local_ip: str, local_port: int,
                 frontend: str, mode: str) -> str:
    """The default format (no `option httplog`/`tcplog`): HAProxy 2.6 logs it at info
    when a stream starts, for http once per request: `Connect from 10.0.0.1:5000 to
    10.0.0.2:80 (fe/HTTP)`."""
    return (f"Connect from {client_ip}:{client_port} to {local_ip}:{local_port} "
            f"({frontend}/{mode})")


def is_error(r: SessionRecord) -> bool:
    """HAProxy's test for an error session (strm_log, log.c): a redispatch, a cause
    other than none or `L`ocal, a retry, or a status of 500 or more."""
    return (r.redispatched or r.termination[0] not in "-L" or r.retries > 0
            or r.status >= 500)


def session_level(r: SessionRecord, options: frozenset[str]) -> str | None:
    """The level a finished session is logged at, None when it is not logged:
    `dontlognull` skips sessions where the client sent nothing;
    `log-separate-errors` raises errors from info to err."""
    if "dontlognull" in options and r.bytes_in == 0:
        return None
    if "log-separate-errors" in options and is_error(r):
        return "err"
    return "info"


def _server_label(backup: bool) -> str:
    return "Backup Server" if backup else "Server"


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """What srv_append_status (server.c) counts after a server's change: its
    sessions now (cur_sess), the requests the change moved (xferred: given to
    other servers when it stops, taken from the backend's queue when it starts)
    and the requests in its own queue."""

    sessions: int = 0
    moved: int = 0
    queued: int = 0


NO_FIGURES = QueueFigures()


def _on_backup(active: int, backups: int) -> str:
    return " Running on backup." if backups and not active else ""


def _servers_left(active: int, backups: int, figures: QueueFigures) -> str:
    return (f"{active} active and {backups} backup servers left.{_on_backup(active, backups)} "
            f"{figures.sessions} sessions active, {figures.moved} requeued, "
            f"{figures.queued} remaining in queue.")


def _servers_online(active: int, backups: int, figures: QueueFigures) -> str:
    return (f"{active} active and {backups} backup servers online."
            f"{_on_backup(active, backups)} {figures.moved} sessions requeued, "
            f"{figures.queued} total in queue.")


def server_down_message(backend: str, server: str, *, backup: bool, reason: str,
                        active_left: int, backup_left: int,
                        figures: QueueFigures = NO_FIGURES) -> str:
    """`Server be/a is DOWN, reason: ...` (srv_update_status). `reason` is what
    `CheckReport.describe()` gives; the counts are taken after the change."""
    return (f"{_server_label(backup)} {backend}/{server} is DOWN, {reason}. "
            + _servers_left(active_left, backup_left, figures))


def server_up_message(backend: str, server: str, *, backup: bool, reason: str,
                      active_online: int, backup_online: int,
                      figures: QueueFigures = NO_FIGURES) -> str:
    """`Server be/a is UP, reason: ...`; the counts include this server."""
    return (f"{_server_label(backup)} {backend}/{server} is UP, {reason}. "
            + _servers_online(active_online, backup_online, figures))


def maint_down_message(backend: str, server: str, *, backup: bool, active_left: int,
                       backup_left: int, figures: QueueFigures = NO_FIGURES) -> str:
    """`Server be/a is going DOWN for maintenance.` (srv_update_status, entering
    maintenance from the runtime API); the counts are taken after the change."""
    return (f"{_server_label(backup)} {backend}/{server} is going DOWN for maintenance. "
            + _servers_left(active_left, backup_left, figures))


def maint_left_message(backend: str, server: str, *, backup: bool, drained: bool) -> str:
    """`Server be/a is UP/READY (leaving forced maintenance).`: no counts."""
    ready = "DRAIN" if drained else "READY"
    return f"{_server_label(backup)} {backend}/{server} is UP/{ready} (leaving forced maintenance)."


def drain_message(backend: str, server: str, *, backup: bool, active_online: int,
                  backup_online: int, figures: QueueFigures = NO_FIGURES) -> str:
    """`Server be/a enters drain state.`; the counts are taken after the change
    (the drained server no longer counts as online)."""
    return (f"{_server_label(backup)} {backend}/{server} enters drain state. "
            + _servers_online(active_online, backup_online, figures))


def drain_left_message(backend: str, server: str, *, backup: bool) -> str:
    """`Server be/a is UP (leaving forced drain).`: no counts."""
    return f"{_server_label(backup)} {backend}/{server} is UP (leaving forced drain)."


def no_server_message(backend: str) -> str:
    """Logged at emerg when a backend's last active and backup server went down."""
    return f"backend {backend} has no server available!"


def server_down_level(was_stopping: bool) -> str:
    """alert, or notice for a server that was already stopping (draining)."""
    return "notice" if was_stopping else "alert"


SERVER_UP_LEVEL = "notice"
NO_SERVER_LEVEL = "emerg"


def server_events(backend: str, server: str, *, up: bool, backup: bool, reason: str,
                  states: Iterable[tuple[bool, bool]],
                  figures: QueueFigures = NO_FIGURES) -> list[tuple[str, str]]:
    """(level, message) pairs HAProxy logs when `server` of `backend` changes
    state. `states` has (is_backup, is_up) for every server of the backend,
    taken after the change, as `figures` are."""
    states = list(states)
    active = sum(1 for is_backup, is_up in states if is_up and not is_backup)
    backups = sum(1 for is_backup, is_up in states if is_up and is_backup)
    if up:
        return [(SERVER_UP_LEVEL, server_up_message(
            backend, server, backup=backup, reason=reason, active_online=active,
            backup_online=backups, figures=figures))]
    events = [(server_down_level(False), server_down_message(
        backend, server, backup=backup, reason=reason, active_left=active,
        backup_left=backups, figures=figures))]
    if not active and not backups:
        events.append((NO_SERVER_LEVEL, no_server_message(backend)))
    return events


ADMIN_CHANGES = ("maint", "maint_left", "drain", "drain_left")


def admin_events(backend: str, server: str, *, change: str, backup: bool, drained: bool,
                 states: Iterable[tuple[bool, bool]],
                 figures: QueueFigures = NO_FIGURES) -> list[tuple[str, str]]:
    """(level, message) pairs HAProxy 2.6 logs when the runtime API moves `server`
    into or out of maintenance or drain (`change`, one of ADMIN_CHANGES).
    `states` has (is_backup, is_usable) for every server, taken after the
    change as `figures` are; `drained`: the server stays drained after leaving maintenance."""
    states = list(states)
    active = sum(1 for is_backup, usable in states if usable and not is_backup)
    backups = sum(1 for is_backup, usable in states if usable and is_backup)
    if change == "maint_left":
        return [(SERVER_UP_LEVEL, maint_left_message(backend, server, backup=backup,
                                                     drained=drained))]
    if change == "drain_left":
        return [(SERVER_UP_LEVEL, drain_left_message(backend, server, backup=backup))]
    if change == "maint":
        events = [(server_down_level(False), maint_down_message(
            backend, server, backup=backup, active_left=active, backup_left=backups,
            figures=figures))]
    elif change == "drain":
        events = [(SERVER_UP_LEVEL, drain_message(
            backend, server, backup=backup, active_online=active, backup_online=backups,
            figures=figures))]
    else:
        raise ValueError(f"unknown change {change!r}")
    if not active and not backups:
        events.append((NO_SERVER_LEVEL, no_server_message(backend)))
    return events
