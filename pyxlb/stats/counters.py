"""The live counters behind the stats page, CSV and (later) the runtime API.

One slot object per frontend, backend and server, built once from the config
model. The proxies bump plain int attributes on the slots they looked up at start
(no dict lookups, no locks: each worker's event loop owns its registry), and the
renderers in ``pyxlb.stats.page`` read them.

Proxies are listed as HAProxy lists them: one proxy per section name, so a
``listen`` section (a frontend and a backend of the same name) is one proxy with a
FRONTEND row, its servers and a BACKEND row; ``iid`` numbers them from 1 in
declaration order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyxlb.rates.freq_ctr import FreqCtr

NO_CHECK = "no check"
"""Status of a server without health checks (and, until checks run, of every server)."""

# Status words of a server that takes no new traffic (HAProxy's srv_act/srv_bck
# leave it out): stopped, in maintenance, or drained.
_NOT_UP_STATES = frozenset({"DOWN", "MAINT", "DRAIN"})

TIME_STATS_SAMPLES = 512
"""The window of HAProxy's average times (qtime): the last 512 requests."""


def status_class(status: int) -> int:
    """Where a response status counts in an `hrsp` list: HAProxy's hrsp_1xx to
    hrsp_5xx at 1 to 5, hrsp_other at 0."""
    n = status // 100
    return n if 1 <= n <= 5 else 0


def _hrsp() -> list[int]:
    return [0] * 6


class QueueView(Protocol):
    """A queue as the stats read it (l7.balance.queue): now and at its highest."""

    length: int
    peak: int


@dataclass(slots=True, eq=False)
class QueueTime:
    """HAProxy's qtime and qtime_max (ms): the time requests that reached a server
    waited in a queue (%Tw), summed exactly until the proxy or server has seen
    TIME_STATS_SAMPLES requests, then as a sliding sum over that many
    (swrate_add_dynamic); the average divides by the requests seen (stot, at most
    the window), so requests that never reached a server count as no wait."""

    total: int = 0
    top: int = 0

    def add(self, ms: int, requests: int) -> None:
        """A request that waited ``ms`` reached a server; ``requests``: stot now."""
        if requests > TIME_STATS_SAMPLES:
            self.total += ms - (self.total + TIME_STATS_SAMPLES - 1) // TIME_STATS_SAMPLES
        else:
            self.total += ms
        if ms > self.top:
            self.top = ms

    def average(self, requests: int) -> int:
        n = min(requests, TIME_STATS_SAMPLES)
        return (self.total + n - 1) // n if n else 0


def add_times(slot: ServerStats | BackendStats, t_connect: int, t_response: int,
              t_total: int) -> None:
    """A served request's %Tc, %Tr and %Tt (ms) into the backend's or server's
    ctime, rtime and ttime (HAProxy's stream_update_time_stats: only requests
    that got a server's response head count)."""
    n = slot.requests
    slot.connect_time.add(t_connect, n)
    slot.response_time.add(t_response, n)
    slot.total_time.add(t_total, n)


RATE_PERIOD_MS = 1000
"""HAProxy's stats rates (rate, req_rate, conn_rate): freq_ctr over 1 s periods."""


@dataclass(slots=True, eq=False)
class Rate:
    """HAProxy's events per second and its maximum (rate and rate_max, ...): a
    freq_ctr over 1 s periods (`read_freq_ctr`); the maximum is the largest count
    of one period so far, as `update_freq_ctr()` returns it (sps_max, ...).
    ``now_ms``: the u32 millisecond tick of CLOCK_MONOTONIC (`ms_tick`)."""

    ctr: FreqCtr = field(default_factory=FreqCtr)
    top: int = 0

    def hit(self, now_ms: int) -> None:
        n = self.ctr.update(now_ms, RATE_PERIOD_MS)
        if n > self.top:
            self.top = n

    def read(self, now_ms: int) -> int:
        return self.ctr.read(now_ms, RATE_PERIOD_MS)


def loop_ms(now: float) -> int:
    """The u32 millisecond tick of a loop time (CLOCK_MONOTONIC seconds)."""
    return int(now * 1000) & 0xFFFF_FFFF


RUNNING, DRAINING, STOPPED, MAINT = "running", "draining", "stopped", "maint"
_PHASES = {"DOWN": STOPPED, "MAINT": MAINT, "DRAIN": DRAINING}


def phase_of(status: str) -> str:
    """A server's phase by its status text's first word (`UP 1/3` is running)."""
    return _PHASES.get(status.split(" ", 1)[0], RUNNING)


