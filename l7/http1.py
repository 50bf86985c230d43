"""HTTP/1.1 message heads and body framing as the proxy writes them.

Parsing is httptools' (llhttp) job; this module only turns parsed pieces back
into bytes, the way HAProxy 2.6 forwards them:

* header names lower-cased (HTX stores them so), values and order kept;
* the Connection header loses its ``close``/``keep-alive`` tokens (the proxy
  decides those per hop) and disappears when nothing else is left; other
  hop-by-hop headers pass, as HAProxy passes them;
* the proxy's own headers (``x-forwarded-for``, ``connection``) go last;
* bodies keep their framing: content-length bodies pass as they are, chunked ones
  are re-chunked piece by piece with their trailers.

Upgrades pass as HAProxy 2.6 passes them: the ``upgrade`` token stays in the
Connection header and the Upgrade header is forwarded (l7/tunnel.py relays what
follows a 101).

Pure functions over bytes; the proxy calls them once per message (heads) or per
body piece (``chunk``). The parser settings both sides share live here too, and
the request checks HAProxy 2.6 makes where llhttp is laxer (repeated Host,
absolute targets, transfer codings, the HTX room a head may take), and where it
is stricter: a method it does not know, which HAProxy still waits for.
"""

from __future__ import annotations

from typing import Final

from httptools import HttpParserError

MAX_HEAD: Final = 15360
"""Largest message head accepted (HAProxy: tune.bufsize 16384 - tune.maxrewrite 1024):
a response head, or a request head still arriving; a whole request head must also
fit HTX_REQUEST_HEAD."""

HTX_BLOCK: Final = 8
"""What HAProxy's HTX message spends on each header besides its name and value."""

HTX_REQUEST_HEAD: Final = 15267
"""Room for a request head in HAProxy 2.6's HTX message, counted as the proxy
counts it: method, URI, and each header's name and value plus HTX_BLOCK. Of its
16384-byte buffer, tune.maxrewrite (1024) and the struct htx leave 15311 bytes;
the start line's block takes 28 more and the version, the end-of-headers block 8.
A byte more is a 400 from haproxy 2.6.12
(tests/e2e/test_bad_input_vs_haproxy.py, the head-at-limit cases)."""

LENIENCIES_OFF: Final = {
    name: False
    for name in (
        "lenient_headers", "lenient_chunked_length", "lenient_keep_alive",
        "lenient_transfer_encoding", "lenient_version", "lenient_data_after_close",
        "lenient_optional_lf_after_cr", "lenient_optional_cr_before_lf",
        "lenient_optional_crlf_after_chunk", "lenient_spaces_after_chunk_size",
    )
}
"""Every llhttp leniency, off: a proxy that is laxer than the servers behind it
invites request smuggling. They are off by default; saying so pins it."""

_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""RFC 9110's token characters, what HAProxy 2.6 takes in a method."""


def method_in_progress(data: bytes) -> bool:
    """Whether ``data``, where llhttp refused a request's method, ends with what
    HAProxy 2.6 still reads as the beginning of one: token characters after the
    last line end. HAProxy takes any token as a method and waits for the rest of
    the request line; llhttp knows a fixed list and refuses others at once."""
    tail = data[data.rfind(b"\n") + 1:]
    return bool(tail) and not tail.translate(None, _TCHAR)


class MethodToken:
    """Stands in for the request parser while a method llhttp refused arrives
    (``method_in_progress``): more token characters keep the request waiting for
    ``timeout http-request`` (HAProxy's 408), anything else makes it bad (a space
    too: llhttp could not forward the request)."""

    __slots__ = ()

    def feed_data(self, data: bytes) -> None:
        if data.translate(None, _TCHAR):
            raise HttpParserError("the method is not a token, or not one llhttp knows")


CRLF: Final = b"\r\n"
LAST_CHUNK: Final = b"0\r\n"
"""Start of the last chunk; trailer lines and a CRLF follow."""

