#!/usr/bin/env python3
"""ns/packet of the XDP program under BPF_PROG_TEST_RUN, beside an empty
XDP program as the floor, and the cost of one l7 write into src_track.
Prints figures; asserts nothing.

The process moves into a network namespace of its own (gone when it exits)
with a link, an address and neighbour entries, so that the layer-4 paths run
their FIB lookup to the end and send with XDP_TX, as they would on a NIC.

    sudo .venv/bin/python tools/bench_xdp.py [--repeat N]
"""

from __future__ import annotations

import argparse
import ctypes
import socket
import statistics
import subprocess
import time
from collections.abc import Callable

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from pyxlb.datapath import cidr_lists, libbpf, params, ports, services, src_rules
from pyxlb.datapath.build import APPLY_ENTRY, compile_program, load_entry, map_layouts
from pyxlb.datapath.maps import BpfMap
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.services import Backend, L4Maps, Service
from pyxlb.datapath.src_rules import SrcRule
from pyxlb.datapath.src_track import SrcTrack

EMPTY_XDP = "int empty(struct xdp_md *ctx) { return XDP_PASS; }"
# stick-table ... expire 2m store conn_rate(3s),gpc0
TABLE = DpParams(expire_ms=120_000, conn_rate_period=3_000, gpc0_rate_period=0)
NEVER = params.U32_MAX  # a threshold no u32 count exceeds: the rule runs, never matches
CLONE_NEWNET = 0x40000000
NET_SETUP = """
link add lb0 address 02:00:00:00:00:02 type veth peer name lb0p
link set lb0 up
link set lb0p up
addr add 10.111.0.2/24 dev lb0
neigh add 10.111.0.10 lladdr 02:00:00:00:00:0a dev lb0 nud permanent
neigh add 10.111.0.21 lladdr 02:00:00:00:00:21 dev lb0 nud permanent
neigh add 10.111.0.22 lladdr 02:00:00:00:00:22 dev lb0 nud permanent
neigh add 10.111.0.23 lladdr 02:00:00:00:00:23 dev lb0 nud permanent
"""
VIP, SNAT = "10.111.0.100", "10.111.0.2"
WEB = Service(VIP, 80, SNAT, tuple(Backend(f"10.111.0.{n}", 8080) for n in (21, 22, 23)))


def private_network() -> int:
    """Moves this process into a new network namespace set up for the
    layer-4 paths; returns the ifindex packets come in on."""
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET):
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "-batch", "-"], input=NET_SETUP.strip() + "\n", text=True, check=True)
    subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    return socket.if_nametoindex("lb0")


