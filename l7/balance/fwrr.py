"""``balance roundrobin``: HAProxy's fast weighted round-robin (lb_fwrr.c), dynamic.

Each group (active servers, backups) has three trees. ``init`` holds servers not yet
served in this window, heaviest first; ``curr`` holds served ones by their next
position ``npos`` (a server of effective weight w comes back every T/w picks, T the
group's total weight); ``next`` holds the ones whose next turn falls in the next
window. A pick takes the first of ``curr`` if its turn has come, else the heaviest
of ``init``; when both are exhausted ``init`` and ``next`` swap. Weights are scaled
by 16 so positions keep precision. This yields HAProxy's orders exactly: 3:1 aaab,
5:2 aaabaab, 3:2:1 abacab, 4:2:1 aabacab, 1:2:3 cbcacb, and its behaviour when a
server goes down, comes back or changes weight mid-window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic

from pyxlb.l7.balance.base import BE_WEIGHT_SCALE, SRV_EWGHT_MAX, Balancer, S, Slot, Tree, cdiv

SRV_UWGHT_RANGE = 256


class _Group(Generic[S]):
    """One set of trees (``fwrr_group``); ``init`` and ``next`` swap each window."""

    __slots__ = ("curr", "init", "next", "curr_pos", "curr_weight", "backup")

    def __init__(self, balancer: Balancer[S], weight: int, backup: bool) -> None:
        self.curr: Tree[S] = Tree(balancer)
        self.init: Tree[S] = Tree(balancer)
        self.next: Tree[S] = Tree(balancer)
        self.curr_pos = self.curr_weight = weight
        self.backup = backup


class RoundRobin(Balancer[S]):
    """``balance roundrobin`` (the default)."""

    queues_first = True

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        super().__init__(servers, allbackups)
        self._act: _Group[S] = _Group(self, self._tot_wact, False)
        self._bck: _Group[S] = _Group(self, self._tot_wbck, True)
        for slot in self._slots:
            if slot.usable:
                self._queue_by_weight(self._group(slot).init, slot)

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        if self._srv_act:
            grp = self._act
            next_weight = self._tot_wact
        elif self._fbck is not None:
            return self._fbck.server
        elif self._srv_bck:
            grp = self._bck
            next_weight = self._tot_wbck
        else:
            return None
        switched = False
        avoided: Slot[S] | None = None
        full: list[Slot[S]] | None = None  # saturated or avoided, taken out meanwhile
        srv: Slot[S] | None
        while True:
            if not grp.curr_weight:
                grp.curr_pos = grp.curr_weight = next_weight
            srv = self._from_group(grp)
            if srv is None:
                if switched:
                    srv = avoided
                    break
                switched = True
                grp.init, grp.next = grp.next, grp.init
                grp.curr_weight = grp.curr_pos = next_weight
                continue
            self._update_position(grp, srv, next_weight)
            Tree.delete(srv)
            grp.curr_pos += 1
            if srv.has_room():
                if srv.server is not avoid or avoided is not None:
                    break
                avoided = srv
            if full is None:
                full = []
            full.append(srv)
        if srv is not None:
            self._queue(grp, srv)
        if full is None:
            return None if srv is None else srv.server
        # Saturated or avoided servers go back where they would be had they been
        # served; after a swap their place is lost and only their weight counts.
        for other in reversed(full):
            if other is not srv:
                if switched:
                    self._queue_by_weight(grp.init, other)
                else:
                    self._queue(grp, other)
        return None if srv is None else srv.server

    # -- fwrr_get_server_from_group, fwrr_update_position, fwrr_queue_srv

    @staticmethod
    def _from_group(grp: _Group[S]) -> Slot[S] | None:
        s1 = grp.curr.first()
        if s1 is not None and s1.eweight and s1.npos <= grp.curr_pos:
            return s1
        s2 = grp.init.first()
        if s2 is not None and s2.eweight:
            s2.npos = s2.rweight = 0
            return s2
        return s1

    @staticmethod
    def _update_position(grp: _Group[S], s: Slot[S], next_weight: int) -> None:
        eweight = s.eweight
        if not eweight:
            return
        if not s.npos:
            s.npos = grp.curr_pos
        s.lpos = s.npos
        s.npos += next_weight // eweight
        s.rweight += next_weight % eweight
        if s.rweight >= eweight:
            s.rweight -= eweight
            s.npos += 1

    def _queue(self, grp: _Group[S], s: Slot[S]) -> None:
        if not s.will_be_usable:
            s.tree = None
            return
        next_weight = self._tot_wbck if grp.backup else self._tot_wact
        if (
            s.npos >= 2 * grp.curr_weight
            or s.npos >= grp.curr_weight + next_weight
        ):
            s.npos -= grp.curr_weight
            self._queue_by_weight(grp.next, s)
        else:
            key = SRV_UWGHT_RANGE * s.npos + (
                (SRV_EWGHT_MAX + s.rweight - s.next_eweight) // BE_WEIGHT_SCALE
            )
            grp.curr.insert(s, key)
            s.tree = grp.curr

    @staticmethod
    def _queue_by_weight(tree: Tree[S], s: Slot[S]) -> None:
        tree.insert(s, SRV_EWGHT_MAX - s.next_eweight)
        s.tree = tree

    def _group(self, s: Slot[S]) -> _Group[S]:
        return self._bck if s.backup else self._act

    def _get_srv(self, grp: _Group[S], s: Slot[S]) -> None:
        """fwrr_get_srv: restore npos for a server taken out of its tree."""
        if s.tree is grp.init:
            s.npos = s.rweight = 0
        elif s.tree is grp.next:
            s.npos += grp.curr_weight
        elif s.tree is None:
            s.npos = grp.curr_pos

    # -- state changes (fwrr_set_server_status_up/down, fwrr_update_server_weight)

    def _set_down(self, slot: Slot[S]) -> None:
        Tree.delete(slot)
        slot.tree = None

    def _set_up(self, slot: Slot[S]) -> None:
        grp = self._group(slot)
        self._get_srv(grp, slot)
        self._place_returning(grp, slot)

    def _place_returning(self, grp: _Group[S], slot: Slot[S]) -> None:
        next_weight = self._tot_wbck if grp.backup else self._tot_wact
        slot.npos = grp.curr_pos + cdiv(
            next_weight + grp.curr_weight - grp.curr_pos, slot.next_eweight
        )
        self._queue(grp, slot)

    def _reweight(self, slot: Slot[S]) -> None:
        grp = self._group(slot)
        if slot.tree is grp.init:
            Tree.delete(slot)
            self._queue_by_weight(grp.init, slot)
            return
        if slot.tree is None:
            Tree.delete(slot)
            self._get_srv(grp, slot)
            self._place_returning(grp, slot)
            return
        # In curr or next: if it has turns left in this window, move its next one.
        self._get_srv(grp, slot)
        next_weight = self._tot_wbck if grp.backup else self._tot_wact
        prev_next = slot.npos
        step = next_weight // slot.next_eweight
        slot.npos = slot.lpos + step
        slot.rweight = 0
        if slot.npos > prev_next:
            slot.npos = prev_next
        if slot.npos < grp.curr_pos + 2:
            slot.npos = grp.curr_pos + step
        Tree.delete(slot)
        self._queue(grp, slot)
