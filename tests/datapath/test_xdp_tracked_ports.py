"""Only SYNs for the tracked frontends' binds are counted and rate-limited
(dp_params' tracked_ports_only with the `ports` and `listeners` maps)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from pyxlb.datapath import ports
from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.ports import Bind

CLIENT = "10.111.0.10"
VIP = "10.111.0.2"
OTHER_ADDR = "10.111.0.3"
ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")
T0 = 1_000_000
TRACKED = DpParams(count_syns=True, conn_rate_period=3_000, expire_ms=120_000,
                   tracked_ports_only=True, now_ms_override=T0)


def syn(dst: str = VIP, dport: int = 80) -> bytes:
    return bytes(ETH / IP(src=CLIENT, dst=dst) / TCP(sport=40000, dport=dport, flags="S"))


def conn_cnt(xdp) -> int:
    entry = xdp.src_track.get(CLIENT)
    return entry.conn_cnt if entry else 0


def track(xdp, *binds: Bind) -> None:
    ports.write_tracked(xdp.maps["ports"], xdp.maps["listeners"], binds)


def test_tracked_flags_are_pure_data():
    flags = ports.tracked_flags([Bind(None, 80), Bind("10.0.0.1", 443), Bind("::", 443),
                                 Bind("10.0.0.2", 53, "udp")])
    assert flags == {("tcp", 80): ports.PORT_TRACKED,
                     ("tcp", 443): ports.PORT_TRACKED | ports.PORT_TRACKED_ADDR,
                     ("udp", 53): ports.PORT_TRACKED_ADDR}


@pytest.mark.parametrize(("bind", "message"), [
    (dict(addr=None, port=0), "port out of range"),
    (dict(addr="10.0.0.300", port=80), "10.0.0.300"),
    (dict(addr=None, port=80, proto="sctp"), "protocol 'sctp'"),
])
def test_impossible_binds_are_refused(bind, message):
    with pytest.raises(ValueError, match=message):
        Bind(**bind)


def test_a_wildcard_bind_tracks_its_port_on_every_address(xdp):
    xdp.set_params(TRACKED)
    track(xdp, Bind("*", 80))
    xdp.run(syn(VIP, 80))
    xdp.run(syn(OTHER_ADDR, 80))
    xdp.run(syn(VIP, 22))
    assert conn_cnt(xdp) == 2
    assert len(xdp.maps["listeners"]) == 0


def test_an_address_bind_tracks_that_address_only(xdp):
    xdp.set_params(TRACKED)
    track(xdp, Bind(VIP, 80, frontend=3))
    xdp.run(syn(VIP, 80))
    xdp.run(syn(OTHER_ADDR, 80))
    assert conn_cnt(xdp) == 1
    [(key, value)] = xdp.maps["listeners"].decoded_items()
    assert key == {"addr": VIP, "port": 80, "proto": 6}
    assert value == {"frontend": 3}


def test_ipv6_binds_are_tracked_by_their_own_address(xdp):
    xdp.set_params(TRACKED)
    track(xdp, Bind("fd00:111::2", 443))
    packet = IPv6(src="fd00:111::10", dst="fd00:111::2") / TCP(dport=443, flags="S")
    xdp.run(bytes(ETH / packet))
    packet[IPv6].dst = "fd00:111::3"
    xdp.run(bytes(ETH / packet))
    assert xdp.src_track.get("fd00:111::10").conn_cnt == 1


def test_reject_rules_spare_untracked_ports(xdp):
    # Port 22 is no frontend of ours: the rule is HAProxy's frontend's only.
    xdp.set_params(TRACKED.replace(conn_rate_gt=1))
    track(xdp, Bind(None, 80))
    assert [xdp.run(syn(VIP, 80)).retval for _ in range(3)] == [XDP_PASS, XDP_DROP, XDP_DROP]
    assert [xdp.run(syn(VIP, 22)).retval for _ in range(3)] == [XDP_PASS] * 3


def test_udp_to_a_tracked_tcp_port_is_not_a_syn(xdp):
    xdp.set_params(TRACKED)
    track(xdp, Bind(None, 80))
    xdp.run(bytes(ETH / IP(src=CLIENT, dst=VIP) / UDP(dport=80) / b"x"))
    assert conn_cnt(xdp) == 0


def test_without_tracked_ports_only_every_port_counts(xdp):
    xdp.set_params(TRACKED.replace(tracked_ports_only=False))
    xdp.run(syn(VIP, 22))
    assert conn_cnt(xdp) == 1


def test_rewriting_the_binds_replaces_the_old_ones(xdp):
    xdp.set_params(TRACKED)
    track(xdp, Bind(VIP, 80), Bind(None, 8080), Bind(VIP, 53, "udp"))
    track(xdp, Bind(OTHER_ADDR, 80))
    assert ports.read_flags(xdp.maps["ports"]) == {("tcp", 80): ports.PORT_TRACKED_ADDR}
    assert [k["addr"] for k, _ in xdp.maps["listeners"].decoded_items()] == [OTHER_ADDR]
    xdp.run(syn(VIP, 80))
    xdp.run(syn(VIP, 8080))
    assert conn_cnt(xdp) == 0
    xdp.run(syn(OTHER_ADDR, 80))
    assert conn_cnt(xdp) == 1


def test_other_owners_bits_are_left_alone(xdp):
    table = xdp.maps["ports"]
    ports.update_flags(table, 0x40, {("udp", 80): 0x40, ("tcp", 80): 0x40})
    track(xdp, Bind(None, 80))
    assert ports.read_flags(table) == {("tcp", 80): 0x40 | ports.PORT_TRACKED,
                                       ("udp", 80): 0x40}
    track(xdp)
    assert ports.read_flags(table) == {("tcp", 80): 0x40, ("udp", 80): 0x40}


def test_the_wildcard_binds_frontend_number_survives_other_owners_writes(xdp):
    table = xdp.maps["ports"]
    track(xdp, Bind(None, 80, frontend=7), Bind("10.0.0.1", 443, frontend=9))

    def frontend_of(port: int) -> int:
        return table.lookup(table.layout.key_type(port)).tcp_frontend

    assert (frontend_of(80), frontend_of(443)) == (7, 0)  # 443's is in `listeners`
    ports.update_flags(table, 0x40, {("tcp", 80): 0x40})
    assert frontend_of(80) == 7
    track(xdp)
    assert frontend_of(80) == 0
    assert ports.read_flags(table) == {("tcp", 80): 0x40}


def test_two_frontends_on_one_wildcard_port_are_refused():
    with pytest.raises(ValueError, match="both bind the port"):
        ports.tracked_frontends([Bind(None, 80, frontend=0), Bind("::", 80, frontend=1)])
