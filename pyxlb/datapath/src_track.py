"""Per-source stick-table entries kept by the kernel (the `src_track` map):
reading them as HAProxy's `show table` does, and writing what the l7 tier counts.

Reads copy an entry and compute its rates at read time with
pyxlb.rates.freq_ctr, the twin of the kernel's arithmetic, from the raw
counters and the periods in dp_params. Writes run the kernel's
`pyxlb_src_track_apply` program (BPF_PROG_TEST_RUN), which adds to the entry in
place with XDP's own arithmetic, clock and atomics: a map update from here
would replace the whole value and lose what XDP counted in between. A write
costs one bpf(2) call, as a plain update would.

Times are HAProxy-style ms ticks of CLOCK_MONOTONIC (the kernel's
bpf_ktime_get_ns()), or dp_params' now_ms_override when a test set one.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from typing import Any

from pyxlb.datapath import libbpf, params
from pyxlb.datapath.build import APPLY_PROG_PIN
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.maps import BpfMap, decode, encode_address
from pyxlb.rates.freq_ctr import MASK32, FreqCtr, ms_tick

MAP_NAME = "src_track"


class SrcTrackError(Exception):
    """The kernel refused a src_track write."""


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value & 0x8000_0000 else value


def tick_add(now: int, ms: int) -> int:
    """HAProxy's tick_add(): a deadline, never the unset tick 0."""
    return ((now + ms) & MASK32) or 1


def is_expired(expire: int, conn_cur: int, now: int) -> bool:
    """tick_is_expired() on an entry; with connections open it stays, as
    HAProxy never purges a tracked entry."""
    return expire != 0 and _s32(expire - now) <= 0 and conn_cur == 0


@dataclass(frozen=True, slots=True)
class SrcEntry:
    """One source's counters at a given tick. A rate is in events per its
    period (what `sc0_conn_rate` answers), None when the table does not store
    it. `counters` holds the raw window counters the rates come from."""

    src: str
    expire_in_ms: int | None  # None: the table has no expire
    conn_cnt: int
    conn_cur: int
    http_req_cnt: int
    http_err_cnt: int
    gpc0: int
    conn_rate: int | None
    http_req_rate: int | None
    http_err_rate: int | None
    gpc0_rate: int | None
    counters: dict[str, FreqCtr]


def decode_entry(src: str, value: Any, dp: params.DpParams, now: int) -> SrcEntry:
    """An entry as HAProxy reads it at tick `now` (reads change nothing)."""
    counters = {}
    rates: dict[str, int | None] = {}
    for rate in params.RATE_PERIODS:
        raw = getattr(value, rate)
        counters[rate] = FreqCtr(raw.curr_tick, raw.curr_ctr, raw.prev_ctr)
        period = dp.period(rate)
        rates[rate] = counters[rate].read(now, period) if period else None
    return SrcEntry(
        src=src,
        expire_in_ms=max(0, _s32(value.expire - now)) if value.expire else None,
        conn_cnt=value.conn_cnt, conn_cur=value.conn_cur, http_req_cnt=value.http_req_cnt,
        http_err_cnt=value.http_err_cnt, gpc0=value.gpc0, counters=counters, **rates)