def per_packet_ns(run: Callable[[int], libbpf.TestRun], repeat: int, rounds: int = 5) -> float:
    """Median over rounds of the kernel's average ns per run."""
    return statistics.median(run(repeat).duration_ns for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1_000_000)
    args = parser.parse_args()

    from bcc import BPF

    ifindex = private_network()
    empty = BPF(text=EMPTY_XDP)
    empty_fd = empty.load_func(b"empty", BPF.XDP).fd
    prog = compile_program()
    prog_fd = load_entry(prog)
    apply_fd = load_entry(prog, APPLY_ENTRY)
    maps = {name: BpfMap(prog[name.encode()].map_fd, layout)
            for name, layout in map_layouts(prog).items()}
    track = SrcTrack(maps["src_track"], maps["dp_params"], apply_fd)
    l4 = L4Maps({name: maps[name] for name in services.MAP_NAMES})
    services.apply(l4, [WEB], range(40000, 60000))

    def use(dp: DpParams) -> Callable[[], None]:
        return lambda: params.write(maps["dp_params"], dp)

    def flagged(dp: DpParams, src: str) -> Callable[[], None]:
        def setup() -> None:
            params.write(maps["dp_params"], dp)
            track.inc_gpc0(src)
        return setup

    def blocked(src: str) -> Callable[[], None]:
        def setup() -> None:
            params.write(maps["dp_params"], DpParams())
            cidr_lists.add(maps["block_list"], cidr_lists.parse_network(src))
        return setup

    def src_ruled() -> None:
        """A frontend on *:443 silent-dropping 10.111.0.17 and 10.200.0.0/16 (a
        RST cannot be measured: a repeated run would see its own answer)."""
        params.write(maps["dp_params"], DpParams(tracked_ports_only=True, src_rules=True))
        ports.write_tracked(maps["ports"], maps["listeners"], [ports.Bind(None, 443)])
        nets = tuple(map(cidr_lists.parse_network, ("10.111.0.17", "10.200.0.0/16")))
        src_rules.write(maps["src_rules"], src_rules.fold([SrcRule(0, nets, "silent_drop")]))

    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")

    def tcp(src: str, flags: str, dst: str = "10.111.0.2", sport: int = 20, dport: int = 22,
            size: int = 0) -> bytes:
        packet = eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                  options=linux_options(flags))
        return bytes(packet / (b"x" * size))

    def opened(packet: bytes) -> Callable[[], None]:
        """Sets up nothing but the flow `packet` belongs to."""
        def setup() -> None:
            params.write(maps["dp_params"], DpParams())
            libbpf.prog_test_run(prog_fd, packet, 1, ifindex)
        return setup

    flow_syn = tcp("10.111.0.10", "S", VIP, 33000, 80)
    flow_ack = tcp("10.111.0.10", "A", VIP, 33000, 80, size=64)
    key = services.flow_key(maps["conntrack"].layout.key_type, "10.111.0.10", VIP, 33000, 80,
                            "tcp")

    def reply_packet() -> bytes:
        conn = maps["conntrack"].lookup(key)
        server = services._unmapped(bytes(conn.out_dst_addr))
        return bytes(Ether(src="02:00:00:00:00:21", dst="02:00:00:00:00:02") /
                     IP(src=server, dst=SNAT) /
                     TCP(sport=8080, dport=conn.out_sport, flags="A",
                         options=linux_options("A")) / (b"y" * 64))

    tracking = TABLE.replace(count_syns=True, conn_rate_gt=NEVER, gpc0_gt=NEVER)
    cases: dict[str, tuple[int, bytes | Callable[[], bytes], Callable[[], None]]] = {
        "empty program (floor)": (empty_fd, bytes(eth / IP() / TCP()), lambda: None),
        "ARP, not IP, pass": (prog_fd, bytes(eth / ARP()), use(DpParams())),
        "TCP ACK, pass": (prog_fd, tcp("10.111.0.10", "A"), use(tracking)),
        "TCP SYN, not tracked, pass": (prog_fd, tcp("10.111.0.11", "S"), use(DpParams())),
        "TCP SYN, tracked + rules, pass": (prog_fd, tcp("10.111.0.12", "S"), use(tracking)),
        "TCP SYN, over conn_rate, drop": (
            prog_fd, tcp("10.111.0.13", "S"), use(tracking.replace(conn_rate_gt=0))),
        "TCP SYN, gpc0 flag, drop": (
            prog_fd, tcp("10.111.0.14", "S"), flagged(TABLE.replace(gpc0_gt=0), "10.111.0.14")),
        "TCP ACK, a service's port, pass": (
            prog_fd, tcp("10.111.0.10", "A", dport=80), use(DpParams())),
        "L4 NAT forward, conntrack hit, TX": (prog_fd, flow_ack, opened(flow_syn)),
        "L4 NAT reply, reverse hit, TX": (prog_fd, reply_packet, opened(flow_syn)),
        "TCP SYN, a src-ruled port, pass": (
            prog_fd, tcp("10.111.0.16", "S", dport=443), src_ruled),
        "TCP SYN, src silent-drop, drop": (
            prog_fd, tcp("10.111.0.17", "S", dport=443), src_ruled),
        # Last: the other paths pay for a lookup in an empty block list.
        "block-listed source, drop": (prog_fd, tcp("10.111.0.9", "A"), blocked("10.111.0.9")),
        "TCP ACK, pass, a block list of 1": (prog_fd, tcp("10.111.0.10", "A"), use(tracking)),
    }
    print(f"BPF_PROG_TEST_RUN, {args.repeat} runs x 5 rounds, median of the per-run average")
    for name, (fd, packet, setup) in cases.items():
        setup()
        data = packet() if callable(packet) else packet

        def run(repeat: int, fd: int = fd, data: bytes = data) -> libbpf.TestRun:
            return libbpf.prog_test_run(fd, data, repeat, ifindex)

        print(f"  {name:36s} {per_packet_ns(run, args.repeat):6.1f} ns/packet")
    new_flow_ns, hit_ns = new_flow_cost(prog_fd, ifindex, args.repeat)
    print(f"  {'L4 NAT new flow (see below), TX':36s} {new_flow_ns:6.1f} ns/packet")
    print(f"    single runs: a new flow costs {new_flow_ns - hit_ns:.0f} ns more than a "
          "conntrack hit;\n    shown as that plus the hit's figure above "
          "(a run repeated is never new)")

    params.write(maps["dp_params"], TABLE.replace(http_req_rate_period=10_000))
    calls = 20_000
    start = time.perf_counter()
    for _ in range(calls):
        track.bump_http_request("10.111.0.15")
    per_call_us = (time.perf_counter() - start) / calls * 1e6
    print(f"  {'l7 bump_http_request(), Python':36s} {per_call_us * 1000:6.0f} ns/call")


def linux_options(flags: str) -> list:
    """The TCP options Linux sends (timestamps on: full NAT shifts them)."""
    if flags == "S":
        return [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 0)), ("NOP", None),
                ("WScale", 10)]
    return [("NOP", None), ("NOP", None), ("Timestamp", (123457, 654321))]


def new_flow_cost(prog_fd: int, ifindex: int, repeat: int,
                  flows: int = 4000) -> tuple[float, float]:
    """(new flow, conntrack hit) ns per packet: a new flow's extra cost is
    measured from single runs of fresh SYNs against single runs of the same
    flows' next packets, and added to the hit's cost in repeated runs."""
    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")

    def packet(n: int, flags: str) -> bytes:
        src = f"10.{120 + n // 60000}.{n // 250 % 240}.{n % 250 + 1}"
        return bytes(eth / IP(src=src, dst=VIP) / TCP(sport=1024 + n % 60000, dport=80,
                                                      flags=flags, options=linux_options(flags))
                     / (b"x" * 64))

    new = [libbpf.prog_test_run(prog_fd, packet(n, "S"), 1, ifindex).duration_ns
           for n in range(flows)]
    hits = [libbpf.prog_test_run(prog_fd, packet(n, "A"), 1, ifindex).duration_ns
            for n in range(flows)]
    repeated_hit = statistics.median(
        libbpf.prog_test_run(prog_fd, packet(0, "A"), repeat, ifindex).duration_ns
        for _ in range(5))
    extra = statistics.median(new) - statistics.median(hits)
    return repeated_hit + extra, repeated_hit


if __name__ == "__main__":
    main()
