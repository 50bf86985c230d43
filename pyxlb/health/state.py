"""A server's health as HAProxy 2.6 keeps it: the check counter, the operational
state it drives, passive observation (`observe`, `error-limit`, `on-error`) and
which interval the next check waits.

Pure: `apply(state, event, params)` returns the next state and the effects the
shell must carry out (tell the tiers, log, check sooner). No clock, no sockets.
References are to HAProxy v2.6 src/check.c unless another file is named.

The counter (`check->health`) runs from 0 to rise+fall-1. It starts at rise, so a
server is UP at start-up yet one failed check takes it DOWN. A pass adds one and,
on reaching rise, jumps to rise+fall-1; a failure takes one and, below rise, drops
to 0 (set_server_check_status). The server goes DOWN when the counter is 0 after a
failure (check_notify_failure) and UP when it is at least rise after a pass
(check_notify_success).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from pyxlb.config.model import (
    DEFAULT_ERROR_LIMIT,
    DEFAULT_FALL,
    DEFAULT_INTER_MS,
    DEFAULT_RISE,
    Observe,
    OnError,
)

# HAProxy spreads first checks only over intervals at least this long
# (SRV_CHK_INTER_THRES, include/haproxy/defaults.h).
SPREAD_THRESHOLD_MS = 1000
# check->desc holds HCHK_DESC_LEN (128) bytes, NUL included.
MAX_INFO = 127


class CheckStatus(enum.Enum):
    """The HCHK_STATUS_* values pyxlb's checks produce, with HAProxy's short and long
    names (check_statuses[]) and whether the status counts as a pass."""

    INI = ("INI", "Initializing", None)
    HANA = ("HANA", "Health analyze", False)
    SOCKERR = ("SOCKERR", "Socket error", False)
    L4OK = ("L4OK", "Layer4 check passed", True)
    L4TOUT = ("L4TOUT", "Layer4 timeout", False)
    L4CON = ("L4CON", "Layer4 connection problem", False)
    L7TOUT = ("L7TOUT", "Layer7 timeout", False)
    L7RSP = ("L7RSP", "Layer7 invalid response", False)
    L7OK = ("L7OK", "Layer7 check passed", True)
    L7STS = ("L7STS", "Layer7 wrong status", False)

    def __init__(self, short: str, description: str, passed: bool | None) -> None:
        self.short = short
        self.description = description
        self.passed = passed

    @property
    def shows_code(self) -> bool:
        """Whether messages carry the HTTP code (statuses after HCHK_STATUS_L57DATA)."""
        return self in (CheckStatus.L7OK, CheckStatus.L7STS)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The outcome of one check (or of a health analysis): HAProxy's check->status,
    ->code, ->desc and ->duration. `duration_ms` is -1 when there is none (HANA)."""

    status: CheckStatus
    code: int = 0
    info: str = ""
    duration_ms: int = -1

    def __post_init__(self) -> None:
        if len(self.info) > MAX_INFO:
            object.__setattr__(self, "info", self.info[:MAX_INFO])

    def describe(self) -> str:
        """The reason as HAProxy's logs give it (srv_append_status, server.c), e.g.
        `reason: Layer7 wrong status, code: 500, info: "Oops", check duration: 1ms`."""
        parts = [f"reason: {self.status.description}"]
        if self.status.shows_code:
            parts.append(f"code: {self.code}")
        if self.info:
            info = ascii_encode(self.info, '"')
            parts.append(f'info: "{info}"')
        if self.duration_ms >= 0:
            parts.append(f"check duration: {self.duration_ms}ms")
        return ", ".join(parts)


INITIAL_REPORT = CheckReport(CheckStatus.INI, info="Initializing")


