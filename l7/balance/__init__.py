"""Server choice inside one backend: HAProxy 2.6's balancing algorithms, pure (no
sockets, no clock), giving the same server for the same sequence of requests and
events as HAProxy does.

The l7 proxy keeps one balancer per backend and, per request, calls
``pick(key)`` with the key ``need`` names (client address, URI, a header value).
Whoever learns of a change tells the balancer: ``set_usable`` and ``set_weight``
(health checks, admin commands), ``acquire``/``release`` around each connection
to a server.

| ``balance``            | module     | HAProxy          |
|------------------------|------------|------------------|
| roundrobin (default)   | fwrr       | lb_fwrr.c        |
| static-rr              | map        | lb_map.c         |
| leastconn, first       | leastconn  | lb_fwlc.c, lb_fas.c |
| source, uri, hdr(name) | map, chash | backend.c hashes, lb_map.c or lb_chash.c |

Backups take traffic only when no active server is usable: the first usable backup,
or all of them balanced with ``option allbackups``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyxlb.config.model import BalanceParams
from pyxlb.l7.balance.base import Balanceable, Balancer, Need, S
from pyxlb.l7.balance.chash import ConsistentHash
from pyxlb.l7.balance.fwrr import RoundRobin
from pyxlb.l7.balance.hashing import (
    Hasher,
    header_hasher,
    source_hash,
    source_key,
    uri_hasher,
)
from pyxlb.l7.balance.leastconn import First, LeastConn
from pyxlb.l7.balance.map import MapHash, StaticRoundRobin

__all__ = [
    "ALGORITHMS", "Balanceable", "Balancer", "ConsistentHash", "First", "LeastConn",
    "MapHash", "Need", "RoundRobin", "StaticRoundRobin", "eligible", "make_balancer",
    "source_key",
]

_PLAIN: dict[str, Callable[..., Balancer]] = {
    "roundrobin": RoundRobin,
    "static-rr": StaticRoundRobin,
    "leastconn": LeastConn,
    "first": First,
}
_HASHED = ("source", "uri", "hdr")
ALGORITHMS = (*_PLAIN, *_HASHED)
"""The ``balance`` keywords l7 implements (``hdr`` stands for ``hdr(name)``)."""


def make_balancer(
    algorithm: str | None,
    servers: Sequence[S],
    allbackups: bool = False,
    params: BalanceParams | None = None,
    hash_type: str = "map-based",
) -> Balancer[S]:
    """The balancer for a backend's ``balance`` and ``hash-type`` lines (roundrobin
    when absent, as HAProxy). ``params`` carries uri's whole/len/depth and hdr's name.

    Raises ValueError naming the algorithm when l7 does not implement it.
    """
    name = algorithm or "roundrobin"
    plain = _PLAIN.get(name)
    if plain is not None:
        return plain(servers, allbackups)
    if name not in _HASHED:
        raise ValueError(
            f"balance {name!r} is not implemented in the l7 tier "
            f"(known: {', '.join(ALGORITHMS)})"
        )
    params = params or BalanceParams()
    header: bytes | None = None
    hasher: Hasher
    if name == "source":
        need, hasher = Need.SOURCE, source_hash
    elif name == "uri":
        need, hasher = Need.URI, uri_hasher(params)
    else:
        if not params.header:
            raise ValueError("balance hdr needs a header name, as in 'hdr(host)'")
        need, hasher = Need.HEADER, header_hasher(params)
        header = params.header.lower().encode("ascii")
    if hash_type == "consistent":
        return ConsistentHash(servers, allbackups, need, hasher, header)
    if hash_type != "map-based":
        raise ValueError(f"hash-type {hash_type!r} is not implemented in the l7 tier "
                         "(known: map-based, consistent)")
    return MapHash(servers, allbackups, need, hasher, header)


def eligible(servers: Sequence[S], allbackups: bool = False) -> list[S]:
    """The servers that take traffic when every server is up, in declaration order.

    Active servers when there are any; otherwise the first backup, or every backup
    with ``option allbackups`` (HAProxy's rule). Weight 0 means "no new traffic".
    """
    active = [s for s in servers if not s.backup and s.weight > 0]
    if active:
        return active
    backups = [s for s in servers if s.backup and s.weight > 0]
    return backups if allbackups else backups[:1]
