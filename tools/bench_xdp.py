#!/usr/bin/env python3
"""ns/packet of the XDP program under BPF_PROG_TEST_RUN, beside an empty
XDP program as the floor. Prints figures; asserts nothing.

    sudo .venv/bin/python tools/bench_xdp.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from pyxlb.datapath import libbpf
from pyxlb.datapath.build import compile_program, load_entry

EMPTY_XDP = "int empty(struct xdp_md *ctx) { return XDP_PASS; }"


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

    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")
    cases = {
        "empty program (floor)": (empty_fd, bytes(eth / IP() / TCP())),
        "IPv4 TCP SYN, tracked, pass": (prog_fd, bytes(
            eth / IP(src="10.111.0.10", dst="10.111.0.2") / TCP(flags="S"))),
        "IPv4 TCP ACK, tracked, pass": (prog_fd, bytes(
            eth / IP(src="10.111.0.10", dst="10.111.0.2") / TCP(flags="A"))),
        "ARP, not IP, pass": (prog_fd, bytes(eth / ARP())),
    }
    print(f"BPF_PROG_TEST_RUN, {args.repeat} runs x 5 rounds, median of the per-run average")
    for name, (fd, packet) in cases.items():
        print(f"  {name:32s} {per_packet_ns(fd, packet, args.repeat):6.1f} ns/packet")


if __name__ == "__main__":
    main()
