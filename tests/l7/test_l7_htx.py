"""Bytes as HAProxy 2.6.12 counts them (%B, bin/bout), against what it logged in
the lab for the same responses (haproxy -db, scripted servers)."""

from __future__ import annotations

from pyxlb.l7.htx import CHUNKED_END, chunked_reply_size, fields_size, head_size, message_size
from pyxlb.l7.responses import auth_response, error_response, stats_response


def test_server_responses_count_as_haproxy_logged_them() -> None:
    # HTTP/1.1 200 OK, content-length: 2, body "ok": logged 51 (40 on the wire).
    assert head_size(11 + len(b"OK"), [b"content-length: 2\r\n"]) + 2 == 51
    assert head_size(11 + len(b"OK"), [b"a: 1\r\n", b"bb: 22\r\n",
                                       b"content-length: 2\r\n"]) + 2 == 57
    assert head_size(11 + len(b"Fine Thanks"), [b"content-length: 0\r\n"]) == 58
    # Chunked: the data without framing, and the end of the trailers.
    assert head_size(13, [b"transfer-encoding: chunked\r\n"]) + 11 + CHUNKED_END == 70
    # Connection: close is a flag in HAProxy's messages, not a header...
    assert head_size(13, [b"connection: close\r\n"]) + len(b"until-close") == 45
    # ...but an upgrade token is kept: the 101 head of a WebSocket logged 105.
    assert head_size(11 + len(b"Switching Protocols"), [
        b"upgrade: websocket\r\n", b"connection: Upgrade\r\n",
        b"sec-websocket-accept: x\r\n"]) == 105


def test_requests_count_as_haproxy_counted_them_in_bin() -> None:
    # curl's GET /h1 to 10.111.0.2:82 added 82 to the server's bin.
    lines = [b"host: 10.111.0.2:82\r\n", b"user-agent: curl/7.88.1\r\n", b"accept: */*\r\n"]
    assert head_size(len(b"GET") + len(b"/h1") + 8, lines) == 82
    assert fields_size([b"x-a: 1\r\n", b"connection: keep-alive\r\n"]) == 4


def test_pages_pyxlb_writes_count_as_haproxys_own() -> None:
    # HAProxy logged 217 for its 503 page and 192 for its 403 (wire: 214 and 189).
    assert message_size(error_response(503, False)) == 217
    assert message_size(error_response(503, True)) == 217  # connection: close is a flag
    assert message_size(
        b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /elsewhere\r\n"
        b"\r\n") == 82
    assert message_size(b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\n"
                        b"content-type: text/html\r\n\r\n") == 76  # stats, HEAD


def test_the_stats_reply_counts_as_haproxys_chunked_one() -> None:
    # HAProxy's CSV of 2277 bytes logged 2378; its answer to HEAD /stats 76.
    csv = stats_response(b"x" * 2277, b"text/plain", False, False)
    assert chunked_reply_size(csv, head_only=False) == 2378
    head = stats_response(b"x" * 19000, b"text/html", True, True)
    assert chunked_reply_size(head, head_only=True) == 76
    # The stats service's other replies have a content-length.
    assert chunked_reply_size(auth_response("R", False), False) == message_size(
        auth_response("R", False))
