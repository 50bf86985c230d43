"""HAProxy's static server map (lb_map.c): ``balance static-rr``, and the map-based
hashes (``source``, ``uri``, ``hdr(name)`` under the default ``hash-type map-based``).

The map has one slot per unit of weight, weights divided by their gcd. It is filled
slot by slot: every candidate adds its weight to a score, the first with the highest
``(score + T) / T`` takes the slot and gives back T. static-rr walks the map; a hash
takes slot ``hash % T``. The map is rebuilt when a server goes up or down, and weights
may only be switched between 0 and their configured value (static algorithms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyxlb.l7.balance.base import Balancer, S, Slot, cdiv
from pyxlb.l7.balance.hashing import Hashed


class StaticRoundRobin(Balancer[S]):
    """``balance static-rr``: 3:2:1 serves aababc, 3:1 aaab, 1:3 abbb."""

    dynamic = False
    queues_first = True

    def __init__(self, servers: Sequence[S], allbackups: bool = False) -> None:
        self._map: list[Slot[S]] = []
        self._rr_idx = 0
        super().__init__(servers, allbackups)
        self._recalc()

    def _init_weights(self) -> None:
        self._wmult = math.gcd(*(slot.uweight for slot in self._slots)) or 1
        for slot in self._slots:
            slot.next_eweight = self._eweight(slot.uweight)

    def _eweight(self, uweight: int) -> int:
        return (uweight + self._wmult - 1) // self._wmult

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        return self._next_in_map(avoid)

    def _next_in_map(self, avoid: S | None) -> S | None:
        """map_get_server_rr: the next slot whose server has room."""
        tot = self._tot_weight
        if not tot:
            return None
        if self._rr_idx >= tot:
            self._rr_idx = 0
        start = newidx = self._rr_idx
        the_map = self._map
        avoided: Slot[S] | None = None
        avoided_idx = 0
        while True:
            slot = the_map[newidx]
            newidx += 1
            if slot.has_room():
                avoided, avoided_idx = slot, newidx
                if slot.server is not avoid:
                    self._rr_idx = newidx
                    return slot.server
            if newidx == tot:
                newidx = 0
            if newidx == start:
                break
        if avoided is None:
            return None
        self._rr_idx = avoided_idx
        return avoided.server

    def _set_up(self, slot: Slot[S]) -> None:
        self._recalc()

    def _set_down(self, slot: Slot[S]) -> None:
        self._recalc()

    def _reweight(self, slot: Slot[S]) -> None:
        self._recalc()

    def _recalc(self) -> None:
        """recalc_server_map. Without active servers the candidates are the usable
        backups while T is the first backup's weight alone (unless allbackups), so a
        heavier later backup can still get slots, as in HAProxy."""
        if not self._tot_used:
            return
        tot = self._tot_weight
        backup = not self._srv_act
        candidates = [s for s in self._slots if s.backup == backup and s.will_be_usable]
        for slot in self._slots:
            slot.wscore = 0
        the_map: list[Slot[S]] = []
        for _ in range(tot):
            best: Slot[S] | None = None
            top = 0
            for cur in candidates:
                if tot == 1:
                    best = cur
                    break
                cur.wscore += cur.next_eweight
                v = cdiv(cur.wscore + tot, tot)
                if best is None or v > top:
                    top, best = v, cur
            assert best is not None
            the_map.append(best)
            best.wscore -= tot
        self._map = the_map


class MapHash(Hashed, StaticRoundRobin[S]):
    """A hash on the static map: ``source``, ``uri`` or ``hdr(name)``. A request with
    nothing to hash (no such header) is served by static round-robin on the map."""

    queues_first = False

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        tot = self._tot_weight
        if not tot:
            return None
        if self._tot_used == 1:
            h = 0  # HAProxy does not hash for a single server
        else:
            h = self._hasher(key)
            if h is None:
                return self._next_in_map(avoid)
        return self._map[h % tot].server
