"""Log lines and levels against datagrams captured from haproxy 2.6.12-1+deb12u4
(the pid is the capture's; dates are rebuilt in UTC)."""

from __future__ import annotations

import pytest
from log_clock import at

from pyxlb.health.state import CheckReport, CheckStatus
from pyxlb.log.format import (
    NO_SERVER_LEVEL,
    SERVER_UP_LEVEL,
    QueueFigures,
    SessionRecord,
    admin_events,
    encode_request_line,
    no_server_message,
    pri,
    server_down_level,
    server_down_message,
    server_events,
    server_up_message,
    session_level,
    session_line,
    syslog_datagram,
    syslog_header,
)

PID = 13371
HTTP = frozenset({"httplog", "log-separate-errors", "dontlognull"})
HTTP_PLAIN = frozenset({"httplog"})
TCP = frozenset({"tcplog"})




def datagram(r: SessionRecord, options: frozenset[str], facility: str, sent: str) -> str:
    level = session_level(r, options)
    assert level is not None
    line = session_line(r, options)
    assert line is not None
    return syslog_datagram(facility, level, line, at(sent), PID).decode()


def counters(**kw: object) -> dict[str, object]:
    return {"actconn": 1, "feconn": 1, **kw}


def test_pri_table() -> None:
    assert pri("local0", "info") == 134
    assert pri("local0", "notice") == 133
    assert pri("local0", "err") == 131
    assert pri("local0", "alert") == 129
    assert pri("local0", "emerg") == 128
    assert pri("local1", "err") == 139
    assert pri("kern", "emerg") == 0


def test_header_pads_the_day_with_a_space() -> None:
    assert syslog_header("local0", "info", at("04/Nov/2026:06:09:47.000"), 7) == (
        "<134>Nov  4 06:09:47 haproxy[7]: ")


def test_http_200() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=57014,
                      accept_date=at("24/Nov/2026:06:09:47.421"), frontend="fe", backend="be",
                      server="a", t_request=0, t_queue=0, t_connect=0, t_response=0, t_active=0,
                      status=200, bytes_out=120, bytes_in=37,
                      request_line="GET /hello?x=1 HTTP/1.1", **counters())
    assert datagram(r, HTTP, "local0", "24/Nov/2026:06:09:47.500") == (
        '<134>Nov 24 06:09:47 haproxy[13371]: 127.0.0.1:57014 [24/Nov/2026:06:09:47.421] '
        'fe be/a 0/0/0/0/0 200 120 - - ---- 1/1/0/0/0 0/0 "GET /hello?x=1 HTTP/1.1"\n')


def test_http_500_is_err_with_log_separate_errors() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=57020,
                      accept_date=at("24/Nov/2026:06:09:48.122"), frontend="fe", backend="be",
                      server="a", t_request=0, t_queue=0, t_connect=0, t_response=0, t_active=0,
                      status=500, bytes_out=139, bytes_in=31, request_line="GET /err HTTP/1.1",
                      **counters())
    expected = ('Nov 24 06:09:48 haproxy[13371]: 127.0.0.1:57020 [24/Nov/2026:06:09:48.122] '
                'fe be/a 0/0/0/0/0 500 139 - - ---- 1/1/0/0/0 0/0 "GET /err HTTP/1.1"\n')
    assert datagram(r, HTTP, "local0", "24/Nov/2026:06:09:48.200") == "<131>" + expected
    assert datagram(r, HTTP, "local1", "24/Nov/2026:06:09:48.200") == "<139>" + expected
    assert session_level(r, HTTP_PLAIN) == "info"


def test_bad_request() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=57028,
                      accept_date=at("24/Nov/2026:06:09:48.823"), frontend="fe", backend="fe",
                      t_active=0, status=400, bytes_in=11, termination="PR", **counters())
    assert datagram(r, HTTP, "local0", "24/Nov/2026:06:09:48.900") == (
        '<131>Nov 24 06:09:48 haproxy[13371]: 127.0.0.1:57028 [24/Nov/2026:06:09:48.823] '
        'fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"\n')


