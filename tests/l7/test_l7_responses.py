"""Generated responses, byte for byte as Debian's haproxy 2.6.12 sent them."""

from __future__ import annotations

import pytest

from pyxlb.l7.responses import (
    BAD_REQUEST,
    REQUEST_TIMEOUT,
    UNPROCESSABLE,
    error_response,
    stats_response,
)


def test_400_is_haproxys_raw_message() -> None:
    assert BAD_REQUEST == (
        b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\nContent-Type: text/html\r\n\r\n"
        b"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n"
        b"</body></html>\n"
    )


def test_408_is_haproxys_raw_message() -> None:
    assert REQUEST_TIMEOUT.startswith(b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\n")
    assert REQUEST_TIMEOUT.endswith(
        b"<html><body><h1>408 Request Time-out</h1>\n"
        b"Your browser didn't send a complete request in time.\n</body></html>\n"
    )


def test_422_is_haproxys_raw_message_without_a_connection_header() -> None:
    # Seen from haproxy 2.6.12-1+deb12u4 for "Transfer-Encoding: gzip, chunked".
    assert UNPROCESSABLE == (
        b"HTTP/1.1 422 Unprocessable Content\r\nContent-length: 116\r\n"
        b"Cache-Control: no-cache\r\nContent-Type: text/html\r\n\r\n"
        b"<html><body><h1>422 Unprocessable Content</h1>\n"
        b"The server cannot process the contained instructions.\n</body></html>\n"
    )


def test_503_as_haproxy_sends_it() -> None:
    body = (
        b"<html><body><h1>503 Service Unavailable</h1>\n"
        b"No server is available to handle this request.\n</body></html>\n"
    )
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\n"
        b"cache-control: no-cache\r\ncontent-type: text/html\r\n"
    )
    assert error_response(503, close=False) == head + b"\r\n" + body
    assert error_response(503, close=True) == head + b"connection: close\r\n\r\n" + body


def test_502_as_haproxy_sends_it() -> None:
    assert error_response(502, close=False) == (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>502 Bad Gateway</h1>\n"
        b"The server returned an invalid or incomplete response.\n</body></html>\n"
    )


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("close", [False, True])
def test_content_length_matches_body(status: int, close: bool) -> None:
    head, _, body = error_response(status, close).partition(b"\r\n\r\n")
    assert b"content-length: %d\r\n" % len(body) in head


def test_stats_response_is_chunked_as_haproxys_applet_sends_it() -> None:
    # Captured from HAProxy 2.6.12 in the lab: a keep-alive GET, one chunk.
    assert stats_response(b"a,b\n", b"text/plain", head_only=False, close=False) == (
        b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n"
        b"transfer-encoding: chunked\r\n\r\n4\r\na,b\n\r\n0\r\n\r\n"
    )


def test_stats_response_places_connection_close_as_haproxy_does() -> None:
    # `Connection: close` from an HTTP/1.1 client: after the chunking header.
    asked = stats_response(b"x" * 26, b"text/html", False, True, refresh_s=10)
    assert asked == (
        b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n"
        b"refresh: 10\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        b"1A\r\n" + b"x" * 26 + b"\r\n0\r\n\r\n"
    )
    # An HTTP/1.0 client: before it (still chunked, as HAProxy 2.6 answers).
    old = stats_response(b"x", b"text/plain", False, True, http10=True)
    assert old.partition(b"\r\n\r\n")[0].endswith(
        b"connection: close\r\ntransfer-encoding: chunked")


def test_stats_response_to_head_has_no_chunking_header() -> None:
    head_only = stats_response(b"<html>", b"text/html", head_only=True, close=True)
    assert head_only == (b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\n"
                         b"content-type: text/html\r\nconnection: close\r\n\r\n")
