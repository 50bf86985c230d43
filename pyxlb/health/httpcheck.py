"""`option httpchk` as HAProxy 2.6 runs it: the request bytes it sends and the
verdict its `http-check expect` rules give on the response.

Sans-IO: `request_bytes()` builds the request once; an `HttpCheckResponse` is fed
what the server sends and says when it has seen enough. Parsing is httptools'
(llhttp, leniencies off); only the expect rules are evaluated here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from httptools import HttpParserError, HttpResponseParser

from pyxlb.config.model import HttpCheck, HttpCheckExpect
from pyxlb.health.state import CheckReport, CheckStatus
from pyxlb.l7.http1 import LENIENCIES_OFF

# Methods HAProxy knows (http_known_methods) whose empty body needs no
# content-length, so the H1 mux leaves `content-length: 0` out (seen on 2.6.12:
# GET, HEAD, DELETE, OPTIONS go without it; POST, PUT, TRACE, CONNECT, PATCH and
# methods in another case get `content-length: 0`).
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
# A check's response must fit HAProxy's buffer (tune.bufsize); a full buffer ends
# the read as the end of the response would.
MAX_RESPONSE: Final = 16384
DEFAULT_EXPECT: Final = HttpCheckExpect(kind="status", pattern="200-399", where=None)  # type: ignore[arg-type]


class HttpCheckSyntaxError(ValueError):
    """The headers hidden in `option httpchk`'s version cannot be parsed."""


def request_bytes(check: HttpCheck) -> bytes:
    """The request `option httpchk METHOD URI VERSION` sends, byte for byte as
    HAProxy 2.6.12 does (tcpcheck_eval_send, then the H1 mux; each rule below was
    recorded from haproxy against a local socket):

    * `OPTIONS / HTTP/1.0\\r\\n\\r\\n` by default; a version HAProxy counts as 1.1
      or later (HTTP/1.1, HTTP/2) goes out as HTTP/1.1, any other one as written;
    * headers hidden after the version (`HTTP/1.1\\r\\nHost:\\ www`, deprecated)
      follow with lower-case names, then `content-length` (left out when the body
      is empty and the method is GET, HEAD, DELETE or OPTIONS), then
      `connection: close` when the H1 mux takes the version for 1.1 and the
      headers had no Connection;
    * a Connection header of one's own loses `keep-alive` on 1.1 and `close` on
      1.0, and goes when nothing is left;
    * text after an empty line in the version is the body.
    """
    version, _, rest = check.version.partition("\r\n")
    head, _, body = ("\r\n" + rest).partition("\r\n\r\n")
    head = head.removeprefix("\r\n")
    # Two views of the version: the check's (HTX_SL_F_VER_11, which names the
    # start line's version) and the H1 mux's (h1_parse_req_vsn: only an 8-byte
    # version, so HTTP/2 goes out as HTTP/1.1 yet without `connection: close`).
    line_11 = (len(version) == 6 and version[5] == "2") or _mux_counts_as_http11(version)
    mux_11 = _mux_counts_as_http11(version)
    lines = [f"{check.method} {check.uri} {'HTTP/1.1' if line_11 else version}"]
    own_connection = False
    for name, value in _header_fields(head):
        if name == "connection":
            own_connection = True
            implied = "keep-alive" if mux_11 else "close"
            value = ", ".join(token for token in _tokens(value) if token.lower() != implied)
            if not value:
                continue
        elif name == "content-length":
            continue  # HAProxy adds its own, from the body
        lines.append(f"{name}: {value}")
    body_bytes = body.encode("latin-1")
    if body_bytes or check.method not in _BODYLESS_METHODS:
        lines.append(f"content-length: {len(body_bytes)}")
    if mux_11 and not own_connection:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body_bytes


def _mux_counts_as_http11(version: str) -> bool:
    """`HTTP/x.y` with x.y >= 1.1, judged by its digits only."""
    return len(version) == 8 and (version[5] > "1" or (version[5] == "1" and version[7] >= "1"))


def _header_fields(head: str) -> list[tuple[str, str]]:
    fields = []
    for line in head.split("\r\n") if head else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpCheckSyntaxError(f"'option httpchk': cannot parse header line {line!r}")
        fields.append((name.lower(), value.strip(" \t")))
    return fields


def _tokens(value: str) -> list[str]:
    return [token.strip() for token in value.split(",") if token.strip()]


def _status_matches(pattern: str, status: int) -> bool:
    for item in pattern.split(","):
        low, _, high = item.partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


class HttpCheckResponse:
    """Reads one check response and decides it as HAProxy's expect rules do
    (tcpcheck_eval_expect_http, tcpcheck.c): rules run in order and all must pass;
    without rules, `status 200-399`.

    A status rule decides once the head is complete; a body rule as soon as its
    pattern shows up, or when the response (or the buffer) ends without it.
    """

    def __init__(self, expects: Sequence[HttpCheckExpect] = ()) -> None:
        self._rules = list(expects) or [DEFAULT_EXPECT]
        self._parser = HttpResponseParser(self)
        self._parser.set_dangerous_leniencies(**LENIENCIES_OFF)
        self._reason = bytearray()
        self._head_done = False
        self._message_done = False
        self._body = bytearray()
        self._received = 0
        self.status = 0

    # httptools callbacks
    def on_status(self, reason: bytes) -> None:
        if not self._head_done:
            self._reason += reason

    def on_headers_complete(self) -> None:
        if not self._head_done:
            self._head_done = True
            self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self._message_done = True

    def feed(self, data: bytes) -> CheckReport | None:
        """The verdict once `data` is added, or None while more is needed."""
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except HttpParserError:
            if not self._head_done:
                return CheckReport(CheckStatus.L7RSP)
            self._message_done = True  # judge what came before the bad bytes
        return self._evaluate(last=self._message_done or self._received >= MAX_RESPONSE)

    def eof(self) -> CheckReport:
        """The verdict when the server closed the connection."""
        if not self._head_done:
            return CheckReport(CheckStatus.L7RSP)
        verdict = self._evaluate(last=True)
        assert verdict is not None
        return verdict

    def _evaluate(self, last: bool) -> CheckReport | None:
        if not self._head_done:
            return None
        for rule in self._rules:
            verdict = self._rule(rule, last)
            if verdict is not True:
                return verdict
        return CheckReport(CheckStatus.L7OK, code=self.status)

    def _rule(self, rule: HttpCheckExpect, last: bool) -> CheckReport | bool | None:
        """True when `rule` passes, a report when it fails, None to wait."""
        if rule.kind in ("status", "rstatus"):
            if rule.kind == "status":
                match = _status_matches(rule.pattern, self.status)
            else:
                match = re.search(rule.pattern, str(self.status)) is not None
            if match != rule.negate:
                return True
            reason = self._reason.decode("latin-1")
            return CheckReport(CheckStatus.L7STS, code=self.status, info=reason)
        body = bytes(self._body).decode("latin-1")
        if not body:
            if not last:
                return None
            return CheckReport(CheckStatus.L7RSP, code=self.status,
                               info="HTTP content check could not find a response body")
        if rule.kind == "string":
            if not last and len(body) < len(rule.pattern):
                return None
            match = rule.pattern in body
        else:
            match = re.search(rule.pattern, body) is not None
        if not match and not last:
            return None
        if match != rule.negate:
            return True
        info = ("HTTP check matched unwanted content" if rule.negate
                else "HTTP content check did not match")
        return CheckReport(CheckStatus.L7RSP, code=self.status, info=info)