def test_deny() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=57044,
                      accept_date=at("24/Nov/2026:06:09:49.524"), frontend="fe", backend="fe",
                      t_request=0, t_active=0, status=403, bytes_out=192, bytes_in=38,
                      termination="PR", request_line="GET /deny HTTP/1.1", **counters())
    assert datagram(r, HTTP, "local0", "24/Nov/2026:06:09:49.600") == (
        '<131>Nov 24 06:09:49 haproxy[13371]: 127.0.0.1:57044 [24/Nov/2026:06:09:49.524] '
        'fe fe/<NOSRV> 0/-1/-1/-1/0 403 192 - - PR-- 1/1/0/0/0 0/0 "GET /deny HTTP/1.1"\n')


def test_no_server_available_503() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=57046,
                      accept_date=at("24/Nov/2026:06:09:50.225"), frontend="fe",
                      backend="nosrv", t_request=0, t_active=0, status=503, bytes_out=217,
                      bytes_in=39, termination="SC", request_line="GET /nosrv HTTP/1.1",
                      **counters())
    assert datagram(r, HTTP, "local0", "24/Nov/2026:06:09:50.300") == (
        '<131>Nov 24 06:09:50 haproxy[13371]: 127.0.0.1:57046 [24/Nov/2026:06:09:50.225] '
        'fe nosrv/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET /nosrv HTTP/1.1"\n')


def test_retries_to_a_dead_server() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=42254,
                      accept_date=at("24/Nov/2026:06:10:43.112"), frontend="fe3",
                      backend="dead", server="d", t_request=0, t_queue=0, t_active=2003,
                      status=503, bytes_out=217, bytes_in=30, termination="SC", retries=2,
                      request_line="GET / HTTP/1.1", **counters())
    assert datagram(r, frozenset({"httplog", "log-separate-errors"}), "local0",
                    "24/Nov/2026:06:10:45.115") == (
        '<131>Nov 24 06:10:45 haproxy[13371]: 127.0.0.1:42254 [24/Nov/2026:06:10:43.112] '
        'fe3 dead/d 0/0/-1/-1/2003 503 217 - - SC-- 1/1/0/0/2 0/0 "GET / HTTP/1.1"\n')


def test_client_timeout_without_dontlognull() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=40646,
                      accept_date=at("24/Nov/2026:06:10:37.708"), frontend="fe2",
                      backend="fe2", t_active=2000, status=408, termination="cR", **counters())
    assert datagram(r, HTTP_PLAIN, "local0", "24/Nov/2026:06:10:39.708") == (
        '<134>Nov 24 06:10:39 haproxy[13371]: 127.0.0.1:40646 [24/Nov/2026:06:10:37.708] '
        'fe2 fe2/<NOSRV> -1/-1/-1/-1/2000 408 0 - - cR-- 1/1/0/0/0 0/0 "<BADREQ>"\n')
    assert session_level(r, HTTP) is None  # the same null connection under dontlognull


def test_tcp() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=45894,
                      accept_date=at("24/Nov/2026:06:09:53.428"), frontend="t", backend="p",
                      server="p", t_queue=1, t_connect=0, t_total=0, bytes_out=5, bytes_in=5,
                      **counters())
    assert datagram(r, TCP, "local0", "24/Nov/2026:06:09:53.428") == (
        "<134>Nov 24 06:09:53 haproxy[13371]: 127.0.0.1:45894 [24/Nov/2026:06:09:53.428] "
        "t p/p 1/0/0 5 -- 1/1/0/0/0 0/0\n")


def test_tcp_server_closed_during_data() -> None:
    r = SessionRecord(client_ip="127.0.0.1", client_port=37850,
                      accept_date=at("24/Nov/2026:06:10:48.317"), frontend="t2", backend="p2",
                      server="p", t_queue=1, t_connect=0, t_total=200, bytes_out=7, bytes_in=1,
                      termination="CD", **counters())
    options = frozenset({"tcplog", "dontlognull"})
    assert datagram(r, options, "local0", "24/Nov/2026:06:10:48.517") == (
        "<134>Nov 24 06:10:48 haproxy[13371]: 127.0.0.1:37850 [24/Nov/2026:06:10:48.317] "
        "t2 p2/p 1/0/200 7 CD 1/1/0/0/0 0/0\n")
    r.bytes_in = 0
    assert session_level(r, options) is None  # the client sent nothing: not logged


