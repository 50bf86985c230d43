#!/usr/bin/env python3
"""ns/packet of the XDP program under BPF_PROG_TEST_RUN, beside an empty
XDP program as the floor, and the cost of one l7 write into src_track.
Prints figures; asserts nothing.

    sudo .venv/bin/python tools/bench_xdp.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from pyxlb.datapath import libbpf, params
from pyxlb.datapath.build import APPLY_ENTRY, compile_program, load_entry, map_layouts
from pyxlb.datapath.maps import BpfMap
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.src_track import SrcTrack

EMPTY_XDP = "int empty(struct xdp_md *ctx) { return XDP_PASS; }"
# stick-table ... expire 2m store conn_rate(3s),gpc0
TABLE = DpParams(expire_ms=120_000, conn_rate_period=3_000, gpc0_rate_period=0)
NEVER = params.U32_MAX  # a threshold no u32 count exceeds: the rule runs, never matches


def per_packet_ns(prog_fd: int, packet: bytes, repeat: int, rounds: int = 5) -> float:
    """Median over rounds of the kernel's average ns per run."""
    return statistics.median(
        libbpf.prog_test_run(prog_fd, packet, repeat).duration_ns for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1_000_000)
    args = parser.parse_args()

    from bcc import BPF

    empty = BPF(text=EMPTY_XDP)
    empty_fd = empty.load_func(b"empty", BPF.XDP).fd
    prog = compile_program()
    prog_fd = load_entry(prog)
    apply_fd = load_entry(prog, APPLY_ENTRY)
    maps = {name: BpfMap(prog[name.encode()].map_fd, layout)
            for name, layout in map_layouts(prog).items()}
    track = SrcTrack(maps["src_track"], maps["dp_params"], apply_fd)

    def use(dp: DpParams) -> Callable[[], None]:
        return lambda: params.write(maps["dp_params"], dp)

    def flagged(dp: DpParams, src: str) -> Callable[[], None]:
        def setup() -> None:
            params.write(maps["dp_params"], dp)
            track.inc_gpc0(src)
        return setup

    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")

    def tcp(src: str, flags: str) -> bytes:
        return bytes(eth / IP(src=src, dst="10.111.0.2") / TCP(flags=flags))

    tracking = TABLE.replace(count_syns=True, conn_rate_gt=NEVER, gpc0_gt=NEVER)
    cases: dict[str, tuple[int, bytes, Callable[[], None]]] = {
        "empty program (floor)": (empty_fd, bytes(eth / IP() / TCP()), lambda: None),
        "ARP, not IP, pass": (prog_fd, bytes(eth / ARP()), use(DpParams())),
        "TCP ACK, pass": (prog_fd, tcp("10.111.0.10", "A"), use(tracking)),
        "TCP SYN, not tracked, pass": (prog_fd, tcp("10.111.0.11", "S"), use(DpParams())),
        "TCP SYN, tracked + rules, pass": (prog_fd, tcp("10.111.0.12", "S"), use(tracking)),
        "TCP SYN, over conn_rate, drop": (
            prog_fd, tcp("10.111.0.13", "S"), use(tracking.replace(conn_rate_gt=0))),
        "TCP SYN, gpc0 flag, drop": (
            prog_fd, tcp("10.111.0.14", "S"), flagged(TABLE.replace(gpc0_gt=0), "10.111.0.14")),
    }
    print(f"BPF_PROG_TEST_RUN, {args.repeat} runs x 5 rounds, median of the per-run average")
    for name, (fd, packet, setup) in cases.items():
        setup()
        print(f"  {name:34s} {per_packet_ns(fd, packet, args.repeat):6.1f} ns/packet")

    params.write(maps["dp_params"], TABLE.replace(http_req_rate_period=10_000))
    calls = 20_000
    start = time.perf_counter()
    for _ in range(calls):
        track.bump_http_request("10.111.0.15")
    per_call_us = (time.perf_counter() - start) / calls * 1e6
    print(f"  {'l7 bump_http_request(), Python':34s} {per_call_us * 1000:6.0f} ns/call")


if __name__ == "__main__":
    main()
