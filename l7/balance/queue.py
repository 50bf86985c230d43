"""Requests waiting for a server slot: HAProxy 2.6's per-server and per-backend
queues (queue.c, backend.c ``assign_server_and_queue``), pure (no sockets, no
clock: times are passed in).

A request that finds no server with room waits in its backend's queue; one whose
server is already chosen (by a cookie, or by a hash that ignores ``maxconn``) and
full waits in that server's queue, unless the server's ``maxqueue`` is reached (a
503). When a server ends a request, it takes the oldest waiter of its own queue or
of the backend's (``process_srv_queue``); a server coming up takes from the
backend's queue (``pendconn_grab_from_px``). A waiter leaves early on ``cancel``
(its client left, or ``timeout queue`` expired). A server that stops taking
requests gives its waiters back to balancing with ``option redispatch``
(``pendconn_redistribute``); without, they stay in its queue.

Queues are deques with lazy removal: cancelling marks the waiter and the deque
drops it when it reaches the head, so every operation is O(1) amortized.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any, Generic

from pyxlb.l7.balance.base import Balancer, S, Slot


class Refusal(enum.Enum):
    """A request gets no server and no place in a queue: nothing is usable (a 503,
    HAProxy logs SC)."""

    NO_SERVER = "no server"


class Full(Generic[S]):
    """A request gets no place in the queue of its server (chosen by a cookie or a
    hash), at its ``maxqueue``: a 503, which HAProxy logs SQ naming the server."""

    __slots__ = ("server",)

    def __init__(self, server: S) -> None:
        self.server = server


class Pending(Generic[S]):
    """One waiting request (HAProxy's pendconn).

    ``server`` is the server whose queue it is in (None: the backend's), then the
    server that took it. ``srv_pos``/``be_pos`` are HAProxy's srv_queue_pos and
    prx_queue_pos for the log (%sq/%bq): the requests that left the queue while this
    one waited, itself included when served. ``deadline`` is when ``timeout queue``
    expires (None: never). ``key`` is what the balancer hashed, for balancing it
    again; ``refused`` why it left its queue for a 503 when that happened
    (``Queues.redistribute``).
    """

    __slots__ = ("owner", "server", "since", "deadline", "srv_pos", "be_pos", "key",
                 "refused", "_queue", "_mark")

    def __init__(self, owner: Any, since: float, deadline: float | None,
                 key: bytes | None = None) -> None:
        self.owner = owner
        self.server: S | None = None
        self.since = since
        self.deadline = deadline
        self.key = key
        self.refused: Refusal | Full[S] | None = None
        self.srv_pos = 0
        self.be_pos = 0
        self._queue: _Queue | None = None
        self._mark = 0

    @property
    def queued(self) -> bool:
        return self._queue is not None


class _Queue:
    """A FIFO of pendings with a live count, a dequeue count (HAProxy's queue_idx,
    for the log positions) and its highest count (the stats' qmax)."""

    __slots__ = ("items", "length", "served", "peak", "slot")

    def __init__(self, slot: Slot | None) -> None:
        self.items: deque[Pending] = deque()
        self.length = 0
        self.served = 0
        self.peak = 0
        self.slot = slot  # the server's, None for the backend's queue

    def push(self, p: Pending) -> None:
        p._queue = self
        p._mark = self.served - 1  # the first one out reports position 1
        self.items.append(p)
        self.length += 1
        if self.length > self.peak:
            self.peak = self.length
        if self.slot is not None:
            self.slot.queued = self.length
        if len(self.items) > 2 * self.length + 16:
            self.items = deque(q for q in self.items if q._queue is self)

    def first(self) -> Pending | None:
        items = self.items
        while items:
            p = items[0]
            if p._queue is self:
                return p
            items.popleft()
        return None

    def unlink(self, p: Pending) -> None:
        """Out of the queue (served, timed out or abandoned), its position noted."""
        p._queue = None
        self.length -= 1
        if self.slot is not None:
            self.slot.queued = self.length
            p.srv_pos += self.served - p._mark
        else:
            p.be_pos += self.served - p._mark


class Queues(Generic[S]):
    """One backend's queues, over its balancer (which counts served requests).

    ``timeout`` is ``timeout queue`` in seconds (else ``timeout connect``, else
    None: no limit), as HAProxy falls back; ``maxqueue`` maps a server (its id())
    to its ``maxqueue`` (0: unlimited). Servers are the balancer's. A pending's
    ``owner`` is the caller's: whatever lets it resume the request.
    ``redispatch`` and ``persist`` are the backend's `option redispatch` and
    `option persist`.
    """

    def __init__(self, balancer: Balancer[S], timeout: float | None,
                 maxqueue: dict[int, int] | None = None, redispatch: bool = False,
                 persist: bool = False) -> None:
        self.balancer = balancer
        self.timeout = timeout
        # `option redispatch`: a persisted server whose queue is full is given up
        # for a balanced pick (HAProxy's SF_DIRECT + PR_O_REDISP).
        self.redispatch = redispatch
        # Whether a server that stops taking requests gives its waiters back
        # (pendconn_redistribute does so with redispatch, unless `option persist`).
        self._redistributes = redispatch and not persist
        self.backend = _Queue(None)
        slots = balancer._slots
        for slot in slots:
            slot.maxqueue = (maxqueue or {}).get(id(slot.server), 0)
        self._queues = {id(slot.server): _Queue(slot) for slot in slots}
        # HAProxy (assign_server) sends a request to the backend's queue while it is
        # not empty for the algorithms that never pick a full server.
        self._fair = balancer.queues_first

    # -- a request arrives

    def admit(self, owner: object, now: float, key: bytes | None = None,
              persist: S | None = None) -> S | Pending[S] | Refusal | Full[S]:
        """A slot for a new request: its server (counted as acquired), or its place
        in a queue, or why it gets neither. ``persist`` is the server a cookie chose
        (already known to be up); ``key`` what the balancer hashes."""
        if persist is not None:
            got = self._on_server(owner, now, key, persist)
            if got.__class__ is not Full or not self.redispatch:
                return got
        return self._balanced(owner, now, key)

    def _balanced(self, owner: object, now: float, key: bytes | None,
                  p: Pending[S] | None = None) -> S | Pending[S] | Refusal | Full[S]:
        """HAProxy's assign_server_and_queue for a request no cookie binds (``p``:
        one that waited already)."""
        balancer = self.balancer
        if not balancer.has_usable():
            return Refusal.NO_SERVER
        if self._fair and self.backend.length:
            return self._wait(owner, now, key, self.backend, p)
        server = balancer.pick(key)
        if server is None:
            return self._wait(owner, now, key, self.backend, p)
        return self._on_server(owner, now, key, server, p)

    def _on_server(self, owner: object, now: float, key: bytes | None, server: S,
                   p: Pending[S] | None = None) -> S | Pending[S] | Full[S]:
        slot = self.balancer._slot_of[id(server)]
        if slot.maxconn and (slot.queued or slot.served >= slot.maxconn):
            if slot.maxqueue and slot.queued >= slot.maxqueue:
                return Full(server)
            p = self._wait(owner, now, key, self._queues[id(server)], p)
            p.server = server
            return p
        self.balancer.acquire(server)
        return server

    def _wait(self, owner: object, now: float, key: bytes | None, queue: _Queue,
              p: Pending[S] | None) -> Pending[S]:
        deadline = None if self.timeout is None else now + self.timeout
        if p is None:
            p = Pending(owner, now, deadline, key)
        else:
            # Queued again: in order from now, and `timeout queue` starts again
            # (HAProxy's conn_exp).
            p.since, p.deadline, p.server = now, deadline, None
        queue.push(p)
        return p

    # -- a request leaves

    def cancel(self, p: Pending[S]) -> None:
        """The request stops waiting (timeout queue, client gone); a no-op once it
        has a server."""
        queue = p._queue
        if queue is not None:
            queue.unlink(p)

    def redistribute(self, server: S, now: float) -> list[Pending[S]]:
        """``server`` stopped taking requests (DOWN, MAINT, DRAIN): with `option
        redispatch` (and not `option persist`), its waiters, oldest first, are
        balanced again as HAProxy's pendconn_redistribute has them (cookie or
        hash no longer binding them to it). Returns them, each granted a server
        (``server`` set, acquired; no longer ``queued``), waiting in another queue
        from ``now`` for a new ``timeout queue``, or ``refused``. Without the
        option they stay, for the server's slots or their timeout."""
        own = self._queues[id(server)]
        if not self._redistributes or not own.length:
            return []
        moved: list[Pending[S]] = []
        while (p := own.first()) is not None:
            own.unlink(p)
            moved.append(p)
        for p in moved:
            got = self._balanced(p.owner, now, p.key, p)
            if isinstance(got, (Refusal, Full)):
                p.refused = got
            elif not isinstance(got, Pending):
                p.server = got
        return moved

    def release(self, server: S) -> list[Pending[S]]:
        """A request ended on ``server``: its slot, and any slot it still has, go
        to the oldest waiters (HAProxy's process_srv_queue). Returns the pendings
        that now hold ``server`` (acquired for them), oldest first."""
        self.balancer.release(server)
        return self.dequeue(server)

    def dequeue(self, server: S) -> list[Pending[S]]:
        """Give ``server``'s free slots to waiters: after a release, and when the
        server comes up (HAProxy's pendconn_grab_from_px)."""
        balancer = self.balancer
        slot = balancer._slot_of[id(server)]
        own = self._queues[id(server)]
        backend = self.backend
        granted: list[Pending[S]] = []
        while not slot.maxconn or slot.served < slot.maxconn:
            p = own.first() if own.length else None
            pp = backend.first() if backend.length and self._takes_backend(slot) else None
            if pp is not None and (p is None or pp.since < p.since):
                p, queue = pp, backend
            elif p is not None:
                queue = own
            else:
                break
            queue.unlink(p)
            queue.served += 1
            p.server = server
            balancer.acquire(server)
            granted.append(p)
        return granted

    def _takes_backend(self, slot: Slot[S]) -> bool:
        """Whether the server may serve the backend's queue (usable, and active or
        the backup in use)."""
        if not slot.usable:
            return False
        balancer = self.balancer
        return not slot.backup or (not balancer._srv_act and (
            balancer._fbck is slot or balancer._allbackups))

    # -- what the stats show

    def queue_of(self, server: S | None) -> _Queue:
        """The server's queue (None: the backend's), for the stats to read
        ``length`` (qcur) and ``peak`` (qmax) from."""
        return self.backend if server is None else self._queues[id(server)]

    def total(self) -> int:
        """Requests waiting in any of the backend's queues."""
        return self.backend.length + sum(q.length for q in self._queues.values())

    def waiting(self, server: S | None = None) -> int:
        """Requests in the server's queue (None: the backend's), HAProxy's qcur."""
        return (self.backend if server is None else self._queues[id(server)]).length

    def peak(self, server: S | None = None) -> int:
        """The highest ``waiting`` seen (qmax)."""
        return (self.backend if server is None else self._queues[id(server)]).peak
