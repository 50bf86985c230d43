"""Server choice inside one backend: which servers may take traffic, and the
round-robin order among them.

Pure: no sockets, no clock. The l7 proxy keeps one balancer per backend and calls
``pick()`` once per request.

HAProxy's ``balance roundrobin`` is dynamic weighted round-robin (lb_fwrr.c, see
HAPROXY-NOTES "Balancing"). This module implements the equal-weights case, where
fwrr reduces to plain alternation in declaration order (a, b, a, b). The weighted
algorithm replaces ``RoundRobin``'s body behind the same ``Balancer`` interface;
until then unequal weights are served as if they were equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar


class Balanceable(Protocol):
    """What a balancer needs to know about a server."""

    @property
    def weight(self) -> int: ...

    @property
    def backup(self) -> bool: ...


S = TypeVar("S", bound=Balanceable)


class Balancer(Protocol[S]):
    """One backend's choice of server for the next request."""

    def pick(self) -> S | None:
        """The server for the next request, or None when no server may take it."""
        ...


def eligible(servers: Sequence[S], allbackups: bool = False) -> list[S]:
    """The servers that take traffic, in declaration order.

    Active servers when there are any; otherwise the first backup, or every backup
    with ``option allbackups`` (HAProxy's rule). Weight 0 means "no new traffic".
    Health states are not known yet, so every declared server counts as up.
    """
    active = [s for s in servers if not s.backup and s.weight > 0]
    if active:
        return active
    backups = [s for s in servers if s.backup and s.weight > 0]
    return backups if allbackups else backups[:1]


class RoundRobin(Generic[S]):
    """``balance roundrobin`` over the eligible servers.

    Equal weights alternate in declaration order, as HAProxy's fwrr does for them.
    """

    __slots__ = ("_servers", "_count", "_next")

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        self._servers: tuple[S, ...] = tuple(eligible(servers, allbackups))
        self._count = len(self._servers)
        self._next = 0

    def pick(self) -> S | None:
        if not self._count:
            return None
        i = self._next
        self._next = i + 1 if i + 1 < self._count else 0
        return self._servers[i]


ALGORITHMS: dict[str, Callable[..., Balancer]] = {"roundrobin": RoundRobin}
"""``balance`` keyword to balancer class; every class takes (servers, allbackups)."""


def make_balancer(
    algorithm: str | None, servers: Sequence[S], allbackups: bool = False
) -> Balancer[S]:
    """The balancer for a backend's ``balance`` line (roundrobin when absent, as HAProxy).

    Raises ValueError naming the algorithm when l7 does not implement it yet.
    """
    try:
        factory = ALGORITHMS[algorithm or "roundrobin"]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise ValueError(
            f"balance {algorithm!r} is not implemented in the l7 tier yet (known: {known})"
        ) from None
    return factory(servers, allbackups)
