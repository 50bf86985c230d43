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

_UNPROCESSABLE = b"422 Unprocessable Content"
_UNPROCESSABLE_BODY = _page(_UNPROCESSABLE,
                            b"The server cannot process the contained instructions.")

UNPROCESSABLE: Final = (
    b"HTTP/1.1 " + _UNPROCESSABLE + b"\r\n"
    b"Content-length: " + str(len(_UNPROCESSABLE_BODY)).encode() + b"\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n" + _UNPROCESSABLE_BODY
)
"""Answer to a chunked request that also names another transfer coding: raw
like the 400, but without a Connection header, though the connection closes."""

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


# The other pages of http_err_msgs[] (src/http.c), as `http-request deny deny_status N`
# sends them. 501's body starts with a stray '.' in HAProxy 2.6 too.
_DENY_PAGES: Final = {
    200: (b"200 OK", b"Service ready."),
    400: (_BAD_REQUEST, b"Your browser sent an invalid request."),
    401: (b"401 Unauthorized", b"You need a valid user and password to access this content."),
    403: (b"403 Forbidden", b"Request forbidden by administrative rules."),
    404: (b"404 Not Found", b"The resource could not be found."),
    405: (b"405 Method Not Allowed", b"A request was made of a resource using a request "
          b"method not supported by that resource"),
    407: (b"407 Unauthorized", b"You need a valid user and password to access this content."),
    408: (_TIMEOUT, b"Your browser didn't send a complete request in time."),
    410: (b"410 Gone", b"The resource is no longer available and will not be available again."),
    413: (b"413 Payload Too Large", b"The request entity exceeds the maximum allowed."),
    425: (b"425 Too Early", b"Your browser sent early data."),
    429: (b"429 Too Many Requests",
          b"You have sent too many requests in a given amount of time."),
    500: (b"500 Internal Server Error", b"An internal server error occurred."),
    501: (b"501 Not Implemented", b".The server does not support the functionality "
          b"required to fulfill the request."),
    **_HTX_PAGES,
}
# HAProxy closes after these whatever the request said.
def status_of(answer: bytes) -> int:
    """The status code of a whole answer pyxlb made (``HTTP/1.1 NNN ...``)."""
    return int(answer[9:12])


ALWAYS_CLOSE: Final = frozenset({400, 408})

_DENIED: Final = {
    (code, close): _htx(status, _page(status, text), close or code in ALWAYS_CLOSE)
    for code, (status, text) in _DENY_PAGES.items()
    for close in (False, True)
}


def deny_response(status: int, close: bool) -> bytes:
    """`http-request deny [deny_status N]`: HAProxy's page for N (403 by default)."""
    return _DENIED[status, close]


_UNAUTHORIZED_STATUS: Final = b"401 Unauthorized"
_UNAUTHORIZED_BODY: Final = _page(_UNAUTHORIZED_STATUS, _DENY_PAGES[401][1])


def auth_response(realm: str, close: bool) -> bytes:
    """`http-request auth [realm R]`: 401 asking for Basic credentials."""
    return (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b"content-length: " + str(len(_UNAUTHORIZED_BODY)).encode() + b"\r\n"
        b"cache-control: no-cache\r\n"
        b"content-type: text/html\r\n"
        b'www-authenticate: Basic realm="' + realm.encode("latin-1") + b'"\r\n'
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n" + _UNAUTHORIZED_BODY
    )


_REDIRECT_STATUS: Final = {301: b"301 Moved Permanently", 302: b"302 Found",
                           303: b"303 See Other", 307: b"307 Temporary Redirect",
                           308: b"308 Permanent Redirect"}


def redirect_response(code: int, location: bytes, close: bool,
                      cookie: bytes | None = None) -> bytes:
    """A `redirect`: empty body, `cache-control: no-cache` for the temporary codes."""
    return (
        b"HTTP/1.1 " + _REDIRECT_STATUS[code] + b"\r\n"
        b"content-length: 0\r\n"
        b"location: " + location + b"\r\n"
        + (b"cache-control: no-cache\r\n" if code in (302, 303, 307) else b"")
        + (b"set-cookie: " + cookie + b"\r\n" if cookie is not None else b"")
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n"
    )


def stats_response(body: bytes, ctype: bytes, head_only: bool, close: bool,
                   refresh_s: int | None = None, http10: bool = False) -> bytes:
    """The stats page (HTML, CSV) or metrics reply as HAProxy's applet sends it: 200
    with ``cache-control: no-cache``, with `stats refresh` ``refresh: N``, and the
    body in one chunk. The answer to HEAD has no ``transfer-encoding``. HAProxy
    puts ``connection: close`` after the chunking header when the client asked to
    close, before it for an HTTP/1.0 client (``http10``), which closes by default."""
    chunked = b"" if head_only else b"transfer-encoding: chunked\r\n"
    conn = b"connection: close\r\n" if close else b""
    head = (
        b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: " + ctype + b"\r\n"
        + (b"refresh: " + str(refresh_s).encode() + b"\r\n" if refresh_s is not None else b"")
        + (conn + chunked if http10 else chunked + conn) + b"\r\n"
    )
    if head_only:
        return head
    return head + b"%X\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


def promex_response(body: bytes, ctype: bytes, head_only: bool, close: bool) -> bytes:
    """The metrics as HAProxy's prometheus-exporter applet sends them: as the stats
    page's, but its head says chunked for HEAD too and ``connection: close`` last,
    HTTP/1.0 included (seen on 2.6.12)."""
    head = (b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: " + ctype
            + b"\r\ntransfer-encoding: chunked\r\n"
            + (b"connection: close\r\n" if close else b"") + b"\r\n")
    if head_only:
        return head
    return head + b"%X\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


def stats_admin_redirect(location: bytes, close: bool) -> bytes:
    """After a `stats admin` form: 303 to the page with the outcome (`;st=DONE`)."""
    return (
        b"HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\n"
        b"content-type: text/plain\r\ncontent-length: 0\r\n"
        b"location: " + location + b"\r\n"
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n"
    )
