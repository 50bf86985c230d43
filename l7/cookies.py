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
* Every ``NAME`` cookie counts, in order, until one names a server that is up
  (``SRV=zz; SRV=b`` goes to b). ``prefix``: a value without ``~`` is all server id.

Dates (``maxidle``/``maxlife``, HAProxy's http_manage_client_side_cookies): outside
``prefix`` mode a value may carry ``VALUE|LAST|FIRST``, each date the Unix time
divided by 4 in 5 characters of base64 (``s30tob64``), read when it decodes above 0.
A first date more than ``maxlife`` seconds old (``O``), or a last date more than
``maxidle`` old (``E``), or either more than a day ahead, makes the cookie ignored:
the request is balanced again. An inserted cookie carries ``|LAST`` (now + 3, over
4: so the next second's request does not refresh it) whenever either is set, and
``|FIRST`` (the cookie's own first date, else now's) with ``maxlife``. A valid
cookie is set again (``U``) when its last date is in the past, when ``maxlife`` is
set and it has no first date, or when it has one and ``maxlife`` is not set.

The log's cookie flags (HAProxy's %tsc third and fourth characters, ``-`` for a
passive cookie, without insert, rewrite or prefix): ``seen`` is
``N`` (no cookie), ``I`` (names no server), ``D`` (names servers that are down),
``V`` (valid), ``E`` (idle too long), ``O`` (too old); ``sent`` is ``N``
(nothing), ``P`` (the server's cookie passed), ``R`` (rewritten), ``D`` (removed),
``I`` (inserted), ``U`` (the valid cookie's dates updated).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S")

CACHEABLE_STATUS = frozenset({200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501})
"""Statuses HAProxy (http_wait_for_response) treats as cacheable by default."""

FUTURE_S = 86400
"""A cookie date further ahead than this is ignored, as HAProxy does."""

_COOKIE = b"cookie: "
_SET_COOKIE = b"set-cookie: "
_PRIVATE = b"cache-control: private\r\n"
_CRLF = b"\r\n"
_NOT_CACHEABLE = frozenset({b"private", b"no-cache", b"no-store", b"max-age=0", b"s-maxage=0"})
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64_VALUE = {c: i for i, c in enumerate(_BASE64)}


def s30tob64(value: int) -> bytes:
    """The low 30 bits of ``value`` in 5 base64 characters, most significant first
    (HAProxy's s30tob64)."""
    return bytes(_BASE64[(value >> shift) & 0x3F] for shift in (24, 18, 12, 6, 0))


def b64tos30(text: bytes) -> int:
    """The value of 5 characters written by ``s30tob64``; -1 if one is not base64."""
    value = 0
    for c in text[:5]:
        digit = _BASE64_VALUE.get(c)
        if digit is None:
            return -1
        value = (value << 6) + digit
    return value


@dataclass(slots=True, eq=False)
class _Look:
    """One ``NAME`` cookie of a request: the servers its value names (none: unknown
    or empty), ``E``/``O`` when its dates made it ignored, and the request's dates
    once it was read (HAProxy keeps them across the request's cookies)."""

    servers: tuple[Any, ...]
    ignored: str
    last: int
    first: int


@dataclass(slots=True)
class CookieRequest(Generic[S]):
    """What a request's cookies said, and, once the proxy has chosen (``pick``), the
    server they took it to (``valid``: HAProxy's direct access), with the log's
    flags (``seen``, ``sent``) and the cookie's dates (Unix seconds, 0: none)."""

    server: S | None
    method: bytes
    valid: bool = False
    looks: list[_Look] = field(default_factory=list)
    seen: str = "N"
    sent: str = "N"
    last: int = 0
    first: int = 0

    def pick(self, is_up: Callable[[S], bool]) -> S | None:
        """The first server that is up among those the cookies name, in order: the
        request goes there. Sets ``seen`` and the dates the response works from."""
        looks = self.looks
        if not looks:
            return None
        for look in looks:
            if look.ignored:
                self.seen = look.ignored
                continue
            if not look.servers:
                if self.seen not in "DEO":
                    self.seen = "I"
                continue
            for server in look.servers:
                if is_up(server):
                    self.seen = "V"
                    self.server = server
                    self.valid = True
                    self.last, self.first = look.last, look.first
                    return server
            self.seen = "D"
        look = looks[-1]
        self.last, self.first = look.last, look.first
        return None


class CookiePersistence(Generic[S]):
    """One backend's cookie persistence. ``servers`` are (cookie value or None,
    server) pairs, in declaration order; ``clock`` gives the Unix time, read only
    when the cookie carries dates (``maxidle``/``maxlife``)."""

    def __init__(self, config: Any, servers: Sequence[tuple[str | None, S]],
                 clock: Callable[[], float] = time.time) -> None:
        self.name: bytes = config.name.encode("latin-1")
        self.mode: str | None = config.mode
        self.indirect: bool = config.indirect
        self.nocache: bool = config.nocache
        self.postonly: bool = config.postonly
        self.preserve: bool = config.preserve
        # HAProxy counts both in whole seconds; 0 is off.
        self.maxidle = (getattr(config, "maxidle_ms", None) or 0) // 1000
        self.maxlife = (getattr(config, "maxlife_ms", None) or 0) // 1000
        self._clock = clock
        self._strip = self.mode == "insert" and self.indirect
        self._by_value: dict[bytes, tuple[S, ...]] = {}
        self._value_of: dict[S, bytes] = {}
        for value, server in servers:
            if value is None:
                continue
            raw = value.encode("latin-1")
            # Servers may share a value: the first one up takes the request.
            self._by_value[raw] = (*self._by_value.get(raw, ()), server)
            self._value_of[server] = raw
        attrs = b"; path=/" + b"".join(b"; domain=" + d.encode("latin-1")
                                       for d in config.domains)
        if config.httponly:
            attrs += b"; HttpOnly"
        if config.secure:
            attrs += b"; Secure"
        self._attrs = attrs + _CRLF
        self._insert_line: dict[S, bytes] = {
            key: _SET_COOKIE + self.name + b"=" + raw + attrs + _CRLF
            for key, raw in self._value_of.items()
        }
        self._removal_line = (_SET_COOKIE + self.name
                              + b"=; Expires=Thu, 01-Jan-1970 00:00:01 GMT" + attrs + _CRLF)

    # -- the request

    def request(self, lines: list[bytes], method: bytes) -> tuple[list[bytes], CookieRequest[S]]:
        """The lines to forward and what the cookies said."""
        name = self.name
        req: CookieRequest[S] = CookieRequest(None, method)
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
                    self._look(req, prefix)
                    if tilde:
                        kept.append(name + b"=" + rest)
                        changed = True
                    else:
                        kept.append(pair.strip())
                    continue
                self._look(req, value)
                if self._strip:
                    changed = True
                else:
                    kept.append(pair.strip())
            if changed:
                if out is None:
                    out = list(lines)
                kept = [p for p in kept if p]
                out[i] = _COOKIE + b"; ".join(kept) + _CRLF if kept else b""
        if out is not None:
            lines = [line for line in out if line]
        return lines, req

    def _look(self, req: CookieRequest[S], value: bytes) -> None:
        """One ``NAME`` cookie's value: its server id and, outside prefix mode, dates."""
        looks = req.looks
        last, first = (looks[-1].last, looks[-1].first) if looks else (0, 0)
        ignored = ""
        bar = value.find(b"|") if self.mode != "prefix" else -1
        if bar >= 0:
            sid = value[:bar]
            dates = value[bar + 1:]
            if len(dates) >= 5 and (v := b64tos30(dates)) > 0:
                last = v << 2
            bar2 = dates.find(b"|")
            if bar2 >= 0 and len(dates) - bar2 > 5 and (v := b64tos30(dates[bar2 + 1:])) > 0:
                first = v << 2
        else:
            sid = value
        if (first and self.maxlife) or (last and self.maxidle):
            now = int(self._clock())
            if first and self.maxlife and (now - first > self.maxlife
                                           or first - now > FUTURE_S):
                ignored = "O"
            elif last and self.maxidle and (now - last > self.maxidle
                                            or last - now > FUTURE_S):
                ignored = "E"
            if ignored:
                sid, last, first = b"", 0, 0
        servers = self._by_value.get(sid, ()) if sid else ()
        looks.append(_Look(servers, ignored, last, first))

    # -- the response

    def response(self, lines: list[bytes], status: int, req: CookieRequest[S],
                 server: S) -> list[bytes]:
        """The response lines to forward from ``server`` to the client (HAProxy's
        http_manage_server_side_cookies, then its insertion); ``req.sent`` says
        what became of the cookie."""
        value = self._value_of.get(server)
        mode = self.mode
        own = _SET_COOKIE + self.name + b"="
        out = lines
        server_set = False
        if any(line.startswith(own) for line in lines):
            out = []
            for line in lines:
                if not line.startswith(own):
                    out.append(line)
                    continue
                server_set = True
                if self.preserve:
                    req.sent = "P"
                    out.append(line)
                elif mode == "insert" or (self.indirect and req.valid):
                    req.sent = "D"  # the server's own cookie goes
                elif value is not None and mode == "rewrite":
                    rest = line[len(own):]
                    end = rest.find(b";")
                    out.append(own + value + (rest[end:] if end >= 0 else _CRLF))
                    req.sent = "R"
                elif value is not None and mode == "prefix":
                    out.append(own + value + b"~" + line[len(own):])
                    req.sent = "R"
                else:
                    req.sent = "P"
                    out.append(line)
        if (
            mode == "insert"
            and not (self.postonly and req.method != b"POST")
            and not (self.preserve and server_set)
        ):
            line = self._insertion(req, server, value)
            if line is not None:
                if out is lines:
                    out = list(lines)
                out.append(line)
                req.sent = "U" if value is not None and req.valid else "I"
                if (self.nocache and req.method in (b"GET", b"HEAD")
                        and cacheable(status, out)):
                    out.append(_PRIVATE)
        return out

    def _insertion(self, req: CookieRequest[S], server: S, value: bytes | None
                   ) -> bytes | None:
        """The set-cookie line to add, or None when the client's cookie stands."""
        maxidle, maxlife = self.maxidle, self.maxlife
        last, first = req.last, req.first
        if not (maxidle or maxlife or last or first):
            return None if req.valid else self._insert_line.get(server, self._removal_line)
        now = int(self._clock())
        if req.valid and not (
            ((maxidle or last) and (not last or last < now))
            or (maxlife and not first)
            or (not maxlife and first)
        ):
            return None
        if value is None:
            # A server without a cookie value (a backup, say) gets the cookie removed.
            return self._removal_line
        if not (maxidle or maxlife):
            return self._insert_line[server]
        stamp = s30tob64((now + 3) >> 2)
        dated = self.name + b"=" + value + b"|" + stamp
        if maxlife:
            dated += b"|" + (s30tob64(first >> 2) if first else stamp)
        return _SET_COOKIE + dated + self._attrs


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
