"""Cookie persistence (``cookie NAME insert|rewrite|prefix ...`` and each server's
``cookie VALUE``), as HAProxy 2.6.12 does it, over forwarded header lines.

Sans-IO: the proxy hands in the header lines it is about to forward
(``b"name: value\\r\\n"``, names lower-case) and gets back the lines to forward
instead. ``CookiePersistence`` is built once per backend, with every byte string it
may add prepared then; a backend without a ``cookie`` line has none, and costs nothing.

What HAProxy does, as observed in the lab (``haproxy -db`` against scripted servers):

* Request: the first ``NAME`` cookie of the Cookie headers names a server by its
  cookie value (``prefix``: the value's part before ``~``). ``insert indirect``
  removes every ``NAME`` cookie before forwarding, rewriting the header as
  ``a=1; c=3`` and dropping it when nothing is left; ``prefix`` forwards the
  value without its prefix; other modes forward the header as it came.
* A cookie naming a server that is up takes the request there (``valid``);
  naming a server that is down, or none, the balancer picks.
* Response: ``insert`` appends ``set-cookie: NAME=VALUE; path=/`` (then each
  ``; domain=D``, ``; HttpOnly``, ``; Secure``) unless the client's cookie was
  valid, or ``postonly`` and the method is not POST, or ``preserve`` and the server
  set ``NAME`` itself; without ``preserve`` a server's own ``NAME`` cookie is
  removed. ``rewrite`` replaces the value of the server's ``NAME`` cookie with the
  server's cookie value; ``prefix`` prepends ``VALUE~``.
  A server without a cookie value gets ``NAME=; Expires=Thu, 01-Jan-1970
  00:00:01 GMT; path=/``, removing the client's. With ``indirect`` and a valid
  client cookie, the server's own ``NAME`` cookie is removed in every mode.
* ``nocache``: when pyxlb inserts the cookie, a cacheable response to a GET or HEAD
  also gets ``cache-control: private`` (after the set-cookie).
  Cacheable: a status of RFC 7231's list, no ``private``/``no-cache``/
  ``no-store``/``max-age=0`` directive, and freshness (``max-age``, ``s-maxage``,
  Expires) or a validator (ETag, Last-Modified).

Not served: ``maxidle``/``maxlife`` (dates in the cookie value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

S = TypeVar("S")

CACHEABLE_STATUS = frozenset({200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501})
"""Statuses HAProxy (http_wait_for_response) treats as cacheable by default."""

_COOKIE = b"cookie: "
_SET_COOKIE = b"set-cookie: "
_PRIVATE = b"cache-control: private\r\n"
_CRLF = b"\r\n"
_NOT_CACHEABLE = frozenset({b"private", b"no-cache", b"no-store", b"max-age=0", b"s-maxage=0"})


@dataclass(slots=True)
class CookieRequest(Generic[S]):
    """What a request's cookie said: the server it names (None: none or unknown),
    and, once the proxy has chosen, whether the request went there (``valid``)."""

    server: S | None
    method: bytes
    valid: bool = False


class CookiePersistence(Generic[S]):
    """One backend's cookie persistence. ``servers`` are (cookie value or None,
    server) pairs, in declaration order."""

    def __init__(self, config: Any, servers: Sequence[tuple[str | None, S]]) -> None:
        self.name: bytes = config.name.encode("latin-1")
        self.mode: str | None = config.mode
        self.indirect: bool = config.indirect
        self.nocache: bool = config.nocache
        self.postonly: bool = config.postonly
        self.preserve: bool = config.preserve
        self._strip = self.mode == "insert" and self.indirect
        self._by_value: dict[bytes, S] = {}
        self._value_of: dict[S, bytes] = {}
        for value, server in servers:
            if value is None:
                continue
            raw = value.encode("latin-1")
            # The first server with a value wins, as HAProxy's lookup finds it.
            self._by_value.setdefault(raw, server)
            self._value_of[server] = raw
        attrs = b"; path=/" + b"".join(b"; domain=" + d.encode("latin-1")
                                       for d in config.domains)
        if config.httponly:
            attrs += b"; HttpOnly"
        if config.secure:
            attrs += b"; Secure"
        self._insert_line: dict[S, bytes] = {
            key: _SET_COOKIE + self.name + b"=" + raw + attrs + _CRLF
            for key, raw in self._value_of.items()
        }
        self._removal_line = (_SET_COOKIE + self.name
                              + b"=; Expires=Thu, 01-Jan-1970 00:00:01 GMT" + attrs + _CRLF)

    # -- the request

    def request(self, lines: list[bytes], method: bytes) -> tuple[list[bytes], CookieRequest[S]]:
        """The lines to forward and what the cookie said."""
        name = self.name
        found: bytes | None = None
        out: list[bytes] | None = None
        for i, line in enumerate(lines):
            if not line.startswith(_COOKIE) or name not in line:
                continue
            pairs = line[len(_COOKIE):-2].split(b";")
            kept: list[bytes] = []
            changed = False
            for pair in pairs:
                key, eq, value = pair.partition(b"=")
                if key.strip() != name or not eq:
                    kept.append(pair.strip())
                    continue
                value = value.strip()
                if self.mode == "prefix":
                    prefix, tilde, rest = value.partition(b"~")
                    if found is None and tilde:
                        found = prefix
                    if tilde:
                        kept.append(name + b"=" + rest)
                        changed = True
                    else:
                        kept.append(pair.strip())
                    continue
                if found is None:
                    found = value
                if self._strip:
                    changed = True
                else:
                    kept.append(pair.strip())
            if changed:
                if out is None:
                    out = list(lines)
                kept = [p for p in kept if p]
                out[i] = _COOKIE + b"; ".join(kept) + _CRLF if kept else b""
        server = None if found is None else self._by_value.get(found)
        if out is not None:
            lines = [line for line in out if line]
        return lines, CookieRequest(server, method)

    # -- the response

    def response(self, lines: list[bytes], status: int, req: CookieRequest[S],
                 server: S) -> list[bytes]:
        """The response lines to forward from ``server`` to the client (HAProxy's
        http_manage_server_side_cookies, then its insertion)."""
        value = self._value_of.get(server)
        mode = self.mode
        own = _SET_COOKIE + self.name + b"="
        out = lines
        server_set = False
        if (mode is not None or self.indirect) and any(line.startswith(own) for line in lines):
            out = []
            for line in lines:
                if not line.startswith(own):
                    out.append(line)
                    continue
                server_set = True
                if self.preserve:
                    out.append(line)
                elif mode == "insert" or (self.indirect and req.valid):
                    pass  # the server's own cookie goes
                elif value is not None and mode == "rewrite":
                    rest = line[len(own):]
                    end = rest.find(b";")
                    out.append(own + value + (rest[end:] if end >= 0 else _CRLF))
                elif value is not None and mode == "prefix":
                    out.append(own + value + b"~" + line[len(own):])
                else:
                    out.append(line)
        if (
            mode == "insert"
            and not req.valid
            and not (self.postonly and req.method != b"POST")
            and not (self.preserve and server_set)
        ):
            if out is lines:
                out = list(lines)
            # A server without a cookie value (a backup, say) gets the cookie removed.
            out.append(self._insert_line.get(server, self._removal_line))
            if self.nocache and req.method in (b"GET", b"HEAD") and cacheable(status, out):
                out.append(_PRIVATE)
        return out


def cacheable(status: int, lines: list[bytes]) -> bool:
    """Whether a response may be stored by a shared cache, as HAProxy 2.6 judges it
    (http_check_response_for_cacheability)."""
    if status not in CACHEABLE_STATUS:
        return False
    fresh = validator = False
    for line in lines:
        name, _, value = line.partition(b": ")
        if name == b"cache-control":
            for directive in value.lower().split(b","):
                directive = directive.strip()
                if directive in _NOT_CACHEABLE:
                    return False
                if directive.startswith((b"max-age", b"s-maxage")):
                    fresh = True
        elif name == b"expires":
            fresh = True
        elif name in (b"etag", b"last-modified"):
            validator = True
    return fresh or validator
