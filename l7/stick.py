"""The l7 tier's stick counters: `http-request track-sc0 src`, the `sc0_*` and
`src_*` fetches, and the HTTP errors a tracked request ends with, all in the
kernel's per-source entries (pyxlb.datapath.src_track), so that what l7
counts and what XDP counts are one entry, and a flag l7 sets (`sc0_inc_gpc0`)
is enforced by XDP from the next packet wherever the config asks the kernel
to reject on it.

As in HAProxy (HAPROXY-NOTES.md), every request is a stream: tracking it bumps
conn_cnt, conn_rate, http_req_cnt and http_req_rate (and conn_cur while it
runs, when the table stores conn_cur); http_err counts server 4xx, deny,
tarpit, auth challenges and parse errors. A tracked request costs one kernel
write that also answers the entry, which the request's fetches then read
without another call; `src_*` reads and `*_inc_gpc0` add one each.

The store is injected (`Store`: SrcTrack in the daemon), so the logic here
runs the same over the kernel map or any twin of it.
"""

from __future__ import annotations

from typing import Protocol

from pyxlb.config.fetches import CounterRef
from pyxlb.config.model import StickTable
from pyxlb.config.rules import TrackSc
from pyxlb.datapath.src_track import SrcEntry
from pyxlb.l7.rules.acl import RequestView

# Statuses that count as an HTTP error for the stick table (HAPROXY-NOTES.md):
# any 4xx, whether the server's or one we generate (400, 401, 403, 408, ...).
HTTP_ERROR_STATUSES = range(400, 500)


class Store(Protocol):
    """A stick table keyed by source address, as pyxlb.datapath.src_track.SrcTrack."""

    def get(self, src: str) -> SrcEntry | None: ...

    def apply(self, src: str, *, events: dict[str, int] | None = None,
              **counts: int) -> SrcEntry: ...


class _Tracked:
    """What one request knows of its source's entry, as last read or written;
    `tracking` when the request tracks it (sc0), not only reads it (src_*)."""

    __slots__ = ("src", "entry", "tracking", "counts_cur")

    def __init__(self, src: str, entry: SrcEntry | None, tracking: bool,
                 counts_cur: bool = False) -> None:
        self.src = src
        self.entry = entry
        self.tracking = tracking
        self.counts_cur = counts_cur


class StickCounters:
    """One table's counters for a frontend's rules: its `track` and `fetch`
    are what the rule engine is given (engine.Track, acl.CounterFetch)."""

    def __init__(self, store: Store, table: StickTable) -> None:
        self.store = store
        self.table = table
        stored = {item.name for item in table.store}
        self._counts_cur = "conn_cur" in stored

    def track(self, action: TrackSc, view: RequestView) -> None:
        """`http-request track-sc0 src`: a new stream for the request's source."""
        if view.src is None or (view.stick is not None and view.stick.tracking):
            return  # HAProxy keeps the first track of a counter
        src = str(view.src)
        counts = {"conn_cnt": 1, "http_req_cnt": 1}
        if self._counts_cur:
            counts["conn_cur"] = 1
        entry = self.store.apply(src, events={"conn_rate": 1, "http_req_rate": 1}, **counts)
        view.stick = _Tracked(src, entry, True, self._counts_cur)

    def fetch(self, ref: CounterRef, table: str | None, view: RequestView) -> int | None:
        """`sc0_X`: the tracked entry's X (no sample when nothing is tracked);
        `src_X`: the source's (0 when it has none, nothing created, but for
        `src_inc_gpc0`). `inc_gpc0` answers the new value, `clr_gpc0` the old."""
        tracked: _Tracked | None = view.stick
        if ref.source == "src":
            if view.src is None:
                return None
            if tracked is None:
                tracked = view.stick = _Tracked(str(view.src), None, False)
                if ref.op == "get":
                    tracked.entry = self.store.get(tracked.src)
        elif tracked is None or not tracked.tracking or ref.source != "sc0":
            return None
        if ref.op == "inc":
            tracked.entry = self.store.apply(tracked.src, gpc0=1, events={"gpc0_rate": 1})
        elif ref.op == "clr":
            before = tracked.entry.gpc0 if tracked.entry else 0
            if before:
                tracked.entry = self.store.apply(tracked.src, gpc0=-before)
            return before
        if tracked.entry is None:
            return 0
        value = getattr(tracked.entry, ref.data)
        return 0 if value is None else value

    def finish(self, view: RequestView, status: int, error: bool = False) -> None:
        """The request's answer is known: count an HTTP error (its status says, or
        ``error``: a tarpit, whatever its status), end the stream."""
        tracked: _Tracked | None = view.stick
        view.stick = None
        if tracked is None or not tracked.tracking:
            return
        error = error or status in HTTP_ERROR_STATUSES
        if error or tracked.counts_cur:
            counts = {"http_err_cnt": 1} if error else {}
            if tracked.counts_cur:
                counts["conn_cur"] = -1
            self.store.apply(tracked.src, events={"http_err_rate": 1} if error else None,
                             **counts)