class SrcTrack:
    """The src_track map, the dp_params it is read with, and the program that
    writes it. Addresses are text (IPv4 or IPv6)."""

    # Map keys made from address text, kept: the l7 tier asks for the same
    # clients over and over, and parsing an address costs more than the write.
    KEYS_KEPT = 4096

    def __init__(self, table: BpfMap, params_map: BpfMap, apply_fd: int,
                 owns_fd: bool = False, fixed_params: bool = False) -> None:
        self.table = table
        self.params_map = params_map
        self.apply_fd = apply_fd
        self._owns_fd = owns_fd
        # With fixed_params, dp_params is read once: the daemon that wrote it
        # does not change it while it runs (tests and tools that move the
        # clock through now_ms_override read it on every call).
        self._fixed_params = fixed_params
        self._params: params.DpParams | None = None
        self._keys: dict[str, Any] = {}

    @classmethod
    def open(cls, instance: Instance, fixed_params: bool = False) -> SrcTrack:
        """A running instance's, from its pins."""
        layouts = instance.layouts()
        table = BpfMap.open_pinned(str(instance.pin_dir / MAP_NAME), layouts[MAP_NAME])
        params_map = BpfMap.open_pinned(str(instance.pin_dir / params.MAP_NAME),
                                        layouts[params.MAP_NAME])
        apply_fd = libbpf.obj_get(str(instance.pin_dir / APPLY_PROG_PIN))
        return cls(table, params_map, apply_fd, owns_fd=True, fixed_params=fixed_params)

    def close(self) -> None:
        self.table.close()
        self.params_map.close()
        if self._owns_fd:
            os.close(self.apply_fd)
            self._owns_fd = False

    def __enter__(self) -> SrcTrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _clock(self) -> tuple[params.DpParams, int]:
        dp = self._params
        if dp is None:
            dp = params.read(self.params_map)
            if self._fixed_params:
                self._params = dp
        return dp, dp.now_ms_override or ms_tick(time.monotonic_ns())

    def _key(self, src: str) -> Any:
        key = self._keys.get(src)
        if key is None:
            if len(self._keys) >= self.KEYS_KEPT:
                self._keys.clear()
            key = self._keys[src] = encode_address(src, self.table.layout.key_type)
        return key

    def get(self, src: str) -> SrcEntry | None:
        """`src_*` fetches: the source's live entry; None when it has none or
        it expired (which HAProxy reads as 0 and never creates)."""
        value = self.table.lookup(self._key(src))
        dp, now = self._clock()
        if value is None or is_expired(value.expire, value.conn_cur, now):
            return None
        return decode_entry(src, value, dp, now)

    def entries(self) -> list[SrcEntry]:
        """Every live entry, as `show table` lists them."""
        dp, now = self._clock()
        return [decode_entry(decode(key)["addr"], value, dp, now)
                for key, value in self.table.items()
                if not is_expired(value.expire, value.conn_cur, now)]

    def delete(self, src: str) -> bool:
        """`clear table T key SRC`."""
        return libbpf.map_delete(self.table.fd, self._key(src))

    def apply(self, src: str, *, events: dict[str, int] | None = None,
              **counts: int) -> SrcEntry:
        """Adds `counts` to the source's counters (conn_cnt=1, ...) and counts
        `events` in its rates ({"conn_rate": 1}), creating the entry if needed
        and refreshing its expiry; returns the entry as this write left it."""
        value_type = self.table.layout.value_type
        delta = value_type()
        for name, count in counts.items():
            setattr(delta, name, count & MASK32)
        for rate, count in (events or {}).items():
            getattr(delta, rate).curr_ctr = count & MASK32
        key = self._key(src)
        run = libbpf.prog_test_run(self.apply_fd, bytes(key) + bytes(delta))
        if run.retval != libbpf.XDP_PASS:
            raise SrcTrackError(f"src_track: no entry for {src} could be made "
                                f"(pyxlb_src_track_apply answered {run.retval})")
        value = value_type.from_buffer_copy(run.data_out, ctypes.sizeof(key))
        dp, now = self._clock()
        return decode_entry(src, value, dp, now)

    def track_connection(self, src: str) -> SrcEntry:
        """Starting to track a stream (stream_start_counters()): what
        `http-request track-sc0 src` does for every request."""
        return self.apply(src, conn_cur=1, conn_cnt=1, events={"conn_rate": 1})

    def end_connection(self, src: str) -> SrcEntry:
        """The tracked stream ended."""
        return self.apply(src, conn_cur=-1)

    def bump_http_request(self, src: str) -> SrcEntry:
        return self.apply(src, http_req_cnt=1, events={"http_req_rate": 1})

    def bump_http_error(self, src: str) -> SrcEntry:
        return self.apply(src, http_err_cnt=1, events={"http_err_rate": 1})

    def inc_gpc0(self, src: str) -> int:
        """`sc0_inc_gpc0`/`src_inc_gpc0`: the new gpc0 (two increments racing
        on one source may both answer the later value: the kernel's compiler
        has no 32-bit fetch-and-add)."""
        return self.apply(src, gpc0=1, events={"gpc0_rate": 1}).gpc0