@dataclass(slots=True)
class StateClock:
    """HAProxy's last_change, down_time and down_trans of a server or a backend,
    in whole seconds of the loop clock: the stats' lastchg, downtime and (for a
    backend) chkdown. A backend moves between RUNNING and STOPPED only.

    `move` keeps srv_update_status's arithmetic (server.c), quirks included: a
    running server that stops starts a down period; leaving it adds the period
    to the downtime, and so does leaving drain; leaving maintenance resets the
    change time before adding, so time in maintenance is never downtime once
    over (seen on 2.6.12: maint 2 s, then ready, reads downtime 0)."""

    last_change: int
    down_time: int = 0
    down_transitions: int = 0
    phase: str = RUNNING

    def move(self, phase: str, now: int) -> None:
        old, self.phase = self.phase, phase
        stopped = (STOPPED, MAINT)
        if phase == old or (old in stopped and phase in stopped):
            return
        if phase in stopped:
            self.down_transitions += 1
        elif old == STOPPED or (old == DRAINING and phase == RUNNING):
            self.down_time += max(0, now - self.last_change)
        self.last_change = now

    def lastchg(self, now: int) -> int:
        return max(0, now - self.last_change)

    def downtime(self, now: int) -> int:
        """srv_downtime / be_downtime: the down periods over, and the one under way."""
        if self.phase in (STOPPED, MAINT):
            return self.down_time + max(0, now - self.last_change)
        return self.down_time


@dataclass(slots=True, eq=False)
class ServerStats:
    """Counters of one server: ``requests`` is HAProxy's stot/lbtot/req_tot for it;
    ``retries`` and ``redispatches`` its wretr and wredis (connections retried on
    it, requests redispatched away from it); ``bytes_in``/``bytes_out`` its bin and
    bout (requests and responses as HAProxy counts them, tunnels included);
    ``hrsp`` its responses by status class (`status_class`); ``connects`` and
    ``reuses`` the requests sent on a new and on a kept server connection."""

    name: str
    sid: int
    weight: int
    backup: bool
    status: str = NO_CHECK
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    retries: int = 0
    redispatches: int = 0
    connect_errors: int = 0  # econ: requests given up when its connections failed
    # eresp, cli_abrt, srv_abrt: responses that failed (SH, sH, PH, SD), exchanges
    # the client left (CD, cD...) and responses the server left (SD, sD).
    failed_responses: int = 0
    client_aborts: int = 0
    server_aborts: int = 0
    hrsp: list[int] = field(default_factory=_hrsp)
    connects: int = 0
    reuses: int = 0
    current: int = 0  # scur: requests on it now (l7.upstream.Server.sessions)
    peak: int = 0  # smax
    maxqueue: int = 0  # the server's `maxqueue` (qlimit), 0: none
    maxconn: int = 0  # the server's `maxconn` (slim), 0: none
    queue: QueueView | None = None  # its queue, once l7 serves the backend
    queue_time: QueueTime = field(default_factory=QueueTime)
    # ctime, rtime, ttime and their maxima (%Tc, %Tr, %Tt of served requests).
    connect_time: QueueTime = field(default_factory=QueueTime)
    response_time: QueueTime = field(default_factory=QueueTime)
    total_time: QueueTime = field(default_factory=QueueTime)
    rate: Rate = field(default_factory=Rate)  # rate, rate_max: sessions per second
    last_session: int = 0  # loop time (s, from 1) of its last session; 0: none
    # Health: whether it has `check` (chkdown and downtime show only then), when its
    # state changed, and the check columns as the daemon's monitor last set them
    # (pyxlb.health.state.check_cells).
    checked: bool = False
    clock: StateClock = field(default_factory=lambda: StateClock(0))
    check_cells: Mapping[str, object] = field(default_factory=dict)

    def session(self, now: float) -> None:
        """A request is sent to it at loop time ``now`` (after ``requests += 1``)."""
        self.rate.hit(loop_ms(now))
        self.last_session = int(now) or 1

    @property
    def is_up(self) -> bool:
        # HAProxy's status text starts with the state: "UP 1/3", "DOWN 0/2", "no check".
        return self.status.split(" ", 1)[0] not in _NOT_UP_STATES