def ascii_encode(text: str, quote: str) -> str:
    """chunk_asciiencode (chunk.c): non-printable bytes, `<`, `>` and the quote
    become `<XX>`."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if byte < 0x20 or byte > 0x7E or char in "<>" or char == quote:
            out.append(f"<{byte:02X}>")
        else:
            out.append(char)
    return "".join(out)


class Analyze(enum.Enum):
    """What the traffic tiers saw on a connection to a server (HANA_STATUS_*), with
    HAProxy's description and its verdict per observe mode (analyze_statuses[]:
    None ignores, False is an error, True is OK) for layer4 and layer7."""

    L4_OK = ("L4 successful connection", True, None)
    L4_ERR = ("L4 unsuccessful connection", False, False)
    HTTP_OK = ("Correct http response", None, True)
    HTTP_STS = ("Wrong http response", None, False)
    HTTP_HDRRSP = ("Invalid http response (headers)", None, False)
    HTTP_RSP = ("Invalid http response", None, False)
    HTTP_READ_ERROR = ("Read error (http)", None, False)
    HTTP_READ_TIMEOUT = ("Read timeout (http)", None, False)
    HTTP_BROKEN_PIPE = ("Close from server (http)", None, False)

    def __init__(self, description: str, layer4: bool | None, layer7: bool | None) -> None:
        self.description = description
        self.verdict = {"layer4": layer4, "layer7": layer7}

    @classmethod
    def of_status(cls, status: int) -> Analyze:
        """A server's HTTP status as `observe layer7` counts it: 501 and 505 are the
        client's doing, so they are OK like 100-499 (http_ana.c,
        http_wait_for_response)."""
        if status >= 100 and (status < 500 or status in (501, 505)):
            return cls.HTTP_OK
        return cls.HTTP_STS


class ServerState(enum.Enum):
    """The operational state the tiers act on."""

    UP = "UP"
    DOWN = "DOWN"
    MAINT = "MAINT"


@dataclass(frozen=True, slots=True)
class CheckParams:
    """A server's check settings, HAProxy's defaults where the config says nothing.

    `fastinter_ms`/`downinter_ms` stay None when not set: the next interval then
    falls back to `inter`, but only a set `fastinter` makes observed errors pull the
    next check in (__health_adjust).
    """

    check: bool = False
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    inter_ms: int = DEFAULT_INTER_MS
    fastinter_ms: int | None = None
    downinter_ms: int | None = None
    observe: Observe = "none"
    error_limit: int = DEFAULT_ERROR_LIMIT
    on_error: OnError = "fail-check"
    disabled: bool = False

    @property
    def top(self) -> int:
        """The counter of a fully healthy server: rise+fall-1."""
        return self.rise + self.fall - 1

    @classmethod
    def of(cls, server: Any) -> CheckParams:
        """The params of a config `Server` (fields it lacks take HAProxy's defaults)."""
        return cls(**{f.name: getattr(server, f.name, f.default)
                      for f in dataclasses.fields(cls)})


@dataclass(frozen=True, slots=True)
class HealthState:
    """One server's health. `running` is HAProxy's next_state != STOPPED; the
    counters are the stats' chkfail, chkdown and hanafail."""

    health: int
    running: bool
    maint: bool = False
    consecutive_errors: int = 0
    failed_checks: int = 0
    down_transitions: int = 0
    hanafail: int = 0
    last: CheckReport = INITIAL_REPORT

    @classmethod
    def initial(cls, params: CheckParams) -> HealthState:
        """At start-up: UP with the counter at rise, or in maintenance with the
        counter at 0 for `disabled` servers (srv_parse_disabled, server.c)."""
        if params.disabled:
            return cls(health=0, running=False, maint=True)
        return cls(health=params.rise, running=True)

    @property
    def server_state(self) -> ServerState:
        if self.maint:
            return ServerState.MAINT
        return ServerState.UP if self.running else ServerState.DOWN


@dataclass(frozen=True, slots=True)
class CheckDone:
    """A check finished with this report."""

    report: CheckReport


@dataclass(frozen=True, slots=True)
class Observed:
    """The traffic tiers saw this on a connection to the server."""

    outcome: Analyze


@dataclass(frozen=True, slots=True)
class SetMaint:
    """`disable server` (True) or `enable server` (False)."""

    on: bool


Event = CheckDone | Observed | SetMaint


@dataclass(frozen=True, slots=True)
class Transition:
    """The server changed state; `report` is the check that caused it, if any."""

    old: ServerState
    new: ServerState
    report: CheckReport | None


@dataclass(frozen=True, slots=True)
class CheckLogged:
    """What `option log-health-checks` logs: the status changed or the counter
    moved. `counts` is the trailing `3/3 UP` or `0/2 DOWN`."""

    report: CheckReport
    succeeded: bool
    counts: str


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Run the next check no later than `within_ms` from now."""

    within_ms: int


Effect = Transition | CheckLogged | Reschedule


def apply(state: HealthState, event: Event, params: CheckParams
          ) -> tuple[HealthState, tuple[Effect, ...]]:
    """The state after `event`, and what the shell must do about it."""
    if isinstance(event, CheckDone):
        if state.maint:  # paused checks report nothing (process_chk_conn)
            return state, ()
        return _check_result(state, event.report, params)
    if isinstance(event, Observed):
        return _observed(state, event.outcome, params)
    return _set_maint(state, event.on, params)


def _check_result(state: HealthState, report: CheckReport, params: CheckParams
                  ) -> tuple[HealthState, tuple[Effect, ...]]:
    """set_server_check_status, then check_notify_failure/success."""
    health = state.health
    failed_checks = state.failed_checks
    errors = state.consecutive_errors
    moved = False
    if report.status.passed:
        if health < params.top:
            moved = True
            health += 1
            if health >= params.rise:
                health = params.top
        errors = 0  # any passed check clears the observed errors
    elif health > 0:
        failed_checks += 1  # counted only while the counter can still fall
        moved = True
        health -= 1
        if health < params.rise:
            health = 0
    new = dataclasses.replace(state, health=health, failed_checks=failed_checks,
                              consecutive_errors=errors, last=report)
    effects: list[Effect] = []
    if report.status != state.last.status or moved:
        effects.append(CheckLogged(report, bool(report.status.passed), _counts(new, params)))
    if report.status.passed:
        new = _set_running(new, params, report, effects)
    else:
        new = _set_stopped(new, report, effects)
    return new, tuple(effects)


def _set_stopped(state: HealthState, report: CheckReport, effects: list[Effect]) -> HealthState:
    if state.health > 0 or not state.running:
        return state
    effects.append(Transition(state.server_state, ServerState.DOWN, report))
    return dataclasses.replace(state, running=False, down_transitions=state.down_transitions + 1)


def _set_running(state: HealthState, params: CheckParams, report: CheckReport,
                 effects: list[Effect]) -> HealthState:
    if state.maint or state.running or state.health < params.rise:
        return state
    effects.append(Transition(state.server_state, ServerState.UP, report))
    return dataclasses.replace(state, running=True)


def _observed(state: HealthState, outcome: Analyze, params: CheckParams
              ) -> tuple[HealthState, tuple[Effect, ...]]:
    """__health_adjust: observation needs both `observe` and `check` (health_adjust,
    include/haproxy/check.h)."""
    if params.observe == "none" or not params.check:
        return state, ()
    verdict = outcome.verdict[params.observe]
    if verdict is None:
        return state, ()
    if verdict:
        if state.consecutive_errors == 0:
            return state, ()
        return dataclasses.replace(state, consecutive_errors=0), ()
    errors = state.consecutive_errors + 1
    if errors < params.error_limit:
        return dataclasses.replace(state, consecutive_errors=errors), ()

    report = CheckReport(CheckStatus.HANA, info=f"Detected {errors} consecutive errors, "
                         f"last one was: {outcome.description}")
    new = state
    effects: tuple[Effect, ...] = ()
    if params.on_error != "fastinter":  # fastinter only pulls the next check in
        if params.on_error == "sudden-death" and new.health > params.rise:
            # one more failure away from DOWN (it still falls through to fail-check)
            new = dataclasses.replace(new, health=params.rise + 1)
        elif params.on_error == "mark-down":
            # the failure below then takes the counter under rise: DOWN now
            new = dataclasses.replace(new, health=params.rise)
        new, effects = _check_result(new, report, params)
    new = dataclasses.replace(new, consecutive_errors=0, hanafail=new.hanafail + 1)
    if params.fastinter_ms:  # only a configured fastinter reschedules
        effects += (Reschedule(params.fastinter_ms),)
    return new, effects


def _set_maint(state: HealthState, on: bool, params: CheckParams
               ) -> tuple[HealthState, tuple[Effect, ...]]:
    """srv_update_status (server.c) on entering and leaving maintenance."""
    if on == state.maint:
        return state, ()
    if on:
        down = state.down_transitions + (1 if state.running else 0)
        new = dataclasses.replace(state, maint=True, running=False, down_transitions=down,
                                  health=0 if params.check else state.health)
        return new, (Transition(state.server_state, ServerState.MAINT, None),)
    # Leaving maintenance counts the server as just started: UP with the counter
    # at rise, checked again at its usual time (not at once: seen on 2.6.12).
    new = dataclasses.replace(state, maint=False, running=True,
                              health=params.rise if params.check else state.health)
    return new, (Transition(ServerState.MAINT, ServerState.UP, None),)


def _counts(state: HealthState, params: CheckParams) -> str:
    """The `status: x/y UP|DOWN` of set_server_check_status: by the counter alone."""
    if state.health >= params.rise:
        return f"{state.health - params.rise + 1}/{params.fall} UP"
    return f"{state.health}/{params.rise} DOWN"


def status_text(state: HealthState, params: CheckParams) -> str:
    """The stats page and CSV status (stats_fill_sv_stats_computestate, stats.c):
    `UP`, `UP 1/3` while falling, `DOWN`, `DOWN 1/2` while rising, `no check`,
    `MAINT`."""
    if state.maint:
        return "MAINT"
    if state.running:
        if not params.check:
            return "no check"
        if state.health < params.top:
            return f"UP {state.health - params.rise + 1}/{params.fall}"
        return "UP"
    if params.check and state.health:
        return f"DOWN {state.health}/{params.rise}"
    return "DOWN"


def check_cells(state: HealthState, params: CheckParams) -> dict[str, object]:
    """The stats' columns of a server's checks (stats_fill_sv_stats, stats.c):
    hanafail with `observe`; chkfail and chkdown with `check`; the latest check's
    status, code (layer 7), duration, description and info, and rise, fall and
    health, unless the checks are paused by maintenance. lastchg and downtime
    follow the state (pyxlb.stats.counters.StateClock)."""
    cells: dict[str, object] = {}
    if params.observe != "none":
        cells["hanafail"] = state.hanafail
    if not params.check:
        return cells
    cells.update(chkfail=state.failed_checks, chkdown=state.down_transitions)
    if state.maint:
        return cells
    report = state.last
    cells.update(check_status=report.status.short, check_desc=report.status.description,
                 last_chk=report.info, check_rise=params.rise, check_fall=params.fall,
                 check_health=state.health)
    if report.status.shows_code:
        cells["check_code"] = report.code
    if report.status is not CheckStatus.INI:
        cells["check_duration"] = max(report.duration_ms, 0)
    return cells


def next_interval_ms(state: HealthState, params: CheckParams) -> int:
    """The wait before the next check (srv_getinter, server.c): `inter` when fully
    up, `downinter` when DOWN at 0, `fastinter` while the counter is on its way up or
    down; each unset one falls back to `inter`."""
    if params.check and state.health == params.top:
        return params.inter_ms
    if not state.running and state.health == 0:
        return params.downinter_ms or params.inter_ms
    return params.fastinter_ms or params.inter_ms


def first_check_delays_ms(servers: list[CheckParams]) -> list[int]:
    """When each checked server (in configuration order) gets its first check:
    spread over the shortest interval of at least one second, so that checks do
    not all start at once (start_checks and start_check_task)."""
    inters = [next_interval_ms(HealthState.initial(p), p) for p in servers]
    spread = min((i for i in inters if i >= SPREAD_THRESHOLD_MS), default=0)
    return [max(spread, inter) * pos // len(servers) for pos, inter in enumerate(inters)]


def connect_timeout_ms(inter_ms: int, connect_ms: int | None, check_ms: int | None) -> int:
    """How long a check may take to connect: min(`timeout connect`, `inter`) when
    `timeout check` is set too, else `inter` (tcpcheck_eval_connect, tcpcheck.c)."""
    if check_ms and connect_ms:
        return min(inter_ms, connect_ms)
    return inter_ms


def response_deadline_ms(inter_ms: int, connect_ms: int | None, check_ms: int | None,
                         connected_ms: float) -> float:
    """When a check that connected `connected_ms` after it started times out, in ms
    from its start.

    Without `timeout check` the whole check gets `inter`. With it, the read gets
    `timeout check` from the connection; but HAProxy 2.6 moves the task's expiry
    without requeueing it, so the timeout is only noticed at the wake-up the connect
    step had set: a slow server has at least min(connect, inter) in all. Measured on
    2.6.12 (connect 1s, check 200ms: a 500ms answer passes, a hang fails at 1002ms;
    connect 100ms, check 200ms: fails at 202ms).
    """
    if not check_ms:
        return inter_ms
    after_connect = connected_ms + check_ms
    if connect_ms:
        return max(connect_timeout_ms(inter_ms, connect_ms, check_ms), after_connect)
    return after_connect
