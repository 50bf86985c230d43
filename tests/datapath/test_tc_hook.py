"""The datapath built for TC ingress (--hook tc), one BPF_PROG_TEST_RUN per
row as for XDP, with the packet given as an skb: the same logic, TC's
verdicts (TC_ACT_OK for pass, TC_ACT_SHOT for drop, a redirect to the
ingress device's egress for XDP_TX) and the same bytes out."""

from __future__ import annotations

from ipaddress import ip_network

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from pyxlb.datapath import cidr_lists, services
from pyxlb.datapath.libbpf import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.services import Backend, Service

LB_MAC, CLIENT_MAC = "02:00:00:00:00:02", "02:00:00:00:00:0a"
CLIENT, VIP, SNAT = "10.111.0.10", "10.111.0.100", "10.111.0.2"
SERVER, SERVER_MAC = "10.111.0.21", "02:00:00:00:00:21"
NAT_PORTS = range(40000, 40001)  # one port: the NAT port is known


def from_client(l4, src: str = CLIENT) -> bytes:
    return bytes(Ether(src=CLIENT_MAC, dst=LB_MAC) / IP(src=src, dst=VIP) / l4)


def checksums_hold(frame: bytes) -> bool:
    fresh = Ether(frame)
    for layer in (IP, TCP, UDP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(fresh) == frame


def test_ordinary_traffic_passes_and_is_counted(tc_in_net):
    tc = tc_in_net
    result = tc.run(from_client(TCP(sport=1234, dport=22, flags="A")))
    assert result.retval == TC_ACT_OK
    assert tc.source(CLIENT)["packets"] == 1


def test_a_block_listed_source_is_shot(tc_in_net):
    tc = tc_in_net
    cidr_lists.add(tc.maps["block_list"], ip_network("10.111.0.10/32"))
    assert tc.run(from_client(TCP(sport=1234, dport=80, flags="S"))).retval == TC_ACT_SHOT
    assert tc.counters()["blocked"] == 1


def test_a_source_over_its_conn_rate_is_shot(tc_in_net):
    tc = tc_in_net
    tc.set_params(DpParams(count_syns=True, conn_rate_period=10_000, conn_rate_gt=2))
    verdicts = [tc.run(from_client(TCP(sport=2000 + i, dport=80, flags="S"))).retval
                for i in range(4)]
    assert verdicts == [TC_ACT_OK, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_SHOT]  # 3 > 2


def test_a_nat_flow_is_rewritten_and_sent_back_out_both_ways(tc_in_net):
    tc = tc_in_net
    services.apply(tc.l4, [Service(VIP, 80, SNAT, (Backend(SERVER, 8080),))], NAT_PORTS)
    syn = from_client(TCP(sport=40123, dport=80, flags="S", seq=7) / b"hello")
    result = tc.run(syn)
    assert result.retval == TC_ACT_REDIRECT
    out = Ether(result.data_out)
    assert (out.src, out.dst) == (LB_MAC, SERVER_MAC)
    assert (out[IP].src, out[TCP].sport, out[IP].dst, out[TCP].dport) == (
        SNAT, 40000, SERVER, 8080)
    assert checksums_hold(result.data_out)
    reply = bytes(Ether(src=SERVER_MAC, dst=LB_MAC) / IP(src=SERVER, dst=SNAT) /
                  TCP(sport=8080, dport=40000, flags="SA", seq=9, ack=8))
    result = tc.run(reply)
    assert result.retval == TC_ACT_REDIRECT
    back = Ether(result.data_out)
    assert (back.dst, back[IP].src, back[TCP].sport, back[IP].dst, back[TCP].dport) == (
        CLIENT_MAC, VIP, 80, CLIENT, 40123)
    assert checksums_hold(result.data_out)
    assert tc.counters()["l4_tx"] == 2


def test_dsr_only_changes_the_macs(tc_in_net):
    tc = tc_in_net
    services.apply(tc.l4, [Service(VIP, 80, SNAT, (Backend(SERVER, 80),), forward="dsr")],
                   NAT_PORTS)
    syn = from_client(TCP(sport=40124, dport=80, flags="S"))
    result = tc.run(syn)
    assert result.retval == TC_ACT_REDIRECT
    expected = Ether(syn)
    expected.src, expected.dst = LB_MAC, SERVER_MAC
    assert result.data_out == bytes(expected)


def test_a_rejected_syn_is_answered_with_a_rst_sent_back_out(tc_in_net):
    tc = tc_in_net
    tc.set_params(DpParams(count_syns=True, conn_rate_period=10_000, conn_rate_gt=0,
                           reject_with_rst=True))
    result = tc.run(from_client(TCP(sport=2222, dport=80, flags="S", seq=41)))
    assert result.retval == TC_ACT_REDIRECT
    out = Ether(result.data_out)
    assert (out.dst, out[IP].dst, out[TCP].dport, out[TCP].flags, out[TCP].ack) == (
        CLIENT_MAC, CLIENT, 2222, "RA", 42)
    assert len(result.data_out) == 14 + 20 + 20
    assert checksums_hold(result.data_out)
