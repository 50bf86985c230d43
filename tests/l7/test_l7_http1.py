"""Heads and framing as the proxy writes them."""

from __future__ import annotations

import pytest
from httptools import HttpParserError

from pyxlb.l7.http1 import (
    MethodToken,
    absolute_target,
    chunk,
    connection_line,
    foreign_coding,
    has_token,
    is_chunked,
    last_chunk,
    method_in_progress,
    request_head,
    response_head,
    same_host,
    version_bytes,
)


def test_request_head_puts_proxy_lines_last() -> None:
    head = request_head(
        b"GET", b"/a?b=1", b"1.1",
        [b"host: x\r\n", b"user-agent: t\r\n"],
        b"x-forwarded-for: 127.0.0.1\r\n",
    )
    assert head == (
        b"GET /a?b=1 HTTP/1.1\r\nhost: x\r\nuser-agent: t\r\n"
        b"x-forwarded-for: 127.0.0.1\r\n\r\n"
    )


def test_response_head_keeps_reason_and_version() -> None:
    head = response_head(b"1.0", 404, b"Not Found", [b"content-length: 0\r\n"], b"")
    assert head == b"HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\n\r\n"


def test_connection_header_loses_hop_tokens_like_haproxy() -> None:
    # Observed: "Connection: keep-alive, X-Hop" reaches the server as "connection: X-Hop".
    assert connection_line(b"keep-alive, X-Hop") == b"connection: X-Hop\r\n"
    assert connection_line(b"Close") is None
    # Observed: "keep-alive, Upgrade" reaches the server as "connection: Upgrade".
    assert connection_line(b"Upgrade, keep-alive") == b"connection: Upgrade\r\n"
    assert connection_line(b"a ,, b") == b"connection: a, b\r\n"


def test_has_token_ignores_case_and_spaces() -> None:
    assert has_token(b"keep-alive, Upgrade", b"upgrade")
    assert has_token(b"websocket , foo", b"websocket")
    assert not has_token(b"upgraded", b"upgrade")


def test_is_chunked_looks_at_the_last_coding() -> None:
    assert is_chunked(b"chunked")
    assert is_chunked(b"gzip, Chunked ")
    assert not is_chunked(b"chunked, gzip")
    assert not is_chunked(b"gzip")


def test_foreign_coding_is_any_coding_but_chunked() -> None:
    assert not foreign_coding(b"chunked")
    assert not foreign_coding(b" Chunked ")
    assert foreign_coding(b"gzip, chunked")
    assert foreign_coding(b"gzip")
    assert foreign_coding(b"chunked,")


def test_same_host_ignores_case_and_surrounding_spaces() -> None:
    assert same_host(b"a.example", b" A.Example ")
    assert not same_host(b"a", b"b")
    assert not same_host(b"a", b"a:80")


def test_absolute_target_drops_the_default_port_and_user_info() -> None:
    assert absolute_target(b"/x") is None
    assert absolute_target(b"*") is None
    assert absolute_target(b"/x?u=http://b/") is None
    assert absolute_target(b"http://a/x?y") == (b"http://a/x?y", b"a")
    assert absolute_target(b"http://u@a:80/x") == (b"http://u@a/x", b"a")
    assert absolute_target(b"HTTPS://a:443?q") == (b"HTTPS://a?q", b"a")
    assert absolute_target(b"http://a:443/") == (b"http://a:443/", b"a:443")
    assert absolute_target(b"http://a:8080") == (b"http://a:8080", b"a:8080")


def test_chunks() -> None:
    assert chunk(b"hello world!") == b"c\r\nhello world!\r\n"
    assert last_chunk([]) == b"0\r\n\r\n"
    assert last_chunk([b"x-t: 1\r\n"]) == b"0\r\nx-t: 1\r\n\r\n"


def test_versions() -> None:
    assert version_bytes("1.1") == b"1.1"
    assert version_bytes("1.0") == b"1.0"
    assert version_bytes("0.9") == b"0.9"


@pytest.mark.parametrize(("data", "waits"), [
    (b"early", True),
    (b"get", True),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nx-Y.1~", True),
    (b"early ", False),  # a whole method: llhttp cannot forward it
    (b"early\r", False),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", False),
    (bytes.fromhex("818501020304"), False),  # a WebSocket frame
    (b"ea\x81rly", False),
])
def test_a_method_in_progress_is_a_token_not_yet_ended(data: bytes, waits: bool) -> None:
    assert method_in_progress(data) is waits


def test_method_token_takes_token_characters_only() -> None:
    waiting = MethodToken()
    waiting.feed_data(b"more!#$%&'*+-.^_`|~09azAZ")
    for bad in (b" ", b"a/", b"\r\n", b"\x81"):
        with pytest.raises(HttpParserError):
            waiting.feed_data(bad)