CONNECTION_CLOSE: Final = b"connection: close\r\n"
CONNECTION_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"

# How the proxy treats a header, by lower-case name (one dict lookup per header).
CONNECTION: Final = 1
TRANSFER_ENCODING: Final = 2
CONTENT_LENGTH: Final = 3
UPGRADE: Final = 4
SPECIAL_HEADERS: Final[dict[bytes, int]] = {
    b"connection": CONNECTION,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"content-length": CONTENT_LENGTH,
    b"upgrade": UPGRADE,
}

# Connection tokens that concern only one hop; the proxy sets them itself.
_HOP_TOKENS: Final = frozenset({b"close", b"keep-alive"})

_VERSIONS: Final = {"1.1": b"1.1", "1.0": b"1.0"}


def version_bytes(version: str) -> bytes:
    """httptools' ``get_http_version()`` ("1.1") as bytes for a start line."""
    return _VERSIONS.get(version) or version.encode("ascii")


def header_line(lname: bytes, value: bytes) -> bytes:
    """One header line; ``lname`` is already lower-case."""
    return lname + b": " + value + CRLF


def connection_line(value: bytes) -> bytes | None:
    """What is left of a Connection header once hop tokens are removed, or None."""
    kept = [t for t in (t.strip() for t in value.split(b",")) if t and t.lower() not in _HOP_TOKENS]
    return b"connection: " + b", ".join(kept) + CRLF if kept else None


def has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated header value holds ``token`` (lower-case), in any case."""
    return any(t.strip().lower() == token for t in value.split(b","))


def is_chunked(transfer_encoding: bytes) -> bool:
    """Whether a (parser-validated) Transfer-Encoding value ends with ``chunked``."""
    return transfer_encoding.rsplit(b",", 1)[-1].strip().lower() == b"chunked"


def foreign_coding(transfer_encoding: bytes) -> bool:
    """Whether a Transfer-Encoding value names a coding other than ``chunked``:
    HAProxy 2.6 refuses such a request (422) when it is chunked in the end, and
    llhttp refuses it (400) when it is not."""
    return any(t.strip().lower() != b"chunked" for t in transfer_encoding.split(b","))


def same_host(first: bytes, value: bytes) -> bool:
    """Whether a repeated Host header says what the first one did (HAProxy 2.6
    forwards the first only, and refuses the request when they differ)."""
    return first.strip().lower() == value.strip().lower()


_DEFAULT_PORTS: Final = {b"http": b":80", b"https": b":443"}


def absolute_target(url: bytes) -> tuple[bytes, bytes] | None:
    """An absolute-form target (``http://host:80/x``) as HAProxy 2.6 forwards it
    (its scheme's default port dropped) and its authority without user info;
    None for origin-form and other targets."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or url[:1] == b"/":
        return None
    end = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    authority = rest[:end]
    port = _DEFAULT_PORTS.get(scheme.lower())
    if port is not None and authority.endswith(port):
        authority = authority[:-len(port)]
        url = scheme + sep + authority + rest[end:]
    return url, authority.rpartition(b"@")[2]


def request_head(
    method: bytes, url: bytes, version: bytes, lines: list[bytes], extra: bytes
) -> bytes:
    """A request head: start line, forwarded header lines, the proxy's own lines."""
    return b"%s %s HTTP/%s\r\n%s%s\r\n" % (method, url, version, b"".join(lines), extra)


def response_head(
    version: bytes, status: int, reason: bytes, lines: list[bytes], extra: bytes
) -> bytes:
    """A response head: status line, forwarded header lines, the proxy's own lines."""
    return b"HTTP/%s %d %s\r\n%s%s\r\n" % (version, status, reason, b"".join(lines), extra)


def chunk(data: bytes) -> bytes:
    """One body piece as a chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: list[bytes]) -> bytes:
    """The zero-size chunk with its trailer lines."""
    return LAST_CHUNK + b"".join(trailers) + CRLF
