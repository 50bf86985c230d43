"""The XDP program on crafted packets (BPF_PROG_TEST_RUN): verdicts and the
per-source map after each."""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether

from pyxlb.datapath import cidr_lists, libbpf, ports, services, src_rules
from pyxlb.datapath.libbpf import XDP_PASS
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.ports import Bind
from pyxlb.datapath.services import Backend, Service

CLIENT = "10.111.0.10"
CLIENT6 = "fd00:111::10"
ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")


def syn(src: str = CLIENT, dport: int = 80) -> bytes:
    return bytes(ETH / IP(src=src, dst="10.111.0.2") / TCP(sport=40000, dport=dport, flags="S"))


def test_ipv4_syn_is_passed_and_counted(xdp):
    packet = syn()
    result = xdp.run(packet)
    assert result.retval == XDP_PASS
    assert result.data_out == packet
    entry = xdp.source(CLIENT)
    assert entry["packets"] == 1 and entry["syns"] == 1
    assert entry["bytes"] == len(packet)
    assert [key["addr"] for key, _ in xdp.maps["src_stats"].decoded_items()] == [CLIENT]
    assert entry["last_syn_ago_s"] >= 0


def test_ipv4_ack_counts_a_packet_not_a_syn(xdp):
    ack = bytes(ETH / IP(src=CLIENT, dst="10.111.0.2") / TCP(sport=40000, dport=80, flags="A"))
    synack = bytes(ETH / IP(src=CLIENT, dst="10.111.0.2") / TCP(flags="SA"))
    assert xdp.run(ack).retval == XDP_PASS
    assert xdp.run(synack).retval == XDP_PASS
    entry = xdp.source(CLIENT)
    assert entry["packets"] == 2 and entry["syns"] == 0
    assert entry["last_syn_ago_s"] is None


def test_udp_counts_a_packet(xdp):
    packet = bytes(ETH / IP(src=CLIENT, dst="10.111.0.2") / UDP(sport=5353, dport=53) / b"q")
    assert xdp.run(packet).retval == XDP_PASS
    entry = xdp.source(CLIENT)
    assert entry["packets"] == 1 and entry["syns"] == 0


def test_ipv6_syn_is_counted_under_its_own_address(xdp):
    packet = bytes(ETH / IPv6(src=CLIENT6, dst="fd00:111::2") / TCP(dport=80, flags="S"))
    assert xdp.run(packet).retval == XDP_PASS
    entry = xdp.source(CLIENT6)
    assert entry["packets"] == 1 and entry["syns"] == 1
    assert [key["addr"] for key, _ in xdp.maps["src_stats"].decoded_items()] == [CLIENT6]
    assert xdp.source(CLIENT) is None


def test_an_ipv6_syn_behind_extension_headers_is_still_a_syn(xdp):
    packet = bytes(ETH / IPv6(src=CLIENT6, dst="fd00:111::2") / IPv6ExtHdrHopByHop() /
                   IPv6ExtHdrDestOpt() / TCP(dport=80, flags="S"))
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.source(CLIENT6)["syns"] == 1


def test_syns_accumulate_per_source(xdp):
    for _ in range(3):
        xdp.run(syn())
    xdp.run(syn("10.111.0.11"))
    assert xdp.source(CLIENT)["syns"] == 3
    assert xdp.source("10.111.0.11")["syns"] == 1
    assert len(xdp.maps["src_stats"]) == 2


def test_vlan_tagged_syn_is_seen_through_the_tag(xdp):
    packet = bytes(ETH / Dot1Q(vlan=7) / IP(src=CLIENT, dst="10.111.0.2") / TCP(flags="S"))
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.source(CLIENT)["syns"] == 1


def test_arp_is_passed_untracked(xdp):
    packet = bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=CLIENT, pdst="10.111.0.2"))
    assert xdp.run(packet).retval == XDP_PASS
    assert len(xdp.maps["src_stats"]) == 0
    assert xdp.counters()["not_ip"] == 1


def test_truncated_ethernet_frame_is_refused_by_the_kernel(xdp):
    # BPF_PROG_TEST_RUN will not run XDP on less than an Ethernet header, so a
    # shorter frame can never reach the program.
    with pytest.raises(libbpf.BpfError) as err:
        xdp.run(bytes(ETH)[:10])
    assert err.value.errno == errno.EINVAL