@dataclass(slots=True, eq=False)
class BackendStats:
    """Counters of one backend: ``requests`` counts requests routed to it, served or
    not; ``bytes_in``/``bytes_out`` (bin, bout) and ``hrsp`` (the answers by
    status class, pyxlb's own included) theirs."""

    name: str
    servers: list[ServerStats]
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    hrsp: list[int] = field(default_factory=_hrsp)
    # The part of its econ counted without a server: requests that found none
    # usable, or whose wait in the backend's queue ended at `timeout queue`.
    unassigned_errors: int = 0
    denied: int = 0  # dreq: requests its own http-request rules denied
    # eresp, cli_abrt, srv_abrt, as a server's (HAProxy keeps the backend's apart).
    failed_responses: int = 0
    client_aborts: int = 0
    server_aborts: int = 0
    queue: QueueView | None = None
    queue_time: QueueTime = field(default_factory=QueueTime)
    connect_time: QueueTime = field(default_factory=QueueTime)
    response_time: QueueTime = field(default_factory=QueueTime)
    total_time: QueueTime = field(default_factory=QueueTime)
    rate: Rate = field(default_factory=Rate)
    last_session: int = 0
    clock: StateClock = field(default_factory=lambda: StateClock(0))

    def session(self, now: float) -> None:
        """A request is routed to it at loop time ``now`` (after ``requests += 1``)."""
        self.rate.hit(loop_ms(now))
        self.last_session = int(now) or 1

    def server(self, name: str) -> ServerStats:
        for srv in self.servers:
            if srv.name == name:
                return srv
        raise KeyError(f"backend {self.name!r} has no server {name!r}")

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.servers)

    @property
    def redispatches(self) -> int:
        return sum(s.redispatches for s in self.servers)

    @property
    def connect_errors(self) -> int:
        return self.unassigned_errors + sum(s.connect_errors for s in self.servers)

    @property
    def active_up(self) -> int:
        return sum(1 for s in self.servers if not s.backup and s.is_up)

    @property
    def backup_up(self) -> int:
        return sum(1 for s in self.servers if s.backup and s.is_up)

    @property
    def weight(self) -> int:
        # HAProxy shows the total weight of the servers taking traffic: the active
        # ones, or the backups when no active server is up.
        backup = self.active_up == 0
        return sum(s.weight for s in self.servers if s.backup == backup and s.is_up)

    @property
    def status(self) -> str:
        # A backend without servers (a `listen stats`) is UP, as HAProxy shows it.
        return "UP" if self.active_up or self.backup_up or not self.servers else "DOWN"

    @property
    def lbtot(self) -> int:
        return sum(s.requests for s in self.servers)


@dataclass(slots=True, eq=False)
class FrontendStats:
    """Counters of one frontend.

    ``connections``: accepted connections (HAProxy's stot and conn_tot: one session
    per HTTP/1 connection). ``requests``: every request, stats and bad ones
    included (req_tot). ``intercepted``: requests answered by pyxlb itself (stats).
    ``bad_requests``: requests that failed to parse (ereq). ``bytes_in``,
    ``bytes_out``: bin and bout, every request and response included. ``current``
    and ``peak``: open connections now and at most (scur, smax). ``denied``:
    requests a rule answered with a deny (dreq). ``hrsp``: every answer by status
    class (`status_class`), pyxlb's own included. ``client_aborts`` and
    ``server_aborts``: HAProxy's fe_counters cli_aborts and srv_aborts (its CSV
    leaves them out of FRONTEND rows).
    """

    name: str
    connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    requests: int = 0
    intercepted: int = 0
    bad_requests: int = 0
    current: int = 0
    peak: int = 0
    denied: int = 0
    client_aborts: int = 0
    server_aborts: int = 0
    hrsp: list[int] = field(default_factory=_hrsp)
    # rate (sessions), conn_rate (connections; one session each here) and
    # req_rate, per second, with their maxima.
    rate: Rate = field(default_factory=Rate)
    conn_rate: Rate = field(default_factory=Rate)
    req_rate: Rate = field(default_factory=Rate)


@dataclass(slots=True, eq=False)
class ProxyStats:
    """One proxy (section name) as the stats page shows it; ``tls``: its frontend
    has an ssl bind; ``maxconn``: its frontend's, where the config sets one (slim)."""

    name: str
    iid: int
    mode: str
    tls: bool = False
    maxconn: int | None = None
    frontend: FrontendStats | None = None
    backend: BackendStats | None = None


def _by_position(sections: list[Any]) -> list[Any]:
    """Sections that know where they were declared, in declaration order.

    Files rank in the order their first section appears (the config model keeps
    sections in load order), lines within a file.
    """
    placed = [s for s in sections if getattr(s, "where", None) is not None]
    files: dict[str, int] = {}
    for s in placed:
        files.setdefault(s.where.file, len(files))
    return sorted(placed, key=lambda s: (files[s.where.file], s.where.line))


