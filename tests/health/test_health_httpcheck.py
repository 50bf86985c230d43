"""`option httpchk` requests byte for byte, and the verdicts on responses.

Every expected request below is what haproxy 2.6.12 sent to a local recording
socket for the same `option httpchk` line.
"""

from __future__ import annotations

import pytest

from pyxlb.config import parse_text
from pyxlb.config.model import HttpCheck
from pyxlb.health.httpcheck import HttpCheckResponse, request_bytes
from pyxlb.health.state import CheckReport, CheckStatus

CONFIG = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend b
{lines}
    server s 127.0.0.1:8080 check
"""


def httpchk(*lines: str) -> HttpCheck:
    config = parse_text(CONFIG.format(lines="\n".join(f"    {line}" for line in lines)))
    check = config.backends["b"].httpchk
    assert check is not None
    return check


@pytest.mark.parametrize(("line", "sent"), [
    ("option httpchk", b"OPTIONS / HTTP/1.0\r\n\r\n"),
    ("option httpchk /health", b"OPTIONS /health HTTP/1.0\r\n\r\n"),
    ("option httpchk GET /status?haproxy=1", b"GET /status?haproxy=1 HTTP/1.0\r\n\r\n"),
    ("option httpchk HEAD /x HTTP/1.1", b"HEAD /x HTTP/1.1\r\nconnection: close\r\n\r\n"),
    (r"option httpchk GET /y HTTP/1.1\r\nHost:\ www.example.com",
     b"GET /y HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n"),
    (r"option httpchk GET /a HTTP/1.0\r\nHost:\ h", b"GET /a HTTP/1.0\r\nhost: h\r\n\r\n"),
    (r"option httpchk POST /b HTTP/1.1\r\nContent-Type:\ text/plain\r\n\r\nhello",
     b"POST /b HTTP/1.1\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n"
     b"connection: close\r\n\r\nhello"),
    (r"option httpchk GET /c HTTP/1.1\r\nConnection:\ keep-alive", b"GET /c HTTP/1.1\r\n\r\n"),
    (r"option httpchk GET /d HTTP/1.0\r\nX-A:\ 1\r\nX-B:\ 2",
     b"GET /d HTTP/1.0\r\nx-a: 1\r\nx-b: 2\r\n\r\n"),
    ("option httpchk GET /e HTTP/2", b"GET /e HTTP/1.1\r\n\r\n"),
    ("option httpchk get /f", b"get /f HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk POST /p", b"POST /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk PUT /p", b"PUT /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk DELETE /p", b"DELETE /p HTTP/1.0\r\n\r\n"),
    ("option httpchk FOO /p", b"FOO /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk TRACE /p", b"TRACE /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk CONNECT /p", b"CONNECT /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk HEAD /p", b"HEAD /p HTTP/1.0\r\n\r\n"),
    ("option httpchk PATCH /p", b"PATCH /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
    ("option httpchk POST /p HTTP/1.1",
     b"POST /p HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    ("option httpchk FOO /p HTTP/1.1",
     b"FOO /p HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    ("option httpchk GET http://x.example/p HTTP/1.1",
     b"GET http://x.example/p HTTP/1.1\r\nconnection: close\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.1\r\nConnection:\ close",
     b"GET /p HTTP/1.1\r\nconnection: close\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.1\r\nConnection:\ upgrade",
     b"GET /p HTTP/1.1\r\nconnection: upgrade\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.0\r\nConnection:\ keep-alive",
     b"GET /p HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.0\r\n\r\nbody",
     b"GET /p HTTP/1.0\r\ncontent-length: 4\r\n\r\nbody"),
    (r"option httpchk GET /p HTTP/1.1\r\nX-A:\ 1\r\nConnection:\ upgrade\r\nX-B:\ 2",
     b"GET /p HTTP/1.1\r\nx-a: 1\r\nconnection: upgrade\r\nx-b: 2\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.0\r\nConnection:\ close", b"GET /p HTTP/1.0\r\n\r\n"),
    (r"option httpchk OPTIONS /p HTTP/1.0\r\n\r\nbody",
     b"OPTIONS /p HTTP/1.0\r\ncontent-length: 4\r\n\r\nbody"),
    (r"option httpchk GET /p HTTP/1.1\r\nConnection:\ keep-alive,\ upgrade",
     b"GET /p HTTP/1.1\r\nconnection: upgrade\r\n\r\n"),
    (r"option httpchk GET /p HTTP/1.0\r\nX-A:1", b"GET /p HTTP/1.0\r\nx-a: 1\r\n\r\n"),
    ("option httpchk GET /p http/1.1", b"GET /p HTTP/1.1\r\nconnection: close\r\n\r\n"),
])
def test_request_bytes_as_haproxy_sends_them(line: str, sent: bytes) -> None:
    assert request_bytes(httpchk(line)) == sent


# --- verdicts -------------------------------------------------------------------------

def verdict(response: bytes, *expects: str, eof: bool = True) -> CheckReport | None:
    reader = HttpCheckResponse(httpchk("option httpchk GET /", *expects).expects)
    for i in range(len(response)):  # byte by byte: no verdict before its time
        result = reader.feed(response[i:i + 1])
        if result is not None:
            return result
    return reader.eof() if eof else None


def ok(code: int) -> CheckReport:
    return CheckReport(CheckStatus.L7OK, code=code)


STS = CheckStatus.L7STS
RSP = CheckStatus.L7RSP


@pytest.mark.parametrize(("response", "expects", "expected"), [
    # seen on 2.6.12: 2xx and 3xx pass; other codes fail with the reason as info
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", (), ok(200)),
    (b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n", (), ok(301)),
    (b"HTTP/1.1 404 Whatever Reason\r\nContent-Length: 0\r\n\r\n", (),
     CheckReport(STS, 404, "Whatever Reason")),
    (b"HTTP/1.1 500 Whatever Reason\r\nContent-Length: 0\r\n\r\n", (),
     CheckReport(STS, 500, "Whatever Reason")),
    (b"HTTP/1.1 199 Whatever Reason\r\nContent-Length: 0\r\n\r\n", (),
     CheckReport(STS, 199, "Whatever Reason")),
    (b"HTTP/1.1 600 Whatever Reason\r\nContent-Length: 0\r\n\r\n", (),
     CheckReport(STS, 600, "Whatever Reason")),
    # garbage, nothing at all, or a head that never ends: invalid response, no info
    (b"garbage\r\n\r\n", (), CheckReport(RSP)),
    (b"", (), CheckReport(RSP)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", (), CheckReport(RSP)),
    # the head is enough: a close-delimited body is not waited for
    (b"HTTP/1.0 200 OK\r\n\r\nbody...", (), ok(200)),
    # http-check expect
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ("http-check expect status 200",), ok(200)),
    (b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", ("http-check expect status 200",),
     CheckReport(STS, 302, "Found")),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", ("http-check expect status 200,503",),
     ok(503)),
    (b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n", ("http-check expect status 400-499",),
     ok(404)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ("http-check expect ! status 200",),
     CheckReport(STS, 200, "OK")),
    (b"HTTP/1.1 204 None\r\nContent-Length: 0\r\n\r\n", ("http-check expect rstatus ^2",),
     ok(204)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok!", ("http-check expect string ok",),
     ok(200)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfail!", ("http-check expect string ok",),
     CheckReport(RSP, 200, "HTTP content check did not match")),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nerror", ("http-check expect ! string err",),
     CheckReport(RSP, 200, "HTTP check matched unwanted content")),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ("http-check expect string ok",),
     CheckReport(RSP, 200, "HTTP content check could not find a response body")),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nv=1234",
     ("http-check expect rstring v=[0-9]+$",), ok(200)),
    # several rules: all must pass, in order
    (b"HTTP/1.1 500 Bad\r\nContent-Length: 2\r\n\r\nok",
     ("http-check expect status 200", "http-check expect string ok"), CheckReport(STS, 500, "Bad")),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     ("http-check expect status 200", "http-check expect string ok"), ok(200)),
])
def test_verdicts(response: bytes, expects: tuple[str, ...], expected: CheckReport) -> None:
    assert verdict(response, *expects) == expected


def test_status_verdict_needs_the_whole_head() -> None:
    # seen on 2.6.12: a status line alone, then silence, is a Layer7 timeout
    assert verdict(b"HTTP/1.1 200 OK\r\n", eof=False) is None


def test_body_rule_decides_as_soon_as_the_pattern_shows() -> None:
    reader = HttpCheckResponse(httpchk("option httpchk", "http-check expect string ready").expects)
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nnot yet") is None
    assert reader.feed(b" ... ready") == ok(200)


def test_body_rule_waits_for_the_end_of_the_response() -> None:
    reader = HttpCheckResponse(httpchk("option httpchk", "http-check expect string ready").expects)
    assert reader.feed(b"HTTP/1.0 200 OK\r\n\r\nnot yet") is None
    assert reader.eof() == CheckReport(RSP, 200, "HTTP content check did not match")
