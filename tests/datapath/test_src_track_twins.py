"""The kernel's freq_ctr (bpf/freq_ctr.h) and its pure-Python twin
(pyxlb.rates.freq_ctr) agree: the same events, replayed at the same ticks
through XDP and through l7's write path, leave the same raw counters; rates
read from them are HAProxy's; the kernel's own reads (its reject decisions)
match Python's; and concurrent writers lose nothing."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS
from pyxlb.datapath.params import DpParams
from pyxlb.rates.freq_ctr import MASK32, FreqCtr

CLIENT = "10.111.0.10"
SYN = bytes(Ether() / IP(src=CLIENT, dst="10.111.0.2") / TCP(dport=80, flags="S"))
T0 = 1_000_000
# Close below 2**32, so that sequences cross the wrap (never landing on tick 0,
# which dp_params reads as "no override").
NEAR_WRAP = (1 << 32) - 2_500
BASES = pytest.mark.parametrize("base", [T0, NEAR_WRAP], ids=["plain", "across-wrap"])


def raw(ctr) -> tuple[int, int, int]:
    return ctr.curr_tick, ctr.curr_ctr, ctr.prev_ctr


def kernel_counter(xdp, rate: str) -> FreqCtr:
    """The entry's raw window counter, read back into the Python twin."""
    table = xdp.maps["src_track"]
    from pyxlb.datapath.maps import encode_address

    value = table.lookup(encode_address(CLIENT, table.layout.key_type))
    return FreqCtr(*raw(getattr(value, rate)))


def at(xdp, dp: DpParams, now_ms: int) -> None:
    xdp.set_params(dp.replace(now_ms_override=now_ms & MASK32))


@BASES
def test_haproxy_decay_of_conn_rate_counted_by_xdp(xdp, base):
    # 6 connections at t=0: conn_rate(3s) reads 6,6,5,3,1,0 at t=1,2,3.5,4.5,5.5,6.5 s.
    dp = DpParams(count_syns=True, conn_rate_period=3_000, expire_ms=120_000)
    at(xdp, dp, base)
    for _ in range(6):
        assert xdp.run(SYN).retval == XDP_PASS
    ctr = kernel_counter(xdp, "conn_rate")
    reads = [ctr.read((base + int(s * 1000)) & MASK32, 3_000) for s in (1, 2, 3.5, 4.5, 5.5, 6.5)]
    assert reads == [6, 6, 5, 3, 1, 0]


@BASES
def test_haproxy_decay_of_http_err_rate_written_by_l7(xdp, base):
    # 6 errors at t=0: http_err_rate(5s) reads 6,6,6,6,5,4,2 at t=1,2,3.5,4.5,5.5,6.5,8 s.
    dp = DpParams(http_err_rate_period=5_000, expire_ms=120_000)
    at(xdp, dp, base)
    for _ in range(6):
        xdp.src_track.bump_http_error(CLIENT)
    ctr = kernel_counter(xdp, "http_err_rate")
    seconds = (1, 2, 3.5, 4.5, 5.5, 6.5, 8)
    assert [ctr.read((base + int(s * 1000)) & MASK32, 5_000) for s in seconds] == [
        6, 6, 6, 6, 5, 4, 2]


def test_reads_through_src_track_decode_the_same_rates(xdp):
    dp = DpParams(count_syns=True, conn_rate_period=3_000, expire_ms=120_000)
    at(xdp, dp, T0)
    for _ in range(6):
        xdp.run(SYN)
    reads = []
    for s in (1, 2, 3.5, 4.5, 5.5, 6.5):
        at(xdp, dp, T0 + int(s * 1000))
        reads.append(xdp.src_track.get(CLIENT).conn_rate)
    assert reads == [6, 6, 5, 3, 1, 0]


# A replay: (ms since the previous event, events at that tick).
events = st.lists(st.tuples(st.integers(0, 9_000), st.integers(1, 4)), min_size=1, max_size=25)
periods = st.sampled_from([1, 2, 3, 999, 1_000, 3_000, 3_001, 10_000])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from([T0, NEAR_WRAP, (1 << 32) - 1]), period=periods, replay=events,
       limit=st.integers(0, 12))
def test_xdp_counts_and_rejects_as_the_python_twin(xdp_program, base, period, replay, limit):
    xdp = xdp_program
    xdp.reset()
    dp = DpParams(count_syns=True, conn_rate_period=period, conn_rate_gt=limit)
    twin = FreqCtr()
    now = base
    for gap, count in replay:
        now = (now + gap) & MASK32
        assume(now != 0)
        at(xdp, dp, now)
        for _ in range(count):
            twin.update(now, period)
            expected = XDP_DROP if twin.read(now, period) > limit else XDP_PASS
            assert xdp.run(SYN).retval == expected
        assert raw(kernel_counter(xdp, "conn_rate")) == raw(twin)
    kernel = kernel_counter(xdp, "conn_rate")
    for later in (0, 1, period // 2, period, period + 1, 2 * period, 3 * period):
        assert kernel.read((now + later) & MASK32, period) == twin.read((now + later) & MASK32,
                                                                         period)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from([T0, NEAR_WRAP]), period=periods, replay=events)
def test_l7_writes_count_as_the_python_twin(xdp_program, base, period, replay):
    xdp = xdp_program
    xdp.reset()
    dp = DpParams(http_req_rate_period=period, gpc0_rate_period=period)
    twin = FreqCtr()
    now = base
    for gap, count in replay:
        now = (now + gap) & MASK32
        assume(now != 0)
        at(xdp, dp, now)
        entry = xdp.src_track.apply(CLIENT, http_req_cnt=count, events={"http_req_rate": count})
        twin.update(now, period, count)
        assert raw(entry.counters["http_req_rate"]) == raw(twin)
        assert entry.http_req_rate == twin.read(now, period)
    assert entry.counters["gpc0_rate"] == FreqCtr()  # untouched rates stay zero


def test_concurrent_writers_lose_no_event(xdp):
    # Two CPUs run XDP on SYNs while l7 bumps requests, all on one entry and in
    # one period: every count must land (atomic adds, in place).
    dp = DpParams(count_syns=True, conn_rate_period=60_000, http_req_rate_period=60_000)
    at(xdp, dp, T0)
    runs, repeat, bumps = 4, 50_000, 300

    def syns() -> None:
        for _ in range(runs):
            xdp.run(SYN, repeat=repeat)

    def requests() -> None:
        for _ in range(bumps):
            xdp.src_track.bump_http_request(CLIENT)

    xdp.run(SYN)  # the entry exists before the race starts
    threads = [threading.Thread(target=f) for f in (syns, syns, requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entry = xdp.src_track.get(CLIENT)
    syn_total = 1 + 2 * runs * repeat
    assert entry.conn_cnt == syn_total
    assert entry.counters["conn_rate"].curr_ctr == syn_total
    assert entry.http_req_cnt == bumps
    assert entry.counters["http_req_rate"].curr_ctr == bumps
