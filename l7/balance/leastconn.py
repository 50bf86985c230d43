"""``balance leastconn`` (lb_fwlc.c) and ``balance first`` (lb_fas.c): orders kept up to
date by the connections the caller reports (``acquire``/``release``).

leastconn keys a server by ``(inflight + 1) * 4096 / eweight``, or 0 with nothing in
flight, where HAProxy 2.6 counts in flight the requests it serves and those in its
queue: idle servers come first whatever their weight, then the least loaded relative
to its weight. A key is taken when a connection starts or ends, as HAProxy
repositions a server then only. Equal keys keep the order they were (re)inserted in,
so servers that tie take turns. A server at its maxconn is still picked while its
queue has room below its ``maxqueue`` (the request waits there). first sends
everything to the lowest-numbered server below its maxconn.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyxlb.l7.balance.base import SRV_EWGHT_MAX, Balancer, S, Slot, Tree


def _lc_takes(slot: Slot[S]) -> bool:
    """fwlc_get_next_server's test: below its maxconn, or with room in its queue
    (a request picked then waits there)."""
    return not slot.maxconn or slot.served + slot.queued < slot.maxconn + slot.maxqueue


def _lc_key(slot: Slot[S], eweight: int) -> int:
    inflight = slot.served + slot.queued
    return (inflight + 1) * SRV_EWGHT_MAX // eweight if inflight else 0


class LeastConn(Balancer[S]):
    """``balance leastconn``."""

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        super().__init__(servers, allbackups)
        self._act: Tree[S] = Tree(self)
        self._bck: Tree[S] = Tree(self)
        for slot in self._slots:
            if slot.usable:
                self._queue(slot, slot.eweight)

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        if self._srv_act:
            tree = self._act
        elif self._fbck is not None:
            return self._fbck.server
        elif self._srv_bck:
            tree = self._bck
        else:
            return None
        first = tree.first()
        if first is None:
            return None
        if _lc_takes(first) and first.server is not avoid:
            return first.server
        avoided: Slot[S] | None = None
        for slot in tree.in_order():
            if _lc_takes(slot):
                if slot.server is not avoid:
                    return slot.server
                avoided = slot
        return None if avoided is None else avoided.server

    def _taken(self, slot: Slot[S]) -> None:
        """fwlc_srv_reposition."""
        tree = slot.tree
        key = _lc_key(slot, slot.eweight or 1)
        if tree is None or tree.key_of(slot) == key:
            return
        Tree.delete(slot)
        tree.insert(slot, key)

    def _queue(self, slot: Slot[S], eweight: int) -> None:
        tree = self._bck if slot.backup else self._act
        slot.tree = tree
        tree.insert(slot, _lc_key(slot, eweight))

    def _set_up(self, slot: Slot[S]) -> None:
        self._queue(slot, slot.next_eweight)

    def _set_down(self, slot: Slot[S]) -> None:
        Tree.delete(slot)
        slot.tree = None

    def _reweight(self, slot: Slot[S]) -> None:
        Tree.delete(slot)
        self._queue(slot, slot.next_eweight)


class First(Balancer[S]):
    """``balance first``: the first server by id (declaration order) with room."""

    queues_first = True

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        super().__init__(servers, allbackups)
        self._act: list[Slot[S]] = []
        self._bck: list[Slot[S]] = []
        self._reorder()

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        if self._srv_act:
            order = self._act
        elif self._fbck is not None:
            return self._fbck.server
        elif self._srv_bck:
            order = self._bck
        else:
            return None
        avoided: Slot[S] | None = None
        for slot in order:
            if slot.has_room():
                if slot.server is not avoid:
                    return slot.server
                avoided = slot
        return None if avoided is None else avoided.server

    def _reorder(self) -> None:
        usable = [s for s in self._slots if s.will_be_usable]
        self._act = [s for s in usable if not s.backup]
        self._bck = [s for s in usable if s.backup]

    def _set_up(self, slot: Slot[S]) -> None:
        self._reorder()

    def _set_down(self, slot: Slot[S]) -> None:
        self._reorder()

    def _reweight(self, slot: Slot[S]) -> None:
        self._reorder()
