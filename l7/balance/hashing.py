"""The numbers HAProxy hashes a request into, bit for bit (backend.c, hash.c, intops.h).

Each function returns an unsigned 32-bit int, or None when the request has nothing to
hash (then the balancer falls back to its round-robin, as HAProxy does).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from pyxlb.config.model import BalanceParams
from pyxlb.l7.balance.base import Need

M32 = 0xFFFFFFFF

Hasher = Callable[[bytes | None], int | None]
"""A request's balancing key (see each ``*_hasher``) to its 32-bit hash."""

SDBM_MULTIPLIER = 65599
"""sdbm's step ``c + (h << 6) + (h << 16) - h`` is ``h * 65599 + c`` modulo 2**32."""

_LWS = b" \t\r\n"


def sdbm(data: bytes) -> int:
    """HAProxy's default hash function, ``hash_sdbm``."""
    h = 0
    for c in data:
        h = (h * SDBM_MULTIPLIER + c) & M32
    return h


def full_hash(a: int) -> int:
    """Bob Jenkins' 32-bit integer avalanche hash times 3221225473 (``full_hash``), which
    places the points of consistent hashing."""
    a = ((a + 0x7ED55D16) + (a << 12)) & M32
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & M32
    a = ((a + 0x165667B1) + (a << 5)) & M32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & M32
    a = ((a + 0xFD7046C5) + (a << 3)) & M32
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & M32
    return (a * 3221225473) & M32


def source_key(address: str) -> bytes:
    """The key ``balance source`` hashes: the client address in network order (4 bytes
    for IPv4, 16 for IPv6; an IPv4-mapped IPv6 peer stays 16 bytes, as HAProxy sees it).
    Compute it once per client connection."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(family, address.split("%", 1)[0])


def source_hash(key: bytes | None) -> int | None:
    """``get_server_sh``: the XOR of the address's big-endian 32-bit words."""
    if key is None:
        return None
    n = int.from_bytes(key, "big")
    if len(key) == 4:
        return n
    return (n ^ (n >> 32) ^ (n >> 64) ^ (n >> 96)) & M32


def uri_hasher(params: BalanceParams) -> Hasher:
    """``get_server_uh`` for ``balance uri [whole] [len N] [depth N]``: sdbm over the
    request target as received, up to the ``?`` unless ``whole``, over at most ``len``
    bytes, and before the slash that would start level ``depth + 1`` (the slashes of an
    absolute URI's ``http://`` count, as in HAProxy)."""
    limit = params.len
    stop_slash = None if params.depth is None else params.depth + 1
    whole = params.whole

    def uri_hash(key: bytes | None) -> int | None:
        if key is None:
            return None
        uri = key if limit is None else key[:limit]
        end = len(uri)
        if not whole:
            q = uri.find(b"?")
            if q >= 0:
                end = q
        if stop_slash is not None:
            at = -1
            for _ in range(stop_slash):
                at = uri.find(b"/", at + 1, end)
                if at < 0:
                    break
            else:
                end = at
        return sdbm(uri[:end] if end < len(uri) else uri)

    return uri_hash


def header_hasher(params: BalanceParams) -> Hasher:
    """``get_server_hh`` for ``balance hdr(NAME) [use_domain_only]``. The key is the raw
    value of the first NAME header; HAProxy hashes its first comma-separated element
    (quotes respected), trimmed, and with ``use_domain_only`` only the label before the
    last dot that precedes the end (``www.example.com:80`` -> ``example``). An absent or
    empty value has no hash."""
    domain_only = params.use_domain_only

    def header_hash(key: bytes | None) -> int | None:
        if key is None:
            return None
        value = first_value(key)
        if not value:
            return None
        if domain_only:
            value = _main_domain(value)
        return sdbm(value)

    return header_hash


def first_value(raw: bytes) -> bytes:
    """The first element of a header value as ``http_find_header(..., full=0)`` sees it."""
    if b"," in raw:
        raw = raw[: _value_end(raw)]
    return raw.strip(_LWS)


def _value_end(raw: bytes) -> int:
    """Where the first element ends: the first comma outside a quoted string."""
    quoted = escaped = False
    for i, c in enumerate(raw):
        if escaped:
            escaped = False
        elif quoted:
            if c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            return i
    return len(raw)


def _main_domain(value: bytes) -> bytes:
    """The ``use_domain_only`` walk of ``get_server_hh``, backwards from the end: the last
    dot marks the end, the dot before it the start (``www.example.com`` -> ``example``);
    without a dot, the whole value.

    The C loop never tests the first byte for the end dot, nor the byte just before the
    end dot for the start one (``a..b`` -> ``a.``); kept so the hashes match. It also
    starts by reading one byte past the value, which is not part of the header and is
    taken as not a dot here.
    """
    end = value.rfind(b".", 1)
    if end < 0:
        return value
    start = value.rfind(b".", 0, end - 1) + 1
    return value[start:end]


class Hashed:
    """What a hashing balancer keeps beside its map or ring: the key the request
    must supply (`need`, and the header name for hdr) and the hash applied to it.
    Mixed in before the Balancer it extends."""

    def __init__(
        self,
        servers: Sequence[Any],
        allbackups: bool,
        need: Need,
        hasher: Hasher,
        header: bytes | None = None,
    ) -> None:
        super().__init__(servers, allbackups)  # type: ignore[call-arg]
        self.need = need
        self.header = header
        self._hasher = hasher