@dataclass(slots=True, eq=False)
class StatsRegistry:
    """All counters of one process, proxies in declaration order."""

    proxies: list[ProxyStats] = field(default_factory=list)
    # The server changes of `stats admin` forms: (backend, server, "ready" | "drain" |
    # "maint"); the daemon's ServerAdmin.set_state, None where nothing applies them.
    control: Callable[[str, str, str], None] | None = None
    # Reads counters kept elsewhere (the kernel tier's maps) into the slots; called
    # by `fresh()` before they are shown.
    refresh: Callable[[], None] | None = None
    # With several processes serving (`nbthread`): every process's counters
    # added up, in a copy of this registry (pyxlb.stats.totals); see `current()`.
    collect: Callable[[], Awaitable[StatsRegistry]] | None = None
    # When the figures are read (CLOCK_MONOTONIC seconds, the loop's clock): rates
    # and lastsess are shown as of then; `fresh()` sets it.
    now: float = 0.0

    @classmethod
    def build(
        cls,
        frontends: Iterable[Any] | Mapping[str, Any],
        backends: Iterable[Any] | Mapping[str, Any],
        order: Iterable[str] | None = None,
    ) -> StatsRegistry:
        """Slots for the config model's frontends and backends.

        Proxies come in the order the config declares them, as HAProxy shows them:
        ``order`` lists section names in that order; without it, the sections'
        ``where`` (file, line) decides, and sections without one follow, frontends
        first.
        """
        fe_list = list(frontends.values() if isinstance(frontends, Mapping) else frontends)
        be_list = list(backends.values() if isinstance(backends, Mapping) else backends)
        sections = [*fe_list, *be_list]
        if order is None:
            order = [s.name for s in _by_position(sections)]
        names: list[str] = []
        for name in [*order, *(s.name for s in sections)]:
            if name not in names:
                names.append(name)
        by_name: dict[str, ProxyStats] = {}
        registry = cls()
        started = int(time.monotonic())  # every state's last change, until one comes
        for iid, name in enumerate(names, start=1):
            proxy = ProxyStats(name=name, iid=iid, mode="http")
            by_name[name] = proxy
            registry.proxies.append(proxy)
        for fe in fe_list:
            proxy = by_name[fe.name]
            proxy.mode = getattr(fe, "mode", None) or proxy.mode
            proxy.frontend = FrontendStats(fe.name)
            proxy.tls = any(getattr(b, "ssl", False) for b in getattr(fe, "binds", ()))
            proxy.maxconn = getattr(fe, "maxconn", None)
        for be in be_list:
            proxy = by_name[be.name]
            proxy.mode = getattr(be, "mode", None) or proxy.mode
            servers = [
                ServerStats(s.name, sid, s.weight, bool(s.backup),
                            maxqueue=getattr(s, "maxqueue", 0),
                            maxconn=getattr(s, "maxconn", 0) or 0,
                            checked=bool(getattr(s, "check", False)),
                            clock=StateClock(started, phase=MAINT if getattr(
                                s, "disabled", False) else RUNNING))
                for sid, s in enumerate(be.servers, start=1)
            ]
            # Servers that start disabled are not a change of state, nor is a
            # backend that has only those.
            down = bool(servers) and all(s.clock.phase == MAINT for s in servers)
            proxy.backend = BackendStats(be.name, servers, clock=StateClock(
                started, phase=STOPPED if down else RUNNING))
        # A name used only in ``order`` is not a proxy.
        registry.proxies = [p for p in registry.proxies if p.frontend or p.backend]
        for iid, proxy in enumerate(registry.proxies, start=1):
            proxy.iid = iid
        return registry

    def fresh(self) -> StatsRegistry:
        """The registry, with the counters kept elsewhere read in."""
        if self.refresh is not None:
            self.refresh()
        self.now = time.monotonic()
        return self

    async def current(self) -> StatsRegistry:
        """What to show: `fresh()`, or every process's totals where several serve."""
        if self.collect is not None:
            return await self.collect()
        return self.fresh()

    def proxy(self, name: str) -> ProxyStats:
        for proxy in self.proxies:
            if proxy.name == name:
                return proxy
        raise KeyError(f"no proxy named {name!r}")

    def frontend(self, name: str) -> FrontendStats:
        fe = self.proxy(name).frontend
        if fe is None:
            raise KeyError(f"proxy {name!r} has no frontend")
        return fe

    def backend(self, name: str) -> BackendStats:
        be = self.proxy(name).backend
        if be is None:
            raise KeyError(f"proxy {name!r} has no backend")
        return be
