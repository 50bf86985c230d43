"""HAProxy 2.6's period frequency counter (`struct freq_ctr`), exactly.

This module owns the arithmetic of stick-table rates (conn_rate, http_req_rate,
http_err_rate, gpc0_rate, ...): `update_freq_ctr_period()` from
include/haproxy/freq_ctr.h and `freq_ctr_total()` / `read_freq_ctr_period()` from
src/freq_ctr.c (v2.6.0). It is the pure-Python twin of the C code in bpf/, so it is
written the way C reads: integers only, every u32 result masked, every
`(int)` cast spelled out with `_s32()`. Keep the two in step line by line.

Time is an argument, never read here. A tick is a wrapping 32-bit millisecond
count, as HAProxy's `now_ms`. The kernel derives it as

    (__u32)(bpf_ktime_get_ns() / 1000000)

(an unsigned 64-bit divide by a constant, which BPF has), and bpf_ktime_get_ns()
reads CLOCK_MONOTONIC, the clock behind Python's time.monotonic_ns(); so l7 uses
`ms_tick(time.monotonic_ns())` and both tiers agree on "now" for the same entry.
Ticks wrap every 2**32 ms (49.7 days of uptime); comparisons are modular, so this
is harmless as long as a counter is not left untouched for 2**31 ms (24.8 days),
the same limit HAProxy has (stick-table `expire` removes entries long before).
"""

from __future__ import annotations

from dataclasses import dataclass

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
NS_PER_MS = 1_000_000


def ms_tick(ns: int) -> int:
    """The u32 millisecond tick for a CLOCK_MONOTONIC reading in nanoseconds."""
    return (ns // NS_PER_MS) & MASK32


def _s32(value: int) -> int:
    """C's `(int)` of a u32: two's complement reinterpretation."""
    value &= MASK32
    return value - (1 << 32) if value & 0x8000_0000 else value


@dataclass(slots=True)
class FreqCtr:
    """Events in the current period (`curr_ctr`, which began at `curr_tick`) and in
    the one before (`prev_ctr`). All fields are u32; a zeroed counter is valid, as
    a fresh kernel map entry is. The period (ms, 1 <= period < 2**31) is not
    stored: the caller passes the same one on every call, as HAProxy does."""

    curr_tick: int = 0
    curr_ctr: int = 0
    prev_ctr: int = 0

    def update(self, now_ms: int, period_ms: int, inc: int = 1) -> int:
        """Count `inc` events at `now_ms`; returns the current period's count."""
        now = now_ms & MASK32
        if ((now - self.curr_tick) & MASK32) < period_ms:
            self.curr_ctr = (self.curr_ctr + inc) & MASK32
            return self.curr_ctr
        # Rotate: the current period becomes the previous one.
        tick = self.curr_tick
        self.prev_ctr = self.curr_ctr
        self.curr_ctr = inc & MASK32
        tick = (tick + period_ms) & MASK32
        if ((now - tick) & MASK32) >= period_ms:
            # At least two periods passed without an event: nothing is recent.
            self.prev_ctr = 0
            tick = now
        # HAProxy uses the tick's low bit as a rotation lock and stores it
        # cleared, so a new period starts on an even millisecond there; doing the
        # same keeps every read equal to HAProxy's, to the millisecond.
        self.curr_tick = tick & ~1 & MASK32
        return inc & MASK32

    def total(self, now_ms: int, period_ms: int, pend: int = -1) -> int:
        """`freq_ctr_total()`: events over the sliding window ending at `now_ms`,
        scaled by `period_ms` (the rate is this divided by the period), plus
        `pend` pending events. `pend < 0` means none pending and turns on
        HAProxy's flapping correction for rates below 2 per period."""
        curr = self.curr_ctr
        past = self.prev_ctr
        remain = _s32(self.curr_tick + period_ms - (now_ms & MASK32))
        if remain < 0:
            # Past the current period: it is now the previous one, and only the
            # part of it still inside the window counts (none if beyond).
            remain = _s32(remain + period_ms)
            past = curr if remain >= 0 else 0
            curr = 0
        if pend < 0:
            pend = 0
            if curr == 0 and past <= 1:
                # Below 2 events per period: report the last whole count rather
                # than a value flapping between 0 and 1 as the window slides.
                return (past * period_ms) & MASK64
        # `remain` is negative only when `past` is 0, so this product is 0 then,
        # as C's conversion of a negative int to unsigned long long gives too.
        return (past * (remain & MASK64) + (curr + pend) * period_ms) & MASK64

    def read(self, now_ms: int, period_ms: int) -> int:
        """`read_freq_ctr_period()`: the rate in events per period at `now_ms`."""
        return (self.total(now_ms, period_ms) // period_ms) & MASK32