@pytest.mark.parametrize(("changes", "level"), [
    ({}, "info"),
    ({"termination": "LR"}, "info"),
    ({"termination": "PR", "status": 403}, "err"),
    ({"retries": 1}, "err"),
    ({"redispatched": True}, "err"),
    ({"status": 502}, "err"),
    ({"status": 401, "termination": "LR"}, "info"),
])
def test_log_separate_errors(changes: dict[str, object], level: str) -> None:
    r = SessionRecord(client_ip="::1", client_port=1, accept_date=0.0, frontend="f",
                      backend="b", status=200, bytes_in=1)
    for name, value in changes.items():
        setattr(r, name, value)
    assert session_level(r, frozenset({"httplog", "log-separate-errors"})) == level


def test_redispatch_prefixes_retries() -> None:
    r = SessionRecord(client_ip="10.0.0.1", client_port=9, accept_date=0.0, frontend="f",
                      backend="b", retries=1, redispatched=True)
    assert " 0/0/0/0/+1 0/0" in (session_line(r, TCP) or "")


def test_request_line_escapes() -> None:
    assert encode_request_line('GET /a"b#c\x01\xe9 HTTP/1.1') == (
        "GET /a#22b#23c#01#C3#A9 HTTP/1.1")


def test_no_format_no_line() -> None:
    r = SessionRecord(client_ip="10.0.0.1", client_port=9, accept_date=0.0, frontend="f",
                      backend="b")
    assert session_line(r, frozenset({"dontlognull"})) is None


def event(facility: str, level: str, message: str, sent: str) -> str:
    return syslog_datagram(facility, level, message, at(sent), PID).decode()


def test_server_down_and_no_server() -> None:
    down = server_down_message(
        "be", "a", backup=False, active_left=0, backup_left=0,
        reason='reason: Layer4 connection problem, info: "Connection refused", '
               'check duration: 0ms')
    assert event("local0", server_down_level(False), down, "24/Nov/2026:06:09:54.000") == (
        '<129>Nov 24 06:09:54 haproxy[13371]: Server be/a is DOWN, reason: Layer4 connection '
        'problem, info: "Connection refused", check duration: 0ms. 0 active and 0 backup '
        'servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n')
    assert event("local1", server_down_level(False), down, "24/Nov/2026:06:09:54.000"
                 ).startswith("<137>")
    assert event("local0", NO_SERVER_LEVEL, no_server_message("be"),
                 "24/Nov/2026:06:09:54.000") == (
        "<128>Nov 24 06:09:54 haproxy[13371]: backend be has no server available!\n")
    assert server_down_level(True) == "notice"


def test_backup_server_down_layer7() -> None:
    report = CheckReport(CheckStatus.L7STS, code=503, info="Service Unavailable", duration_ms=0)
    down = server_down_message("be2", "c", backup=True, active_left=2, backup_left=0,
                               reason=report.describe())
    assert event("local0", "alert", down, "24/Nov/2026:06:10:49.000") == (
        '<129>Nov 24 06:10:49 haproxy[13371]: Backup Server be2/c is DOWN, reason: Layer7 '
        'wrong status, code: 503, info: "Service Unavailable", check duration: 0ms. 2 active '
        'and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.\n')


def test_server_up() -> None:
    up = server_up_message("be2", "c", backup=True, active_online=2, backup_online=1,
                           reason="reason: Layer7 check passed, code: 200, check duration: 0ms")
    assert event("local0", SERVER_UP_LEVEL, up, "24/Nov/2026:06:10:51.000") == (
        "<133>Nov 24 06:10:51 haproxy[13371]: Backup Server be2/c is UP, reason: Layer7 check "
        "passed, code: 200, check duration: 0ms. 2 active and 1 backup servers online. "
        "0 sessions requeued, 0 total in queue.\n")
    up = server_up_message("be", "a", backup=False, active_online=1, backup_online=0,
                           reason="reason: Layer4 check passed, check duration: 0ms")
    assert event("local1", SERVER_UP_LEVEL, up, "24/Nov/2026:06:09:57.000") == (
        "<141>Nov 24 06:09:57 haproxy[13371]: Server be/a is UP, reason: Layer4 check passed, "
        "check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, "
        "0 total in queue.\n")


