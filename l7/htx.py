"""Bytes as HAProxy 2.6 counts them: the size of its internal (HTX) messages, which
the httplog's %B and the stats' bin/bout add up, rather than bytes on the wire.

An HTX message holds a start line as a 20-byte header plus its three parts
(method, URI, version; or version, status, reason) without spaces or CRLF, each
header as its name and value only, one byte for the end of the headers, body data
without chunk framing, and one byte ending a chunked message's trailers.
``Connection: close`` and ``keep-alive`` are flags in HTX, not headers.
Observed in the lab (haproxy -db, scripted servers): a server's
``HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok`` logs 51 (wire: 40); HAProxy's
403 page 192 (wire: 189); after a 101, tunnelled bytes count one for one.

The proxy counts requests as they arrive and responses as the server sent them
(before the cookie pyxlb adds, as HAProxy counts at reception).
"""

from __future__ import annotations

from collections.abc import Iterable

START_LINE = 21
"""HTX's start-line header (struct htx_sl, 20 bytes) and the end-of-headers block."""

CHUNKED_END = 1
"""The end-of-trailers block of a chunked message."""

_CONNECTION = b"connection: "


def head_size(start: int, lines: Iterable[bytes]) -> int:
    """A message head: ``start`` is the length of its start line's three parts,
    ``lines`` its ``name: value\\r\\n`` header lines (names lower-case)."""
    return START_LINE + start + fields_size(lines)


def fields_size(lines: Iterable[bytes]) -> int:
    """Header or trailer lines (``name: value\\r\\n``, names lower-case)."""
    size = 0
    for line in lines:
        if not line.startswith(_CONNECTION) or b"upgrade" in line.lower():
            size += len(line) - 4
    return size


def message_size(raw: bytes) -> int:
    """A whole HTTP/1.1 response pyxlb wrote itself (content-length framed)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    start, *lines = head.split(b"\r\n")
    size = START_LINE + len(start) - 2  # the two spaces
    for line in lines:
        if not line.lower().startswith(_CONNECTION):
            size += len(line) - 2  # ": "
    return size + len(body)


def chunked_reply_size(raw: bytes, head_only: bool) -> int:
    """A reply of the stats service: the page, chunked as HAProxy's applet sends it
    (``responses.stats_response``), counts its head and the data of its chunks (no
    end-of-trailers block: the applet makes the message in HTX, it never parsed a
    chunked one); its 401 and 303 as ``message_size``."""
    head, _, body = raw.partition(b"\r\n\r\n")
    size = message_size(head + b"\r\n\r\n")
    if head_only or b"\r\ntransfer-encoding: chunked" not in head:
        # HEAD, or one of the service's content-length replies (401, 303).
        return size + (0 if head_only else len(body))
    at = 0
    while True:
        end = body.index(b"\r\n", at)
        length = int(body[at:end], 16)
        if not length:
            return size
        size += length
        at = end + 2 + length + 2
