"""What every balancing algorithm shares: each server's balancing state, the choice
between active servers, the first backup and all backups, and the notifications the
rest of l7 sends (server usable or not, new weight, a connection taken or dropped).

This mirrors HAProxy's lbprm bookkeeping (backend.c ``recount_servers`` and
``update_backend_weight``, and the ``set_server_status_up/down`` and
``update_server_eweight`` callbacks of each lb_*.c): a change is first written as the
server's *next* state, the algorithm updates its structures from the current and next
states, then the next state becomes current.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

BE_WEIGHT_SCALE = 16
"""Effective weight per unit of user weight for the dynamic algorithms."""

SRV_EWGHT_MAX = 256 * BE_WEIGHT_SCALE
MAX_WEIGHT = 256

STATIC_WEIGHT_ERROR = (
    "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."
)


class Balanceable(Protocol):
    """What a balancer needs to know about a server."""

    @property
    def weight(self) -> int: ...

    @property
    def backup(self) -> bool: ...

    @property
    def maxconn(self) -> int: ...


S = TypeVar("S", bound=Balanceable)


class Need(enum.Enum):
    """The key ``pick()`` wants from the request."""

    NONE = "none"
    SOURCE = "source"  # the client address as hashing.source_key() packs it
    URI = "uri"  # the request target, as received
    HEADER = "header"  # the raw value of the first header named ``Balancer.header``


class Slot(Generic[S]):
    """One server's balancing state.

    ``up`` is the health/admin verdict (False when DOWN, in MAINT or DRAIN); a server
    is usable when up with a non-zero effective weight. ``next_*`` hold a change being
    applied. The remaining fields belong to the algorithms: a position in a tree
    (``tree``, ``entry``), fwrr's ``npos``/``lpos``/``rweight``, the map's ``wscore``
    and the consistent hash's points.
    """

    __slots__ = (
        "server", "index", "puid", "backup", "maxconn", "iweight", "uweight",
        "eweight", "next_eweight", "up", "next_up", "served", "queued", "maxqueue",
        "tree", "entry", "npos", "lpos", "rweight", "wscore", "points",
    )

    def __init__(self, server: S, index: int) -> None:
        self.server = server
        self.index = index
        # HAProxy numbers servers from 1 in declaration order when no `id` is given.
        self.puid = index + 1
        self.backup = bool(server.backup)
        self.maxconn = server.maxconn or 0
        self.iweight = self.uweight = server.weight
        self.eweight = self.next_eweight = 0
        self.up = self.next_up = True
        self.served = 0
        # Requests in the server's queue and its limit (0: none), kept by queue.Queues.
        self.queued = 0
        self.maxqueue = 0
        self.tree: Tree | None = None
        self.entry: int | None = None
        self.npos = self.lpos = self.rweight = self.wscore = 0
        self.points: list[int] = []

    @property
    def usable(self) -> bool:
        return self.up and self.eweight > 0

    @property
    def will_be_usable(self) -> bool:
        return self.next_up and self.next_eweight > 0

    def has_room(self) -> bool:
        """Below its maxconn with nobody waiting in its queue (HAProxy's test)."""
        return not self.maxconn or (not self.queued and self.served < self.maxconn)

    def commit(self) -> None:
        self.eweight = self.next_eweight
        self.up = self.next_up


class Balancer(Generic[S]):
    """A backend's choice of server. Subclasses are HAProxy's lb_*.c algorithms.

    The caller reports what changes a choice: ``set_usable`` (health checks, admin
    state), ``set_weight`` (``set weight``), and, for every connection to a server,
    ``acquire`` when it starts and ``release`` when it ends (leastconn orders by them;
    every algorithm skips a server at its ``maxconn``).
    """

    need: Need = Need.NONE
    header: bytes | None = None
    """The lower-case header name ``pick()`` wants the value of (Need.HEADER)."""
    dynamic = True
    """Whether ``set_weight`` accepts any weight (HAProxy's BE_LB_PROP_DYN)."""
    queues_first = False
    """Whether a request joins the backend's queue whenever it is not empty, without
    a pick (HAProxy does so for roundrobin, static-rr and first)."""

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        self._allbackups = allbackups
        self._slots: list[Slot[S]] = [Slot(s, i) for i, s in enumerate(servers)]
        self._slot_of: dict[int, Slot[S]] = {id(s.server): s for s in self._slots}
        self._seq = 0
        self._srv_act = self._srv_bck = 0
        self._tot_wact = self._tot_wbck = 0
        self._tot_weight = self._tot_used = 0
        self._fbck: Slot[S] | None = None
        self._init_weights()
        for slot in self._slots:
            slot.commit()
        self._recount()

    def _init_weights(self) -> None:
        for slot in self._slots:
            slot.next_eweight = slot.uweight * BE_WEIGHT_SCALE

    def _eweight(self, uweight: int) -> int:
        return uweight * BE_WEIGHT_SCALE

    # -- the interface

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        """The server for the next request, or None when no server may take it (none
        usable, or all at their maxconn). ``key`` is what ``need`` asks for; ``avoid``
        is the server a redispatch leaves, taken only when nothing else is possible."""
        raise NotImplementedError

    def set_usable(self, server: S, usable: bool) -> None:
        """The server became able (UP) or unable (DOWN, MAINT, DRAIN) to take traffic."""
        slot = self._slot(server)
        slot.next_up = usable
        self._update(slot)

    def set_weight(self, server: S, weight: int) -> None:
        """A new user weight (0-256), as ``set weight`` sets it.

        Raises ValueError with HAProxy's CLI message when the algorithm is static and
        the weight is neither 0 nor the configured one.
        """
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError("Absolute weight can only be between 0 and 256 inclusive.")
        slot = self._slot(server)
        if weight and weight != slot.iweight and not self.dynamic:
            raise ValueError(STATIC_WEIGHT_ERROR)
        slot.uweight = weight
        slot.next_eweight = self._eweight(weight)
        self._update(slot)

    def weight(self, server: S) -> int:
        """The server's current user weight."""
        return self._slot(server).uweight

    def acquire(self, server: S) -> None:
        """A connection to ``server`` starts (HAProxy: server_take_conn)."""
        slot = self._slot_of[id(server)]
        slot.served += 1
        self._taken(slot)

    def release(self, server: S) -> None:
        """A connection to ``server`` ended (HAProxy: server_drop_conn)."""
        slot = self._slot_of[id(server)]
        slot.served -= 1
        self._taken(slot)

    def served(self, server: S) -> int:
        """Connections the server has now, as reported by acquire/release."""
        return self._slot(server).served

    def has_usable(self) -> bool:
        """Whether any server may take traffic (HAProxy: a non-zero tot_weight)."""
        return self._tot_weight > 0

    @property
    def active_usable(self) -> int:
        """Non-backup servers taking traffic now (HAProxy's srv_act)."""
        return self._srv_act

    def is_up(self, server: S) -> bool:
        """Whether the server may take requests (cookie persistence asks it, and keeps
        a server whose weight is 0, as HAProxy does)."""
        return self._slot_of[id(server)].up

    # -- for the algorithms

    def _slot(self, server: S) -> Slot[S]:
        try:
            return self._slot_of[id(server)]
        except KeyError:
            raise ValueError(f"server {server!r} is not in this backend") from None

    def _taken(self, slot: Slot[S]) -> None:
        """A change of ``slot.served``; only leastconn reorders on it."""

    def _update(self, slot: Slot[S]) -> None:
        if slot.next_up == slot.up and slot.next_eweight == slot.eweight:
            return
        was, will = slot.usable, slot.will_be_usable
        if was or will:
            self._recount()
        if was and will:
            self._reweight(slot)
        elif will:
            self._set_up(slot)
        elif was:
            self._set_down(slot)
        slot.commit()

    def _set_up(self, slot: Slot[S]) -> None:
        raise NotImplementedError

    def _set_down(self, slot: Slot[S]) -> None:
        raise NotImplementedError

    def _reweight(self, slot: Slot[S]) -> None:
        """A usable server's weight changes and it stays usable."""
        raise NotImplementedError

    def _recount(self) -> None:
        """HAProxy's recount_servers + update_backend_weight, over the next states."""
        srv_act = srv_bck = tot_wact = tot_wbck = 0
        fbck = None
        for slot in self._slots:
            if not slot.will_be_usable:
                continue
            if slot.backup:
                if not srv_bck and not self._allbackups:
                    fbck = slot
                srv_bck += 1
                tot_wbck += slot.next_eweight
            else:
                srv_act += 1
                tot_wact += slot.next_eweight
        self._srv_act, self._srv_bck = srv_act, srv_bck
        self._tot_wact, self._tot_wbck = tot_wact, tot_wbck
        self._fbck = fbck
        if srv_act:
            self._tot_weight, self._tot_used = tot_wact, srv_act
        elif fbck is not None:
            self._tot_weight, self._tot_used = fbck.next_eweight, 1
        else:
            self._tot_weight, self._tot_used = tot_wbck, srv_bck

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq


INDEX_BITS = 20
KEY_SHIFT = INDEX_BITS + 64
INDEX_MASK = (1 << INDEX_BITS) - 1


def pack(key: int, seq: int, index: int) -> int:
    """One node of an ordered set as a single int: a 32-bit key, then an insertion
    number (equal keys keep insertion order, as in HAProxy's ebtrees), then the
    server's index. Sorting such ints sorts the nodes."""
    return ((key & 0xFFFFFFFF) << KEY_SHIFT) | (seq << INDEX_BITS) | index


class Tree(Generic[S]):
    """HAProxy's eb32 tree as these algorithms use it: servers ordered by a 32-bit key,
    equal keys in insertion order, the first one wanted most of the time.

    A binary heap of ``pack()``ed ints (one int compares in C); a server's ``entry`` is
    the int it is in the tree under, so deleting is just forgetting it and a stale int
    is dropped when it reaches the top.
    """

    __slots__ = ("heap", "slots", "balancer")

    def __init__(self, balancer: Balancer[S]) -> None:
        self.heap: list[int] = []
        self.slots = balancer._slots
        self.balancer = balancer

    def insert(self, slot: Slot[S], key: int) -> None:
        entry = pack(key, self.balancer._next_seq(), slot.index)
        slot.entry = entry
        heap = self.heap
        heapq.heappush(heap, entry)
        if len(heap) > 2 * len(self.slots) + 8:
            self._compact()

    @staticmethod
    def delete(slot: Slot[S]) -> None:
        slot.entry = None

    def first(self) -> Slot[S] | None:
        heap = self.heap
        slots = self.slots
        while heap:
            top = heap[0]
            slot = slots[top & INDEX_MASK]
            if slot.entry == top:
                return slot
            heapq.heappop(heap)
        return None

    def in_order(self) -> list[Slot[S]]:
        """Every server in the tree, first to last (for the rare walks past the first)."""
        slots = self.slots
        return [slots[e & INDEX_MASK] for e in sorted(self.heap)
                if slots[e & INDEX_MASK].entry == e]

    def key_of(self, slot: Slot[S]) -> int | None:
        return None if slot.entry is None else slot.entry >> KEY_SHIFT

    def _compact(self) -> None:
        slots = self.slots
        self.heap = [e for e in self.heap if slots[e & INDEX_MASK].entry == e]
        heapq.heapify(self.heap)


def cdiv(a: int, b: int) -> int:
    """C's integer division, which truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q