def test_server_events_count_what_is_left_and_say_when_nothing_is():
    down = server_events("be", "a", up=False, backup=False,
                         reason="reason: Layer4 connection problem, info: \"Connection "
                         "refused\", check duration: 0ms",
                         states=[(False, False), (True, True)])
    # Only backups left: HAProxy says so (srv_append_status).
    assert down == [("alert", 'Server be/a is DOWN, reason: Layer4 connection problem, info: '
                     '"Connection refused", check duration: 0ms. 0 active and 1 backup '
                     'servers left. Running on backup. 0 sessions active, 0 requeued, '
                     '0 remaining in queue.')]
    last = server_events("be", "c", up=False, backup=True, reason="reason: x",
                         states=[(False, False), (True, False)])
    assert [level for level, _ in last] == ["alert", "emerg"]
    assert last[0][1].startswith("Backup Server be/c is DOWN")
    assert last[1][1] == "backend be has no server available!"
    back = server_events("be", "a", up=True, backup=False, reason="reason: Layer4 check "
                         "passed, check duration: 0ms", states=[(False, True), (True, True)])
    assert back == [("notice", "Server be/a is UP, reason: Layer4 check passed, check "
                     "duration: 0ms. 1 active and 1 backup servers online. 0 sessions "
                     "requeued, 0 total in queue.")]


def test_runtime_api_changes_log_as_haproxy_2_6_logs_them():
    # Captured from haproxy 2.6.12 in the lab (`set server be/web1 state ...`,
    # `disable server`, `enable server`), levels alert (129) and notice (133).
    both_up = [(False, True), (False, True)]
    one_left = [(False, False), (False, True)]

    def events(change: str, states: list[tuple[bool, bool]], drained: bool = False):
        return admin_events("be", "web1", change=change, backup=False, drained=drained,
                            states=states)

    assert events("maint", one_left) == [("alert", (
        "Server be/web1 is going DOWN for maintenance. 1 active and 0 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue."))]
    assert events("maint_left", both_up) == [
        ("notice", "Server be/web1 is UP/READY (leaving forced maintenance).")]
    assert events("maint_left", one_left, drained=True) == [
        ("notice", "Server be/web1 is UP/DRAIN (leaving forced maintenance).")]
    assert events("drain", one_left) == [("notice", (
        "Server be/web1 enters drain state. 1 active and 0 backup servers online. "
        "0 sessions requeued, 0 total in queue."))]
    assert events("drain_left", both_up) == [
        ("notice", "Server be/web1 is UP (leaving forced drain).")]
    last = events("maint", [(False, False)])
    assert last[1] == (NO_SERVER_LEVEL, "backend be has no server available!")
    # Captured with a backup beside web1; then the counts as srv_append_status writes them.
    assert events("maint", [(False, False), (True, True)]) == [("alert", (
        "Server be/web1 is going DOWN for maintenance. 0 active and 1 backup servers left. "
        "Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue."))]
    assert admin_events("be", "web1", change="drain", backup=False, drained=True,
                        states=[(False, False), (True, True)],
                        figures=QueueFigures(sessions=1, moved=2, queued=0)) == [("notice", (
        "Server be/web1 enters drain state. 0 active and 1 backup servers online. Running on "
        "backup. 2 sessions requeued, 0 total in queue."))]
    assert admin_events("be", "web1", change="maint", backup=False, drained=False,
                        states=[(False, False), (False, True)],
                        figures=QueueFigures(sessions=1, moved=1, queued=0))[0][1].endswith(
        "1 active and 0 backup servers left. 1 sessions active, 1 requeued, "
        "0 remaining in queue.")
    with pytest.raises(ValueError):
        events("sleep", both_up)

