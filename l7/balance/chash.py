"""``hash-type consistent`` (lb_chash.c): hashes on a ring of server points.

A server of user weight w owns w*16 points, point j at ``full_hash(puid*4096 + j)``.
A request's hash goes through ``full_hash`` too (plain ``hash-type consistent`` means
sdbm with the avalanche modifier), then to the nearest point on the 32-bit circle,
the point before on a tie. Removing a server takes away only its points, so only its
keys move, and lowering a weight removes the server's last points first. A request
with nothing to hash walks the ring point by point from where the last walk stopped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from pyxlb.l7.balance.base import (
    BE_WEIGHT_SCALE,
    INDEX_MASK,
    KEY_SHIFT,
    Balancer,
    Need,
    S,
    Slot,
    pack,
)
from pyxlb.l7.balance.hashing import M32, Hashed, Hasher, full_hash

SRV_EWGHT_RANGE = 256 * BE_WEIGHT_SCALE


class ConsistentHash(Hashed, Balancer[S]):
    """``source``, ``uri`` or ``hdr(name)`` with ``hash-type consistent``.

    Each ring (active servers, backups) is a sorted list of ``pack()``ed points.
    """

    def __init__(
        self,
        servers: Sequence[S],
        allbackups: bool,
        need: Need,
        hasher: Hasher,
        header: bytes | None = None,
    ) -> None:
        super().__init__(servers, allbackups, need, hasher, header)
        self._act: list[int] = []
        self._bck: list[int] = []
        self._last: int | None = None
        # Points HAProxy has allocated per server; growing past them re-inserts all.
        self._allocated = [slot.uweight * BE_WEIGHT_SCALE for slot in self._slots]
        for slot in self._slots:
            if slot.usable:
                self._adjust_points(slot)

    def pick(self, key: bytes | None = None, avoid: S | None = None) -> S | None:
        if not self._tot_weight:
            return None
        if self._tot_used == 1:
            h = 0  # HAProxy does not hash for a single server
        else:
            h = self._hasher(key)
            if h is None:
                return self._next_on_ring(avoid)
            h = full_hash(h)
        if self._srv_act:
            ring = self._act
        elif self._fbck is not None:
            return self._fbck.server
        else:
            ring = self._bck
        if not ring:
            return None
        slots = self._slots
        n = len(ring)
        i = bisect_left(ring, h << KEY_SHIFT)
        if i == n:
            i = 0
        after = ring[i]
        before = ring[i - 1]
        if (h - (before >> KEY_SHIFT)) & M32 <= ((after >> KEY_SHIFT) - h) & M32:
            i = i - 1 if i else n - 1
            after = before
        chosen = slots[after & INDEX_MASK]
        if avoid is not None:
            for _ in range(n):
                if chosen.server is not avoid:
                    break
                i = i + 1 if i + 1 < n else 0
                chosen = slots[ring[i] & INDEX_MASK]
        return chosen.server

    def _next_on_ring(self, avoid: S | None) -> S | None:
        """chash_get_next_server: the point after the last one used, skipping servers
        at their maxconn and ``avoid``."""
        if self._srv_act:
            ring = self._act
        elif self._fbck is not None:
            return self._fbck.server
        elif self._srv_bck:
            ring = self._bck
        else:
            return None
        if not ring:
            self._last = None
            return None
        n = len(ring)
        last = self._last
        i = -1 if last is None else bisect_right(ring, last) - 1
        # Without a cursor on this ring HAProxy looks at one point only.
        stop = i if last is not None and i >= 0 and ring[i] == last else None
        avoided_at = None
        slots = self._slots
        while True:
            i = i + 1 if i + 1 < n else 0
            if stop is None:
                stop = i
            slot = slots[ring[i] & INDEX_MASK]
            if slot.has_room():
                if slot.server is not avoid:
                    self._last = ring[i]
                    return slot.server
                avoided_at = i
            if i == stop:
                break
        if avoided_at is None:
            self._last = None
            return None
        self._last = ring[avoided_at]
        return slots[ring[avoided_at] & INDEX_MASK].server

    # -- state changes

    def _set_up(self, slot: Slot[S]) -> None:
        self._adjust_points(slot)

    def _set_down(self, slot: Slot[S]) -> None:
        self._remove_points(slot, 0)

    def _reweight(self, slot: Slot[S]) -> None:
        self._adjust_points(slot)

    def _ring(self, slot: Slot[S]) -> list[int]:
        return self._bck if slot.backup else self._act

    def _adjust_points(self, slot: Slot[S]) -> None:
        """chash_queue_dequeue_srv: as many points as the next effective weight."""
        want = slot.next_eweight
        if len(slot.points) > want:
            self._remove_points(slot, want)
        if self._allocated[slot.index] < want:
            # HAProxy reallocates the server's points: all leave the ring, then all
            # come back (which moves a walk cursor off them).
            self._remove_points(slot, 0)
            self._allocated[slot.index] = want
        have = len(slot.points)
        if have >= want:
            return
        base = slot.puid * SRV_EWGHT_RANGE
        new = []
        for j in range(have, want):
            new.append(pack(full_hash((base + j) & M32), self._next_seq(), slot.index))
        slot.points.extend(new)
        ring = self._ring(slot)
        ring.extend(new)
        ring.sort()

    def _remove_points(self, slot: Slot[S], keep: int) -> None:
        """Drop the server's points from the last one down to ``keep``; a walk cursor
        on a dropped point moves to the point after it, as in HAProxy."""
        ring = self._ring(slot)
        gone = slot.points[keep:]
        if not gone:
            return
        dropped = set(gone)
        last = self._last
        if last is not None and last in dropped:
            for entry in reversed(gone):
                if entry == last:
                    last = self._after(ring, entry, gone)
            self._last = last
        ring[:] = [e for e in ring if e not in dropped]
        del slot.points[keep:]

    @staticmethod
    def _after(ring: list[int], entry: int, gone: list[int]) -> int | None:
        """The point after ``entry`` (wrapping) among those still in the ring while the
        server's points are removed last first: ``entry`` and those after it in
        ``gone`` are already out."""
        out = set(gone[gone.index(entry):])
        i = bisect_right(ring, entry)
        n = len(ring)
        for k in range(n):
            candidate = ring[(i + k) % n]
            if candidate not in out:
                return candidate
        return None
