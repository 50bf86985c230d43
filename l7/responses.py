"""Responses pyxlb writes itself, as HAProxy 2.6.12 writes them.

HAProxy has two paths (both observed against Debian's haproxy 2.6.12):

* A request the H1 parser rejects (400) or that does not arrive in time (408) is
  answered by the connection layer with the raw text of http_err_msgs[] (src/http.c):
  header names in their original case, ``Connection: close``, and the connection
  closes.
* Errors decided later (502, 503, 504, deny) go through HTX and come out with
  lower-case names and no connection header; the client connection stays open
  unless it is closing anyway (client asked for close, HTTP/1.0, or the request
  body was not fully read), in which case ``connection: close`` is appended.

Every generated response is in the tables below so a wrong byte is fixed in one
place.
"""

from __future__ import annotations

from typing import Final


def _raw(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-length: " + str(len(body)).encode() + b"\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Connection: close\r\n"
        b"Content-Type: text/html\r\n"
        b"\r\n" + body
    )


def _htx(status: bytes, body: bytes, close: bool) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"cache-control: no-cache\r\n"
        b"content-type: text/html\r\n"
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n" + body
    )


def _page(status: bytes, text: bytes) -> bytes:
    return b"<html><body><h1>" + status + b"</h1>\n" + text + b"\n</body></html>\n"


_BAD_REQUEST = b"400 Bad request"
_TIMEOUT = b"408 Request Time-out"

BAD_REQUEST: Final = _raw(
    _BAD_REQUEST, _page(_BAD_REQUEST, b"Your browser sent an invalid request.")
)
"""Answer to a request the parser rejects; the connection closes after it."""

REQUEST_TIMEOUT: Final = _raw(
    _TIMEOUT, _page(_TIMEOUT, b"Your browser didn't send a complete request in time.")
)
"""Answer to a request head that did not arrive within ``timeout client``."""

_HTX_PAGES: Final = {
    502: (b"502 Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"503 Service Unavailable", b"No server is available to handle this request."),
    504: (b"504 Gateway Time-out", b"The server didn't respond in time."),
}

# (status, closing) -> bytes, built once.
_GENERATED: Final = {
    (code, close): _htx(status, _page(status, text), close)
    for code, (status, text) in _HTX_PAGES.items()
    for close in (False, True)
}


def error_response(status: int, close: bool) -> bytes:
    """HAProxy's 502, 503 or 504 page; ``close`` when the connection ends after it."""
    return _GENERATED[status, close]


_STATS_HEADS: Final = {
    (ctype, close): (
        b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: " + ctype + b"\r\n"
        + (b"connection: close\r\n" if close else b"")
        + b"content-length: "
    )
    for ctype in (b"text/html", b"text/plain")
    for close in (False, True)
}


def stats_response(body: bytes, csv: bool, head_only: bool, close: bool) -> bytes:
    """The stats page reply: 200 with ``cache-control: no-cache`` (HAProxy chunks it;
    a content-length frames the same body)."""
    head = _STATS_HEADS[b"text/plain" if csv else b"text/html", close]
    head += str(len(body)).encode() + b"\r\n\r\n"
    return head if head_only else head + body