def test_vlan_tag_cut_off_is_passed_as_malformed(xdp):
    packet = bytes(ETH / Dot1Q(vlan=7) / IP(src=CLIENT))[:16]
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.counters()["malformed"] == 1
    assert len(xdp.maps["src_stats"]) == 0


def test_truncated_ipv4_header_is_passed_as_malformed(xdp):
    packet = syn()[: 14 + 12]
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.counters()["malformed"] == 1
    assert len(xdp.maps["src_stats"]) == 0


def test_ipv4_header_length_past_the_packet_is_malformed(xdp):
    packet = bytes(ETH / IP(src=CLIENT, ihl=15) / TCP(flags="S"))[: 14 + 40]
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.counters()["malformed"] == 1


def test_truncated_ipv6_header_is_passed_as_malformed(xdp):
    packet = bytes(ETH / IPv6(src=CLIENT6) / TCP(flags="S"))[: 14 + 30]
    assert xdp.run(packet).retval == XDP_PASS
    assert xdp.counters()["malformed"] == 1


def test_truncated_tcp_header_counts_the_packet_without_a_syn(xdp):
    packet = syn()[: 14 + 20 + 10]
    assert xdp.run(packet).retval == XDP_PASS
    entry = xdp.source(CLIENT)
    assert entry["packets"] == 1 and entry["syns"] == 0


def test_non_first_fragment_is_not_read_as_tcp(xdp):
    # Offset 8 bytes: what follows the IP header is payload, not a TCP header.
    frag = bytes(ETH / IP(src=CLIENT, proto=6, frag=1) / bytes([0] * 13 + [0x02] + [0] * 6))
    assert xdp.run(frag).retval == XDP_PASS
    assert xdp.source(CLIENT)["syns"] == 0


def test_counters_add_up(xdp):
    xdp.run(syn())
    xdp.run(bytes(Ether() / ARP()))
    xdp.run(syn()[:20])
    counters = xdp.counters()
    assert {name: counters.pop(name) for name in list(counters) if not name.startswith(
        ("l4_", "fib_"))} == {
        "packets": 3, "not_ip": 1, "malformed": 1, "blocked": 0, "allowed": 0,
        "tracked": 1, "track_full": 0, "conns_tracked": 0, "conn_rate_rejected": 0,
        "http_err_rate_rejected": 0, "gpc0_rejected": 0, "rst_sent": 0,
        "src_accepted": 0, "src_rejected": 0,
    }
    assert set(counters.values()) == {0}  # the layer-4 ones: no service here


def test_every_map_decodes_to_plain_data(xdp):
    xdp.set_params(DpParams(count_syns=True, conn_rate_period=3_000, expire_ms=60_000))
    xdp.run(syn())
    for name in ("block_list", "allow_list"):
        cidr_lists.add(xdp.maps[name], cidr_lists.parse_network("10.99.0.0/16"))
    src_rules.write(xdp.maps["src_rules"], src_rules.fold([src_rules.SrcRule(
        0, (cidr_lists.parse_network("10.99.0.0/16"),), "reject")]))
    ports.write_tracked(xdp.maps["ports"], xdp.maps["listeners"], [Bind("10.111.0.2", 80)])
    services.apply(xdp.l4, [Service("10.111.0.2", 80, "10.111.0.2",
                                    (Backend("10.111.0.21", 8080),))], range(40000, 41000))
    xdp.run(syn())
    for name, table in xdp.maps.items():
        assert len(table) >= 1
        for key, value in table.decoded_items():
            assert isinstance(key, dict | int)
            # maglev holds maps (its values are their ids), maglev_table backend numbers.
            assert isinstance(value, int if name.startswith("maglev") or name == "backend_swept"
                              else dict)
            assert "__pad" not in repr(value)  # BCC's alignment fields are left out
    [(key, entry)] = xdp.maps["src_track"].decoded_items()
    assert key == {"addr": CLIENT}
    assert entry["conn_cnt"] == 2
    assert set(entry["conn_rate"]) == {"curr_tick", "curr_ctr", "prev_ctr"}
