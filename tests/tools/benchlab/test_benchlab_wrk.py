"""wrk's report read into numbers, and concurrent runs added up."""

from __future__ import annotations

import pytest
from benchlab.wrk import WrkError, combine, parse_wrk, wrk_argv

REPORT = """\
Running 3s test @ http://10.111.0.2:80/small.txt
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.45ms    1.07ms  21.52ms   87.07%
    Req/Sec    12.94k     1.19k   14.81k    70.00%
  Latency Distribution
     50%    2.31ms
     75%    2.74ms
     90%    3.36ms
     99%  650.00us
  77232 requests in 3.00s, 26.44MB read
  Socket errors: connect 98538, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 5
Requests/sec:  25744.00
Transfer/sec:      8.81MB
"""


def test_a_report_gives_its_figures_in_seconds_and_bytes():
    r = parse_wrk(REPORT)
    assert r.requests == 77232
    assert r.seconds == pytest.approx(3.0)
    assert r.rps == pytest.approx(25744.0)
    assert r.bytes_per_s == pytest.approx(8.81 * 1024 * 1024)
    assert r.p50_s == pytest.approx(0.00231)
    assert r.p99_s == pytest.approx(0.00065)
    assert r.socket_errors == 98538 + 2 + 7
    assert r.non_2xx_3xx == 5
    assert r.errors == 98538 + 2 + 7 + 5


def test_a_clean_report_without_latency_has_no_errors_and_no_percentiles():
    text = "\n".join(line for line in REPORT.splitlines()
                     if "%" not in line and "errors" not in line and "Non-2xx" not in line)
    r = parse_wrk(text.replace("26.44MB read", "1.5GB read").replace("8.81MB", "512.00KB"))
    assert (r.p50_s, r.p99_s, r.errors) == (None, None, 0)
    assert r.bytes_per_s == 512 * 1024


def test_what_is_not_a_report_is_an_error_naming_the_missing_line():
    with pytest.raises(WrkError, match="Requests/sec"):
        parse_wrk(REPORT.replace("Requests/sec", "Reqs"))
    with pytest.raises(WrkError, match="requests in"):
        parse_wrk("unable to connect to 10.111.0.2:8080 Connection refused\n")


def test_concurrent_runs_add_up_and_keep_the_worst_latency():
    a = parse_wrk(REPORT)
    b = parse_wrk(REPORT.replace("99%  650.00us", "99%    1.20s").replace("25744.00", "100"))
    both = combine([a, b])
    assert both.requests == 2 * 77232
    assert both.rps == pytest.approx(25844.0)
    assert both.p99_s == pytest.approx(1.2)
    assert both.errors == 2 * a.errors


def test_the_argv_asks_for_latency_and_closes_only_when_told():
    argv = wrk_argv("http://h/", 2.6, 8, 2)
    assert argv == ["wrk", "--latency", "-t2", "-c8", "-d3s", "http://h/"]
    assert wrk_argv("http://h/", 10, 8, close=True)[-3:] == ["-H", "Connection: close",
                                                              "http://h/"]
