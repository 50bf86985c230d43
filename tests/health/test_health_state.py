"""HAProxy's health counter, observe/on-error and check intervals, replayed as tables.

Sequences marked "seen on 2.6.12" were run against haproxy on loopback and read
back from `show stat` and its logs; the others follow check.c step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyxlb.health.state import (
    Analyze,
    CheckDone,
    CheckLogged,
    CheckParams,
    CheckReport,
    CheckStatus,
    Event,
    HealthState,
    Observed,
    Reschedule,
    ServerState,
    SetMaint,
    Transition,
    apply,
    check_cells,
    connect_timeout_ms,
    first_check_delays_ms,
    next_interval_ms,
    response_deadline_ms,
    status_text,
)

PASS = CheckDone(CheckReport(CheckStatus.L4OK, duration_ms=0))
FAIL = CheckDone(CheckReport(CheckStatus.L4CON, info="Connection refused", duration_ms=0))
L7OK = CheckDone(CheckReport(CheckStatus.L7OK, code=200, duration_ms=0))
L7STS = CheckDone(CheckReport(CheckStatus.L7STS, code=500, info="Oops", duration_ms=0))
L4ERR = Observed(Analyze.L4_ERR)
L4OK = Observed(Analyze.L4_OK)
HTTP_OK = Observed(Analyze.HTTP_OK)
HTTP_STS = Observed(Analyze.HTTP_STS)

EVENTS = {"P": PASS, "F": FAIL, "e": L4ERR, "o": L4OK, "s": HTTP_STS, "h": HTTP_OK,
          "M": SetMaint(True), "m": SetMaint(False)}


def replay(params: CheckParams, events: str | Sequence[Event],
           state: HealthState | None = None) -> tuple[list[str], HealthState, list]:
    """The stats status after each event, the last state and every effect."""
    state = state or HealthState.initial(params)
    texts, effects = [], []
    for event in events:
        state, more = apply(state, EVENTS[event] if isinstance(event, str) else event, params)
        texts.append(status_text(state, params))
        effects += more
        if not state.maint and params.check:
            assert state.running == (state.health >= params.rise)
    return texts, state, effects


def transitions(effects: list) -> list[tuple[str, str]]:
    return [(e.old.value, e.new.value) for e in effects if isinstance(e, Transition)]


RISE2_FALL3 = CheckParams(check=True, rise=2, fall=3)


def test_initial_state_is_up_with_counter_at_rise() -> None:
    state = HealthState.initial(RISE2_FALL3)
    assert (state.health, state.running, state.last.status) == (2, True, CheckStatus.INI)
    # seen on 2.6.12: a checked server that has not been checked yet
    assert status_text(state, RISE2_FALL3) == "UP 1/3"


@pytest.mark.parametrize(("params", "events", "expected"), [
    # right after start-up one failure takes the server down
    (RISE2_FALL3, "F", ["DOWN"]),
    (RISE2_FALL3, "PFFF", ["UP", "UP 2/3", "UP 1/3", "DOWN"]),
    (RISE2_FALL3, "PFFFPP", ["UP", "UP 2/3", "UP 1/3", "DOWN", "DOWN 1/2", "UP"]),
    # one pass from anywhere at or above rise goes straight back to full health
    (RISE2_FALL3, "PFFP", ["UP", "UP 2/3", "UP 1/3", "UP"]),
    # flapping while down: the counter falls back to 0
    (RISE2_FALL3, "FPFPP", ["DOWN", "DOWN 1/2", "DOWN", "DOWN 1/2", "UP"]),
    (RISE2_FALL3, "FFF", ["DOWN", "DOWN", "DOWN"]),
    # the tutorial's `rise 1 fall 3`
    (CheckParams(check=True, rise=1, fall=3), "PFFFP",
     ["UP", "UP 2/3", "UP 1/3", "DOWN", "UP"]),
    (CheckParams(check=True, rise=1, fall=3), "F", ["DOWN"]),
    # fall 1: fully healthy from the start, one failure is enough
    (CheckParams(check=True, rise=2, fall=1), "PFPP", ["UP", "DOWN", "DOWN 1/2", "UP"]),
    (CheckParams(check=True, rise=3, fall=2), "FPPPF",
     ["DOWN", "DOWN 1/3", "DOWN 2/3", "UP", "UP 1/2"]),
])
def test_counter_sequences(params: CheckParams, events: str, expected: list[str]) -> None:
    assert replay(params, events)[0] == expected


def test_transitions_and_counters() -> None:
    texts, state, effects = replay(RISE2_FALL3, "PFFFFPP")
    assert transitions(effects) == [("UP", "DOWN"), ("DOWN", "UP")]
    down = next(e for e in effects if isinstance(e, Transition))
    assert down.report == FAIL.report
    # chkfail counts failures only while the counter could still fall
    assert (state.failed_checks, state.down_transitions) == (3, 1)


def test_fall_one_starts_fully_up() -> None:
    params = CheckParams(check=True, rise=2, fall=1)
    assert status_text(HealthState.initial(params), params) == "UP"


def test_unchecked_server() -> None:
    params = CheckParams()
    state = HealthState.initial(params)
    assert status_text(state, params) == "no check"
    # observation needs a check to act on (health_adjust)
    params = CheckParams(observe="layer4", error_limit=1)
    texts, state, effects = replay(params, "eee")
    assert texts == ["no check"] * 3 and effects == [] and state.hanafail == 0


def test_check_log_lines_as_haproxy_logs_them() -> None:
    """`option log-health-checks` lines, seen on 2.6.12 (rise 2 fall 3): a first
    pass logs `3/3 UP`; a first failure `0/2 DOWN`; repeats at 0 log nothing."""
    _, _, effects = replay(RISE2_FALL3, [L7OK, FAIL, FAIL, FAIL, FAIL, FAIL, L7OK])
    logged = [(e.report.status.short, e.succeeded, e.counts)
              for e in effects if isinstance(e, CheckLogged)]
    assert logged == [("L7OK", True, "3/3 UP"), ("L4CON", False, "2/3 UP"),
                      ("L4CON", False, "1/3 UP"), ("L4CON", False, "0/2 DOWN"),
                      ("L7OK", True, "1/2 DOWN")]
    _, _, effects = replay(RISE2_FALL3, [L7STS])
    assert [e.counts for e in effects if isinstance(e, CheckLogged)] == ["0/2 DOWN"]


@pytest.mark.parametrize(("report", "text"), [
    (CheckReport(CheckStatus.L7STS, 404, "Whatever Reason", 0),
     'reason: Layer7 wrong status, code: 404, info: "Whatever Reason", check duration: 0ms'),
    (CheckReport(CheckStatus.L7OK, 200, "", 0),
     "reason: Layer7 check passed, code: 200, check duration: 0ms"),
    (CheckReport(CheckStatus.L4CON, 0, "Connection refused", 0),
     'reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms'),
    (CheckReport(CheckStatus.L7TOUT, 0, "", 926),
     "reason: Layer7 timeout, check duration: 926ms"),
    (CheckReport(CheckStatus.L7RSP, 0, "", 0),
     "reason: Layer7 invalid response, check duration: 0ms"),
    (CheckReport(CheckStatus.HANA, info="Detected 1 consecutive errors, last one was: "
                 "L4 unsuccessful connection"),
     'reason: Health analyze, info: "Detected 1 consecutive errors, last one was: '
     'L4 unsuccessful connection"'),
    (CheckReport(CheckStatus.L7STS, 500, 'say "hi"\x01<', 3),
     'reason: Layer7 wrong status, code: 500, info: "say <22>hi<22><01><3C>", '
     "check duration: 3ms"),
])
def test_reason_text_as_in_haproxy_logs(report: CheckReport, text: str) -> None:
    assert report.describe() == text


def test_report_info_is_cut_like_haproxy_desc() -> None:
    assert len(CheckReport(CheckStatus.L7STS, info="x" * 500).info) == 127


# --- observe / error-limit / on-error -------------------------------------------------

def observe_params(on_error: str, **more: object) -> CheckParams:
    fields: dict = {"check": True, "rise": 2, "fall": 3, "observe": "layer4",
                    "error_limit": 2, "on_error": on_error, **more}
    return CheckParams(**fields)


@pytest.mark.parametrize(("on_error", "first", "expected"), [
    # seen on 2.6.12 (`show stat` after two refused connections, retries 0):
    # a checked server (counter 4) under fail-check: one failed check
    ("fail-check", "P", ("UP 2/3", 1, 0, 1, "HANA")),
    # unchecked yet (counter at rise 2): sudden-death and mark-down take it down
    ("sudden-death", "", ("DOWN", 1, 1, 1, "HANA")),
    ("mark-down", "", ("DOWN", 1, 1, 1, "HANA")),
    # fastinter changes nothing but the schedule and hanafail
    ("fastinter", "", ("UP 1/3", 0, 0, 1, "INI")),
    # from full health
    ("sudden-death", "P", ("UP 1/3", 1, 0, 1, "HANA")),
    ("mark-down", "P", ("DOWN", 1, 1, 1, "HANA")),
    ("fastinter", "P", ("UP", 0, 0, 1, "L4OK")),
])
def test_on_error_modes(on_error: str, first: str, expected: tuple) -> None:
    texts, state, effects = replay(observe_params(on_error), first + "ee")
    assert (texts[-1], state.failed_checks, state.down_transitions, state.hanafail,
            state.last.status.short) == expected
    assert state.consecutive_errors == 0
    if expected[4] == "HANA":
        assert state.last.info == ("Detected 2 consecutive errors, last one was: "
                                   "L4 unsuccessful connection")
        assert state.last.duration_ms == -1


def test_sudden_death_leaves_one_failed_check_to_go() -> None:
    texts, _, effects = replay(observe_params("sudden-death"), "PeeF")
    assert texts == ["UP", "UP", "UP 1/3", "DOWN"]
    assert transitions(effects) == [("UP", "DOWN")]


def test_fastinter_seen_on_haproxy() -> None:
    """2.6.12, `on-error fastinter fastinter 300`: the next check (due in 90s) ran
    300ms later and took the unchecked server down."""
    params = observe_params("fastinter", fastinter_ms=300)
    texts, state, effects = replay(params, "eeF")
    assert [e for e in effects if isinstance(e, Reschedule)] == [Reschedule(300)]
    assert texts == ["UP 1/3", "UP 1/3", "DOWN"]
    assert (state.failed_checks, state.down_transitions, state.hanafail) == (1, 1, 1)


@pytest.mark.parametrize("on_error", ["fail-check", "sudden-death", "mark-down", "fastinter"])
def test_reschedule_needs_a_configured_fastinter(on_error: str) -> None:
    _, _, effects = replay(observe_params(on_error), "ee")
    assert not any(isinstance(e, Reschedule) for e in effects)
    _, _, effects = replay(observe_params(on_error, fastinter_ms=100), "ee")
    assert [e for e in effects if isinstance(e, Reschedule)] == [Reschedule(100)]


def test_tutorial_observe_layer4_example() -> None:
    """`server db1 check fall 3 inter 2m observe layer4 error-limit 1`, db1 checked
    once: three failed connections take it down (seen on 2.6.12: chkfail 3,
    chkdown 1, check_status HANA), long before the next check."""
    params = CheckParams(check=True, fall=3, inter_ms=120_000, observe="layer4", error_limit=1)
    texts, state, effects = replay(params, "Peee")
    assert texts == ["UP", "UP 2/3", "UP 1/3", "DOWN"]
    assert (state.failed_checks, state.down_transitions, state.hanafail) == (3, 1, 3)
    assert transitions(effects) == [("UP", "DOWN")]
    assert next(e for e in effects if isinstance(e, Transition)).report.status is CheckStatus.HANA


@pytest.mark.parametrize(("params", "events", "hana"), [
    # error-limit counts consecutive errors only: any OK resets the count
    (observe_params("fail-check", error_limit=3), "eeoee", 0),
    (observe_params("fail-check", error_limit=3), "eeoeee", 1),
    # so does a passed check
    (observe_params("fail-check", error_limit=3), "eePee", 0),
    # and the count starts again after each analysis
    (observe_params("fail-check", error_limit=2), "eeee", 2),
    (observe_params("fail-check", error_limit=2), "eeeoe", 1),
    # a failed check does not reset it
    (observe_params("fail-check", error_limit=3), "eeFe", 1),
    # layer4 ignores HTTP statuses
    (observe_params("fail-check", error_limit=1), "sss", 0),
    # layer7: statuses count, connection errors too; a good connection is no OK
    (CheckParams(check=True, observe="layer7", error_limit=2), "ss", 1),
    (CheckParams(check=True, observe="layer7", error_limit=2), "es", 1),
    (CheckParams(check=True, observe="layer7", error_limit=2), "eos", 1),
    (CheckParams(check=True, observe="layer7", error_limit=2), "ehs", 0),
    # the default error-limit is 10
    (CheckParams(check=True, observe="layer4"), "e" * 9, 0),
    (CheckParams(check=True, observe="layer4"), "e" * 10, 1),
    (CheckParams(check=True, observe="none", error_limit=1), "eee", 0),
])
def test_error_limit_counting(params: CheckParams, events: str, hana: int) -> None:
    assert replay(params, events)[1].hanafail == hana


def test_analysis_on_a_down_server_counts_hanafail_only() -> None:
    texts, state, _ = replay(observe_params("fail-check", error_limit=1), "Feee")
    assert texts == ["DOWN"] * 4
    assert (state.failed_checks, state.hanafail, state.health) == (1, 3, 0)


@pytest.mark.parametrize(("status", "outcome"), [
    (100, Analyze.HTTP_OK), (200, Analyze.HTTP_OK), (404, Analyze.HTTP_OK),
    (499, Analyze.HTTP_OK), (500, Analyze.HTTP_STS), (501, Analyze.HTTP_OK),
    (502, Analyze.HTTP_STS), (503, Analyze.HTTP_STS), (504, Analyze.HTTP_STS),
    (505, Analyze.HTTP_OK), (599, Analyze.HTTP_STS), (99, Analyze.HTTP_STS),
])
def test_layer7_status_classes(status: int, outcome: Analyze) -> None:
    assert Analyze.of_status(status) is outcome


# --- maintenance --------------------------------------------------------------------

def test_disabled_server_starts_in_maintenance() -> None:
    params = CheckParams(check=True, disabled=True)
    state = HealthState.initial(params)
    assert (status_text(state, params), state.health, state.server_state) == (
        "MAINT", 0, ServerState.MAINT)
    # seen on 2.6.12: `enable server` makes it UP 1/3 at once, before any check
    texts, state, effects = replay(params, "m", state)
    assert texts == ["UP 1/3"] and transitions(effects) == [("MAINT", "UP")]
    assert state.down_transitions == 0


def test_maintenance_of_a_running_server() -> None:
    # seen on 2.6.12: `disable server` on a running server counts a DOWN transition
    texts, state, effects = replay(RISE2_FALL3, "PMFPm")
    assert texts == ["UP", "MAINT", "MAINT", "MAINT", "UP 1/3"]
    assert transitions(effects) == [("UP", "MAINT"), ("MAINT", "UP")]
    assert (state.down_transitions, state.failed_checks) == (1, 0)
    texts, state, effects = replay(RISE2_FALL3, "FMm")
    assert transitions(effects) == [("UP", "DOWN"), ("DOWN", "MAINT"), ("MAINT", "UP")]
    assert state.down_transitions == 1
    assert replay(RISE2_FALL3, "MM")[2] == replay(RISE2_FALL3, "M")[2]


def test_unchecked_server_in_maintenance() -> None:
    texts, _, effects = replay(CheckParams(), "Mm")
    assert texts == ["MAINT", "no check"]


# --- intervals and timeouts -----------------------------------------------------------

def test_next_interval() -> None:
    params = CheckParams(check=True, rise=2, fall=3, inter_ms=10_000, fastinter_ms=1000,
                         downinter_ms=30_000)
    seen = []
    state = HealthState.initial(params)
    for event in "PFFFPPF":
        state, _ = apply(state, EVENTS[event], params)
        seen.append((status_text(state, params), next_interval_ms(state, params)))
    assert seen == [("UP", 10_000), ("UP 2/3", 1000), ("UP 1/3", 1000), ("DOWN", 30_000),
                    ("DOWN 1/2", 1000), ("UP", 10_000), ("UP 2/3", 1000)]
    # unset fastinter and downinter fall back to inter
    plain = CheckParams(check=True, inter_ms=700)
    for event in ("", "F", "PF"):
        state = replay(plain, event)[1] if event else HealthState.initial(plain)
        assert next_interval_ms(state, plain) == 700


def test_first_checks_spread_like_haproxy() -> None:
    # seen on 2.6.12: 7 servers with inter 500 were first checked ~71ms apart
    assert first_check_delays_ms([CheckParams(check=True, inter_ms=500)] * 7) == [
        0, 71, 142, 214, 285, 357, 428]
    # 5 servers with inter 2000: 400ms apart
    assert first_check_delays_ms([CheckParams(check=True, inter_ms=2000)] * 5) == [
        0, 400, 800, 1200, 1600]
    # spread over the shortest interval of at least 1s, never less than a server's own
    mixed = [CheckParams(check=True, inter_ms=i) for i in (120_000, 3000, 500, 3000)]
    assert first_check_delays_ms(mixed) == [0, 750, 1500, 2250]
    # a fresh server with fastinter and fall > 1 is not fully up: fastinter applies
    assert first_check_delays_ms([CheckParams(check=True, inter_ms=10_000,
                                              fastinter_ms=2000)] * 2) == [0, 1000]
    assert first_check_delays_ms([]) == []


@pytest.mark.parametrize(("inter", "connect", "check", "connect_ms", "fails_at"), [
    # (ms) all seen on 2.6.12 against a server that accepts and never answers
    (2000, 1000, 200, 1000, 1000),
    (2000, 300, 1500, 300, 1500),
    (3000, 500, 100, 500, 500),
    (700, None, None, 700, 700),
    (1500, None, None, 1500, 1500),
    (1500, 5000, None, 1500, 1500),
    (3000, None, 2000, 3000, 2000),
    # the tutorial: timeout connect 5s, timeout check 5000, inter 10000
    (10_000, 5000, 5000, 5000, 5000),
])
def test_check_timeouts(inter: int, connect: int | None, check: int | None,
                        connect_ms: int, fails_at: int) -> None:
    assert connect_timeout_ms(inter, connect, check) == connect_ms
    assert response_deadline_ms(inter, connect, check, 0) == fails_at


def test_slow_answer_within_the_connect_window_passes() -> None:
    # seen on 2.6.12: connect 1s, check 200ms: a 500ms answer passed
    assert response_deadline_ms(3000, 1000, 200, 1) >= 500
    # connect 100ms, check 200ms: the read gets its 200ms from the connection
    assert response_deadline_ms(3000, 100, 200, 50) == 250


# --- properties ---------------------------------------------------------------------

@given(rise=st.integers(1, 5), fall=st.integers(1, 5), limit=st.integers(1, 4),
       on_error=st.sampled_from(["fastinter", "fail-check", "sudden-death", "mark-down"]),
       events=st.text(alphabet="PFeoMm", max_size=40))
def test_invariants(rise: int, fall: int, limit: int, on_error: str, events: str) -> None:
    params = CheckParams(check=True, rise=rise, fall=fall, observe="layer4",
                         error_limit=limit, on_error=on_error)  # type: ignore[arg-type]
    texts, state, effects = replay(params, events)  # replay asserts running == (h >= rise)
    assert 0 <= state.health <= rise + fall - 1
    assert 0 <= state.consecutive_errors < limit
    # transitions chain: each starts where the previous one ended
    chain = [(e.old, e.new) for e in effects if isinstance(e, Transition)]
    for (_, new), (old, _) in zip(chain, chain[1:], strict=False):
        assert new == old
    for text in texts:
        assert text in ("UP", "DOWN", "MAINT") or text.split()[0] in ("UP", "DOWN")


def test_check_cells_as_the_stats_show_them() -> None:
    """stats_fill_sv_stats: values seen in HAProxy 2.6.12's CSV for the same
    servers (tests/e2e/test_health_stats_vs_haproxy.py)."""
    l7 = CheckParams(check=True, rise=2, fall=3)
    _, up, _ = replay(l7, [L7OK])
    assert check_cells(up, l7) == {
        "chkfail": 0, "chkdown": 0, "check_status": "L7OK", "check_code": 200,
        "check_duration": 0, "check_desc": "Layer7 check passed", "last_chk": "",
        "check_rise": 2, "check_fall": 3, "check_health": 4}
    _, down, _ = replay(l7, [L7STS])
    assert check_cells(down, l7) == {
        "chkfail": 1, "chkdown": 1, "check_status": "L7STS", "check_code": 500,
        "check_duration": 0, "check_desc": "Layer7 wrong status", "last_chk": "Oops",
        "check_rise": 2, "check_fall": 3, "check_health": 0}
    # Layer 4: no code. Before any check: INI, no duration.
    _, refused, _ = replay(l7, "F")
    assert "check_code" not in check_cells(refused, l7)
    assert check_cells(refused, l7)["last_chk"] == "Connection refused"
    fresh = check_cells(HealthState.initial(l7), l7)
    assert (fresh["check_status"], "check_duration" in fresh) == ("INI", False)


def test_check_cells_paused_unchecked_and_observed() -> None:
    params = CheckParams(check=True, rise=2, fall=3)
    _, maint, _ = replay(params, "PFM")
    # In maintenance the checks are paused: only their counters show.
    assert check_cells(maint, params) == {"chkfail": 1, "chkdown": 1}
    assert check_cells(HealthState.initial(CheckParams()), CheckParams()) == {}
    observed = CheckParams(check=True, observe="layer4")
    _, state, _ = replay(observed, "eeeeeeeeee")
    assert check_cells(state, observed)["hanafail"] == 1
