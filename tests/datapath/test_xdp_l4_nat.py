"""Layer-4 services with full NAT in XDP, one BPF_PROG_TEST_RUN per row: a
crafted packet and the maps as pyxlb.datapath.services writes them; then the
verdict, the packet that leaves (checksums checked by scapy recomputing them
from scratch) and the maps.

Packets come in on lb0 of the test's own namespace (conftest.TEST_NET_SETUP),
so bpf_fib_lookup answers from routes and neighbours the test chose."""

from __future__ import annotations

import pytest
from l4_packets import (
    CLIENT,
    CLIENT6,
    CLIENT_MAC,
    LB_MAC,
    ONE_PORT,
    ONE_SERVER,
    SERVERS,
    SNAT,
    SNAT6,
    VIP,
    VIP6,
    WEB,
    checksums_hold,
    client_packet,
    expected_nat,
    from_server,
    only,
    open_flow,
    reply_from,
    rewritten,
    serve,
    syn,
)
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from pyxlb.datapath import cidr_lists, libbpf, services
from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX
from pyxlb.datapath.services import Backend, Service


def test_a_syn_is_sent_to_its_maglev_server_with_full_nat(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    packet = syn()
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX  # the server is on the link it came in on
    assert result.data_out == rewritten(packet, SNAT, nat_port, server, port,
                                        LB_MAC, SERVERS[server])
    key, conn = only(xdp.maps["conntrack"])
    assert key == {"src_addr": CLIENT, "dst_addr": VIP, "sport": 40123, "dport": 80, "proto": 6}
    assert (conn["out_src_addr"], conn["out_sport"]) == (SNAT, nat_port)
    assert (conn["out_dst_addr"], conn["out_dport"], conn["state"]) == (server, port, 0)
    key, back = only(xdp.maps["nat_reverse"])
    assert key == {"src_addr": server, "dst_addr": SNAT, "sport": port, "dport": nat_port,
                   "proto": 6}
    assert (back["out_src_addr"], back["out_sport"]) == (VIP, 80)
    assert (back["out_dst_addr"], back["out_dport"]) == (CLIENT, 40123)
    counters = xdp.counters()
    assert (counters["l4_new_flows"], counters["l4_forwarded"], counters["l4_tx"]) == (1, 1, 1)
    [stats] = services.stats(xdp.l4)
    assert (stats["new_flows"], stats["packets"], stats["bytes"]) == (1, 1, len(packet))
    picked = [b for b in stats["backends"] if b["server"] == f"{server}:{port}"]
    assert picked[0]["new_flows"] == picked[0]["packets"] == 1


def test_later_packets_of_the_flow_hit_conntrack(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    first = xdp.run(bytes(syn())).data_out
    data = client_packet(TCP(sport=40123, dport=80, flags="PA", seq=1001, ack=5001) / b"GET /")
    server, port, nat_port = expected_nat(xdp, plan, syn())
    result = xdp.run(bytes(data))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(data, SNAT, nat_port, server, port,
                                        LB_MAC, SERVERS[server])
    assert Ether(first)[IP].dst == server
    assert xdp.counters()["l4_new_flows"] == 1
    assert xdp.counters()["l4_forwarded"] == 2
    assert len(xdp.maps["conntrack"]) == len(xdp.maps["nat_reverse"]) == 1


def test_payload_bytes_are_counted_each_way_for_bin_and_bout(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, port, nat_port = expected_nat(xdp, plan, syn())
    xdp.run(bytes(syn()))  # no payload
    request = client_packet(TCP(sport=40123, dport=80, flags="PA", seq=1001, ack=5001,
                                options=[("NOP", None), ("NOP", None),
                                         ("Timestamp", (1, 2))]) / (b"q" * 123))
    xdp.run(bytes(request))
    answer = reply_from(server, port, nat_port, "PA") / (b"a" * 456)
    xdp.run(bytes(answer))
    [stats] = services.stats(xdp.l4)
    assert (stats["payload"], stats["reply_payload"]) == (123, 456)
    [picked] = [b for b in stats["backends"] if b["server"] == f"{server}:{port}"]
    assert (picked["payload"], picked["reply_payload"]) == (123, 456)


def test_a_servers_reply_goes_back_to_the_client_from_the_vip(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, port, nat_port = expected_nat(xdp, plan, syn())
    xdp.run(bytes(syn()))
    reply = reply_from(server, port, nat_port)
    result = xdp.run(bytes(reply))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(reply, VIP, 80, CLIENT, 40123, LB_MAC, CLIENT_MAC)
    assert xdp.counters()["l4_replied"] == 1
    [stats] = services.stats(xdp.l4)
    assert (stats["reply_packets"], stats["reply_bytes"]) == (1, len(reply))


def test_a_reply_to_a_nat_port_without_a_flow_passes_untouched(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    stray = bytes(reply_from("10.111.0.21", 8080, 40001))
    result = xdp.run(stray)
    assert (result.retval, result.data_out) == (XDP_PASS, stray)
    assert xdp.counters()["l4_replied"] == 0


@pytest.mark.parametrize("packet", [
    pytest.param(client_packet(TCP(sport=1, dport=80, flags="S", options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)])),
        id="tcp-options"),
    pytest.param(client_packet(TCP(sport=65535, dport=80, flags="S") / (b"\xff" * 33)),
                 id="odd-payload"),
    pytest.param(Ether(src=CLIENT_MAC, dst=LB_MAC) / IP(src=CLIENT, dst=VIP,
                                                        options=[IPOption_RR()]) /
                 TCP(sport=5555, dport=80, flags="S"), id="ip-options"),
    pytest.param(Ether(src=CLIENT_MAC, dst=LB_MAC) / Dot1Q(vlan=7) / IP(src=CLIENT, dst=VIP) /
                 TCP(sport=5556, dport=80, flags="S"), id="vlan"),
    pytest.param(client_packet(TCP(sport=40123, dport=80, flags="S"), src="10.255.255.255"),
                 id="high-address"),
])
def test_checksums_are_those_computed_from_scratch(xdp_in_net, packet):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval in (XDP_TX, XDP_PASS)
    out = Ether(result.data_out)
    assert (out[IP].src, out[IP].dst, out[TCP].sport, out[TCP].dport) == (
        SNAT, server, nat_port, port)
    assert checksums_hold(result.data_out)
    assert out[TCP].payload == packet[TCP].payload


def test_ipv6_flows_are_translated_both_ways(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP6, 443, SNAT6, (Backend("fd00:111::21", 8443),)))
    packet = client_packet(TCP(sport=41000, dport=443, flags="S") / b"x", CLIENT6, VIP6)
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(packet, SNAT6, nat_port, server, port,
                                        LB_MAC, SERVERS[server])
    reply = reply_from(server, port, nat_port)
    result = xdp.run(bytes(reply))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(reply, VIP6, 443, CLIENT6, 41000, LB_MAC, CLIENT_MAC)
    assert checksums_hold(result.data_out)


@pytest.mark.parametrize("checksum", [None, 0], ids=["with-checksum", "without-checksum"])
def test_udp_flows_are_translated_both_ways(xdp_in_net, checksum):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 53, SNAT, WEB.backends, proto="udp"))
    packet = client_packet(UDP(sport=5353, dport=53, chksum=checksum) / b"query")
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(packet, SNAT, nat_port, server, 8080,
                                        LB_MAC, SERVERS[server])
    assert (Ether(result.data_out)[UDP].chksum == 0) == (checksum == 0)
    reply = (Ether(src=SERVERS[server], dst=LB_MAC) / IP(src=server, dst=SNAT) /
             UDP(sport=port, dport=nat_port, chksum=checksum) / b"answer")
    result = xdp.run(bytes(reply))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(reply, VIP, 53, CLIENT, 5353, LB_MAC, CLIENT_MAC)


def test_flows_keep_their_server_when_the_table_changes(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    flows = [syn(sport) for sport in range(20000, 20060)]
    first = {f[TCP].sport: Ether(xdp.run(bytes(f)).data_out)[IP].dst for f in flows}
    assert set(first.values()) == set(SERVERS) - {"10.112.0.21", "fd00:111::21"}
    gone = "10.111.0.21"
    plan = serve(xdp, Service(VIP, 80, SNAT, tuple(b for b in WEB.backends if b.addr != gone)))
    for f in flows:
        ack = client_packet(TCP(sport=f[TCP].sport, dport=80, flags="A"))
        assert Ether(xdp.run(bytes(ack)).data_out)[IP].dst == first[f[TCP].sport]
    for sport in range(30000, 30060):
        new = Ether(xdp.run(bytes(syn(sport))).data_out)
        assert new[IP].dst != gone
        assert new[IP].dst == expected_nat(xdp, plan, syn(sport))[0]
    assert xdp.counters()["l4_new_flows"] == 120


def test_fin_and_rst_are_noted_and_shorten_the_flows_life(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    for sport in (1001, 1002, 1003):
        xdp.run(bytes(syn(sport)))
    xdp.run(bytes(client_packet(TCP(sport=1001, dport=80, flags="FA"))))
    server, port, nat_port = expected_nat(xdp, plan, syn(1001))
    xdp.run(bytes(reply_from(server, port, nat_port, "FA")))
    xdp.run(bytes(client_packet(TCP(sport=1002, dport=80, flags="R"))))
    server, port, nat_port = expected_nat(xdp, plan, syn(1003))
    xdp.run(bytes(reply_from(server, port, nat_port)))  # answered: not a failed SYN
    states = {k["sport"]: v["state"] for k, v in xdp.maps["conntrack"].decoded_items()}
    closed = services.CONN_CLOSED  # counted closed for leastconn, once
    assert states == {1001: services.CONN_FIN | closed, 1002: services.CONN_RST | closed, 1003: 0}
    last_seen = max(c.last_seen_ns for _, c in xdp.maps["conntrack"].items())
    # 11 s later the closed flows have gone; the open one stays for 15 min.
    result = services.sweep(xdp.l4, now_ns=last_seen + 11 * 10**9)
    assert (result.flows, result.orphans) == (2, 0)
    assert [k["sport"] for k, _ in xdp.maps["conntrack"].decoded_items()] == [1003]
    assert len(xdp.maps["nat_reverse"]) == 1
    assert services.sweep(xdp.l4, now_ns=last_seen + 899 * 10**9).flows == 0
    assert services.sweep(xdp.l4, now_ns=last_seen + 901 * 10**9).flows == 1
    assert len(xdp.maps["nat_reverse"]) == 0


def test_a_flow_is_seen_on_the_clock_the_sweeper_reads(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    before = services.coarse_now_ns()
    xdp.run(bytes(syn()))
    [(_, conn)] = xdp.maps["conntrack"].items()
    assert before <= conn.last_seen_ns <= services.coarse_now_ns()
    assert services.sweep(xdp.l4) == services.SweepResult(0, 0)
    # Idle for longer than a 0 s timeout once the coarse clock ticks.
    deadline = conn.last_seen_ns + 50_000_000
    while services.coarse_now_ns() <= conn.last_seen_ns and services.coarse_now_ns() < deadline:
        pass
    assert services.sweep(xdp.l4, services.Timeouts(tcp=0)) == services.SweepResult(1, 0)


def test_a_syn_reusing_a_closed_flows_ports_is_a_new_flow(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    xdp.run(bytes(syn()))
    xdp.run(bytes(client_packet(TCP(sport=40123, dport=80, flags="R"))))
    assert xdp.run(bytes(syn())).retval == XDP_TX
    [(_, conn)] = xdp.maps["conntrack"].decoded_items()
    assert conn["state"] == 0
    assert xdp.counters()["l4_new_flows"] == 2
    # The old reply entry holds the first NAT port: a free one goes first, so
    # the new flow takes the next.
    ports = sorted(k["dport"] for k, _ in xdp.maps["nat_reverse"].decoded_items())
    assert ports[1] == ports[0] + 1


def test_a_retransmitted_syn_stays_on_its_flow(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    assert xdp.run(bytes(syn())).data_out == xdp.run(bytes(syn())).data_out
    assert xdp.counters()["l4_new_flows"] == 1


@pytest.mark.parametrize("packet", [
    pytest.param(client_packet(TCP(sport=1234, dport=81, flags="S")), id="other-port"),
    pytest.param(client_packet(TCP(sport=1234, dport=80, flags="S"), dst="10.111.0.101"),
                 id="other-address"),
    pytest.param(client_packet(UDP(sport=1234, dport=80)), id="other-protocol"),
    pytest.param(reply_from("10.111.0.21", 8080, 39999), id="below-the-nat-ports"),
])
def test_traffic_for_no_service_passes_untouched(xdp_in_net, packet):
    xdp = xdp_in_net
    serve(xdp, WEB)
    result = xdp.run(bytes(packet))
    assert (result.retval, result.data_out) == (XDP_PASS, bytes(packet))
    assert len(xdp.maps["conntrack"]) == 0
    assert xdp.counters()["tracked"] == 1  # counted like any traffic for the stack


def test_a_mid_flow_packet_without_a_flow_goes_to_the_stack(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    ack = bytes(client_packet(TCP(sport=1234, dport=80, flags="A")))
    result = xdp.run(ack)
    assert (result.retval, result.data_out) == (XDP_PASS, ack)
    assert xdp.counters()["l4_no_conn"] == 1
    assert len(xdp.maps["conntrack"]) == 0


def test_a_service_without_a_live_server_passes_new_flows(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP, 80, SNAT, tuple(Backend(b.addr, 8080, state="down")
                                            for b in WEB.backends)))
    packet = bytes(syn())
    assert xdp.run(packet).data_out == packet
    assert xdp.counters()["l4_no_backend"] == 1
    [stats] = services.stats(xdp.l4)
    assert (stats["new_flows"], stats["failed_flows"]) == (0, 1)


def test_when_every_nat_port_is_taken_new_flows_pass(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP, 80, SNAT, (Backend("10.111.0.21", 8080),)),
          nat_ports=range(40000, 40002))
    verdicts = [xdp.run(bytes(syn(sport))).retval for sport in (1, 2, 3)]
    assert verdicts == [XDP_TX, XDP_TX, XDP_PASS]
    assert xdp.counters()["l4_no_nat_port"] == 1
    assert sorted(k["dport"] for k, _ in xdp.maps["nat_reverse"].decoded_items()) == [40000,
                                                                                      40001]


def test_a_server_behind_another_interface_is_a_redirect(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 80, "10.112.0.2", (Backend("10.112.0.21", 8080),)))
    packet = syn()
    _, _, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_REDIRECT
    assert result.data_out == rewritten(packet, "10.112.0.2", nat_port, "10.112.0.21", 8080,
                                        "02:00:00:00:01:02", "02:00:00:00:01:21")
    assert xdp.counters()["l4_redirected"] == 1


def test_a_next_hop_without_a_neighbour_entry_goes_to_the_stack_rewritten(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 80, SNAT, (Backend("10.111.0.29", 8080),)))
    packet = syn()
    _, _, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_PASS
    assert result.data_out == rewritten(packet, SNAT, nat_port, "10.111.0.29", 8080, None, None)
    assert xdp.counters()["fib_no_neigh"] == 1


def test_without_forwarding_the_rewritten_packet_goes_to_the_stack(xdp):
    # Test runs in the host's namespace come in on its loopback, where the
    # FIB lookup refuses to forward.
    plan = serve(xdp, WEB)
    packet = syn()
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_PASS
    assert result.data_out == rewritten(packet, SNAT, nat_port, server, port, None, None)
    assert xdp.counters()["fib_failed"] == 1


def test_fragments_to_a_service_are_not_balanced(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    frag = bytes(Ether(src=CLIENT_MAC, dst=LB_MAC) / IP(src=CLIENT, dst=VIP, flags="MF") /
                 TCP(sport=1, dport=80, flags="S"))
    assert xdp.run(frag).data_out == frag
    assert xdp.counters()["l4_fragments"] == 1
    assert len(xdp.maps["conntrack"]) == 0


# -- IPv6 extension headers: walked to the TCP/UDP header -----------------------------

V6_SERVICE = Service(VIP6, 443, SNAT6, (Backend("fd00:111::21", 8443),))


def v6_with(*ext: Packet) -> Ether:
    packet = IPv6(src=CLIENT6, dst=VIP6)
    for header in ext:
        packet = packet / header
    return Ether(src=CLIENT_MAC, dst=LB_MAC) / packet / TCP(sport=41000, dport=443, flags="S")


def test_ipv6_extension_headers_are_walked_and_the_flow_translated(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, V6_SERVICE)
    packet = v6_with(IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(options=[]))
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    assert result.data_out == rewritten(packet, SNAT6, nat_port, server, port,
                                        LB_MAC, SERVERS[server])
    assert checksums_hold(result.data_out)
    assert IPv6ExtHdrDestOpt in Ether(result.data_out)


@pytest.mark.parametrize("ext, counter", [
    ((IPv6ExtHdrFragment(m=1, offset=0),), "l4_fragments"),
    ((IPv6ExtHdrHopByHop(), IPv6ExtHdrFragment(m=0, offset=3)), None),  # no ports
    ((IPv6ExtHdrRouting(addresses=["fd00:111::99"], segleft=1),), None),
    ((IPv6ExtHdrDestOpt(),) * 5, None),  # deeper than we walk
], ids=["first-fragment", "later-fragment", "routing-not-final", "too-many-headers"])
def test_ipv6_packets_that_must_not_be_balanced_pass_untouched(xdp_in_net, ext, counter):
    xdp = xdp_in_net
    serve(xdp, V6_SERVICE)
    packet = bytes(v6_with(*ext))
    result = xdp.run(packet)
    assert (result.retval, result.data_out) == (XDP_PASS, packet)
    assert len(xdp.maps["conntrack"]) == 0
    if counter:
        assert xdp.counters()[counter] == 1
    assert xdp.counters()["malformed"] == 0


def test_an_ipv6_extension_header_cut_short_is_malformed(xdp_in_net):
    xdp = xdp_in_net
    packet = bytes(Ether(src=CLIENT_MAC, dst=LB_MAC) / IPv6(src=CLIENT6, dst=VIP6, nh=0))
    assert xdp.run(packet + b"\x06").retval == XDP_PASS
    assert xdp.counters()["malformed"] == 1


def test_a_blocked_client_never_reaches_the_service(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    cidr_lists.add(xdp.maps["block_list"], cidr_lists.parse_network(CLIENT))
    assert xdp.run(bytes(syn())).retval == XDP_DROP
    assert len(xdp.maps["conntrack"]) == 0


def test_roundrobin_gives_new_flows_to_the_servers_in_turn(xdp_in_net):
    xdp = xdp_in_net
    rr = Service(VIP, 80, SNAT, WEB.backends, algorithm="roundrobin")
    serve(xdp, rr)
    servers = [Ether(xdp.run(bytes(syn(sport))).data_out)[IP].dst for sport in range(1, 8)]
    assert servers == ["10.111.0.21", "10.111.0.22", "10.111.0.23"] * 2 + ["10.111.0.21"]
    # Known flows stay put, and do not take a turn.
    assert Ether(xdp.run(bytes(syn(1))).data_out)[IP].dst == "10.111.0.21"
    # Rewriting the same services keeps the turn where it is.
    serve(xdp, rr)
    assert Ether(xdp.run(bytes(syn(8))).data_out)[IP].dst == "10.111.0.22"


def test_ipv6_to_an_ipv4_mapped_vip_is_not_taken_for_ipv4(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    packet = bytes(client_packet(TCP(sport=1, dport=80, flags="S"), CLIENT6, f"::ffff:{VIP}"))
    assert xdp.run(packet).data_out == packet
    assert len(xdp.maps["conntrack"]) == 0


def backend_counts(xdp, server: str) -> dict:
    [stats] = services.stats(xdp.l4)
    [backend] = [b for b in stats["backends"] if b["server"].startswith(f"{server}:")]
    return backend


def test_a_syn_answered_by_a_rst_counts_as_refused_once(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, port, nat_port = expected_nat(xdp, plan, syn())
    xdp.run(bytes(syn()))
    rst = reply_from(server, port, nat_port, "RA")
    assert xdp.run(bytes(rst)).retval == XDP_TX  # the client gets its refusal
    xdp.run(bytes(rst))  # a second RST is no second failure
    counts = backend_counts(xdp, server)
    assert (counts["refused"], counts["answered"]) == (1, 0)
    [stats] = services.stats(xdp.l4)
    assert (stats["refused"], stats["answered"]) == (1, 0)
    [(_, back)] = xdp.maps["nat_reverse"].decoded_items()
    assert back["state"] == services.CONN_RST


def test_a_syn_ack_counts_as_answered_and_a_later_rst_as_no_failure(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, port, nat_port = expected_nat(xdp, plan, syn())
    xdp.run(bytes(syn()))
    xdp.run(bytes(reply_from(server, port, nat_port, "SA")))
    xdp.run(bytes(reply_from(server, port, nat_port, "SA")))  # retransmitted
    [(_, back)] = xdp.maps["nat_reverse"].decoded_items()
    assert back["state"] == services.CONN_ANSWERED
    xdp.run(bytes(reply_from(server, port, nat_port, "R")))
    counts = backend_counts(xdp, server)
    assert (counts["answered"], counts["refused"]) == (1, 0)
    others = [b for b in next(iter(services.stats(xdp.l4)))["backends"]
              if not b["server"].startswith(f"{server}:")]
    assert all((b["answered"], b["refused"]) == (0, 0) for b in others)


def test_a_clients_rst_is_not_the_servers_refusal(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    server, _, _ = expected_nat(xdp, plan, syn())
    xdp.run(bytes(syn()))
    xdp.run(bytes(client_packet(TCP(sport=40123, dport=80, flags="R"))))
    assert backend_counts(xdp, server)["refused"] == 0


# -- direct server return: the MACs change, nothing else; no reply entry --------------

WEB_DSR = Service(VIP, 80, SNAT, tuple(Backend(b.addr, 80) for b in WEB.backends),
                  forward="dsr")


def test_dsr_sends_the_packet_unchanged_but_for_the_macs(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB_DSR)
    packet = syn() / b"payload"
    server, port, _ = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    out = Ether(bytes(packet))
    out.src, out.dst = LB_MAC, SERVERS[server]
    assert result.data_out == bytes(out)  # IP and TCP untouched, checksums too
    key, conn = only(xdp.maps["conntrack"])
    assert (key["src_addr"], key["dst_addr"]) == (CLIENT, VIP)
    assert (conn["out_dst_addr"], conn["state"]) == (server, services.CONN_DSR)
    assert len(xdp.maps["nat_reverse"]) == 0
    data = client_packet(TCP(sport=40123, dport=80, flags="PA") / b"GET /")
    result = xdp.run(bytes(data))
    assert result.retval == XDP_TX
    assert Ether(result.data_out).dst == SERVERS[server]
    assert Ether(result.data_out)[IP].dst == VIP
    counters = xdp.counters()
    assert (counters["l4_new_flows"], counters["l4_forwarded"]) == (1, 2)
    [stats] = services.stats(xdp.l4)
    assert (stats["new_flows"], stats["packets"]) == (1, 2)


def test_dsr_flows_keep_their_server_when_the_table_changes(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB_DSR)
    flows = range(21000, 21040)
    first = {sport: Ether(xdp.run(bytes(syn(sport))).data_out).dst for sport in flows}
    assert len(set(first.values())) == 3
    gone = "10.111.0.21"
    serve(xdp, Service(VIP, 80, SNAT, tuple(b for b in WEB_DSR.backends if b.addr != gone),
                       forward="dsr"))
    for sport in flows:
        ack = client_packet(TCP(sport=sport, dport=80, flags="A"))
        assert Ether(xdp.run(bytes(ack)).data_out).dst == first[sport]
    assert all(Ether(xdp.run(bytes(syn(sport))).data_out).dst != SERVERS[gone]
               for sport in range(31000, 31040))


def test_dsr_works_for_ipv6_and_udp(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP6, 53, SNAT6, (Backend("fd00:111::21", 53),), proto="udp",
                       forward="dsr"))
    packet = client_packet(UDP(sport=5353, dport=53) / b"query", CLIENT6, VIP6)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    out = Ether(bytes(packet))
    out.src, out.dst = LB_MAC, SERVERS["fd00:111::21"]
    assert result.data_out == bytes(out)


def test_dsr_needs_servers_on_the_service_port():
    with pytest.raises(ValueError, match="must listen on the service's port 80"):
        Service(VIP, 80, SNAT, (Backend("10.111.0.21", 8080),), forward="dsr")


def test_each_service_sweeps_with_its_own_timeouts(xdp_in_net):
    xdp = xdp_in_net
    short = services.Timeouts(tcp=30.0, tcp_closing=30.0, tcp_closed=10.0, udp=30.0)
    plan = serve(xdp, WEB, Service(VIP, 81, SNAT, WEB.backends, timeouts=short))
    xdp.run(bytes(syn(1001)))
    xdp.run(bytes(client_packet(TCP(sport=1002, dport=81, flags="S"))))
    for sport, dport in ((1001, 80), (1002, 81)):  # both answered: established
        server, port, nat_port = expected_nat(xdp, plan, client_packet(
            TCP(sport=sport, dport=dport, flags="S")))
        xdp.run(bytes(reply_from(server, port, nat_port)))
    last_seen = max(c.last_seen_ns for _, c in xdp.maps["conntrack"].items())
    by_service = {sid: svc.timeouts for sid, svc in plan.services.values()}
    swept = services.sweep(xdp.l4, by_service, now_ns=last_seen + 31 * 10**9)
    assert (swept.flows, swept.unanswered) == (1, {})
    assert [k["dport"] for k, _ in xdp.maps["conntrack"].decoded_items()] == [80]


def test_a_syn_its_server_never_answers_is_given_up_and_counted(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    xdp.run(bytes(syn(1001)))
    xdp.run(bytes(syn(1001)))  # retransmitted: still the same flow
    xdp.run(bytes(syn(1002)))
    server, port, nat_port = expected_nat(xdp, plan, syn(1002))
    xdp.run(bytes(reply_from(server, port, nat_port)))  # 1002 is answered
    unanswered_server = expected_nat(xdp, plan, syn(1001))[0]
    number = next(n for n, b in plan.backends.items() if b.addr == unanswered_server)
    created = min(c.last_seen_ns for _, c in xdp.maps["nat_reverse"].items())
    assert services.sweep(xdp.l4, now_ns=created + 4 * 10**9).flows == 0
    swept = services.sweep(xdp.l4, now_ns=created + 6 * 10**9)  # connect: 5 s
    assert (swept.flows, swept.unanswered) == (1, {number: 1})
    assert [k["sport"] for k, _ in xdp.maps["conntrack"].decoded_items()] == [1002]


# -- leastconn and first: new flows by the flows each backend has ---------------------

def server_of(xdp, sport: int, dport: int = 80) -> str:
    return Ether(xdp.run(bytes(syn(sport) if dport == 80 else client_packet(
        TCP(sport=sport, dport=dport, flags="S")))).data_out)[IP].dst


def close(xdp, sport: int) -> None:
    xdp.run(bytes(client_packet(TCP(sport=sport, dport=80, flags="FA"))))


def test_leastconn_sends_new_flows_to_the_backend_with_fewest(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP, 80, SNAT, WEB.backends, algorithm="leastconn"))
    first = [server_of(xdp, sport) for sport in range(3000, 3006)]
    assert sorted(first) == sorted([b.addr for b in WEB.backends] * 2)  # equal: in turns
    # Both flows of one backend close: it has the fewest, so it takes the next two.
    emptied = first[0]
    for sport, server in zip(range(3000, 3006), first, strict=True):
        if server == emptied:
            close(xdp, sport)
    assert [server_of(xdp, sport) for sport in (4000, 4001)] == [emptied, emptied]
    [stats] = services.stats(xdp.l4)
    assert sorted(b["active_flows"] for b in stats["backends"]) == [2, 2, 2]


def test_leastconn_weighs_flows_by_weight(xdp_in_net):
    xdp = xdp_in_net
    heavy, light = "10.111.0.21", "10.111.0.22"
    serve(xdp, Service(VIP, 80, SNAT, (Backend(heavy, 8080, weight=3),
                                       Backend(light, 8080, weight=1)), algorithm="leastconn"))
    picked = [server_of(xdp, sport) for sport in range(5000, 5008)]
    assert (picked.count(heavy), picked.count(light)) == (6, 2)


def test_first_fills_each_backend_up_to_its_maxconn_in_order(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP, 80, SNAT, (Backend("10.111.0.21", 8080, maxconn=2),
                                       Backend("10.111.0.22", 8080, maxconn=2),
                                       Backend("10.111.0.23", 8080)), algorithm="first"))
    picked = [server_of(xdp, sport) for sport in range(6000, 6006)]
    assert picked == ["10.111.0.21"] * 2 + ["10.111.0.22"] * 2 + ["10.111.0.23"] * 2
    close(xdp, 6000)
    assert server_of(xdp, 6100) == "10.111.0.21"  # a slot came free on the first


def test_swept_flows_leave_the_count(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 80, SNAT, WEB.backends[:1], algorithm="leastconn"))
    for sport in (7000, 7001):
        out = Ether(xdp.run(bytes(syn(sport))).data_out)
        xdp.run(bytes(reply_from(out[IP].dst, out[TCP].dport, out[TCP].sport)))
    close(xdp, 7000)  # counted closed by the kernel
    [number] = plan.backends
    assert services.active_flows(xdp.l4, number) == 1
    last_seen = max(c.last_seen_ns for _, c in xdp.maps["conntrack"].items())
    assert services.sweep(xdp.l4, now_ns=last_seen + 901 * 10**9).flows == 2
    assert services.active_flows(xdp.l4, number) == 0  # the idle one, swept, not twice


def test_flows_the_lru_evicted_leave_the_count_at_the_next_sweep(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 80, SNAT, WEB.backends[:1], algorithm="leastconn"))
    for sport in (7000, 7001, 7002):
        xdp.run(bytes(syn(sport)))
    close(xdp, 7001)
    [number] = plan.backends
    assert services.active_flows(xdp.l4, number) == 2
    # What a full LRU does: the entry goes, the kernel's count does not know.
    [evicted] = [k for k, _ in xdp.maps["conntrack"].items() if k.sport == 7000]
    libbpf.map_delete(xdp.maps["conntrack"].fd, evicted)
    result = services.sweep(xdp.l4)
    assert (result.flows, result.evicted) == (0, {number: 1})
    assert services.active_flows(xdp.l4, number) == 1
    assert services.sweep(xdp.l4).evicted == {}  # taken off once
    assert services.active_flows(xdp.l4, number) == 1


# -- a NAT port whose flow is over is taken at once, not after the sweep ---------------

def test_a_live_flow_keeps_its_nat_port(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, ONE_SERVER, nat_ports=ONE_PORT)
    first = open_flow(xdp, 1001)
    from_server(xdp, first, "SA")
    assert open_flow(xdp, 1002) is None
    assert xdp.counters()["l4_no_nat_port"] == 1


@pytest.mark.parametrize("ending", ["fins-both-ways", "client-rst", "server-rst", "forgotten"])
def test_the_port_of_a_flow_that_is_over_is_taken_over(xdp_in_net, ending):
    xdp = xdp_in_net
    plan = serve(xdp, ONE_SERVER, nat_ports=ONE_PORT)
    first = open_flow(xdp, 1001)
    from_server(xdp, first, "SA")
    if ending == "fins-both-ways":
        xdp.run(bytes(client_packet(TCP(sport=1001, dport=80, flags="FA"))))
        from_server(xdp, first, "FA")
    elif ending == "client-rst":
        xdp.run(bytes(client_packet(TCP(sport=1001, dport=80, flags="R"))))
    elif ending == "server-rst":
        from_server(xdp, first, "R")
    else:  # the forward entry is gone (evicted): the reverse one is an orphan
        [(key, _)] = xdp.maps["conntrack"].items()
        libbpf.map_delete(xdp.maps["conntrack"].fd, key)
    second = open_flow(xdp, 1002)
    assert second is not None and second[TCP].sport == 40000
    assert [k["sport"] for k, _ in xdp.maps["conntrack"].decoded_items()] == [1002]
    [(_, back)] = xdp.maps["nat_reverse"].decoded_items()
    assert back["out_dport"] == 1002  # replies now go to the new flow's client
    [number] = plan.backends
    assert services.active_flows(xdp.l4, number) == 1


# -- ICMP errors about a NAT'd flow: translated for its other end ----------------------

def icmp_error(src: str, dst: str, src_mac: str, quoted: bytes, **icmp) -> Ether:
    return (Ether(src=src_mac, dst=LB_MAC) / IP(src=src, dst=dst, id=77, ttl=61) /
            ICMP(**icmp) / Raw(quoted))


def with_fresh_checksums(packet: Ether) -> bytes:
    fresh = Ether(bytes(packet))
    del fresh[IP].chksum
    del fresh[ICMP].chksum
    return bytes(fresh)


def test_a_servers_icmp_error_reaches_the_client_about_its_own_packet(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, WEB)
    sent = syn() / b"hello"
    forwarded = Ether(xdp.run(bytes(sent)).data_out)
    server = forwarded[IP].dst
    # "Fragmentation needed" from the server, quoting what it got from us.
    error = icmp_error(server, SNAT, SERVERS[server], bytes(forwarded[IP])[:48],
                       type=3, code=4, nexthopmtu=1400)
    result = xdp.run(bytes(error))
    assert result.retval == XDP_TX
    expected = Ether(bytes(error))
    expected.src, expected.dst = LB_MAC, CLIENT_MAC
    expected[IP].src, expected[IP].dst = VIP, CLIENT
    expected[ICMP].remove_payload()
    expected = expected / Raw(bytes(sent[IP])[:48])  # the client's own bytes, checksums too
    assert result.data_out == with_fresh_checksums(expected)
    assert xdp.counters()["l4_icmp"] == 1


def test_a_clients_icmp_error_about_a_reply_reaches_the_server(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP, 53, SNAT, WEB.backends, proto="udp"))
    query = client_packet(UDP(sport=5353, dport=53) / b"query")
    server, port, nat_port = expected_nat(xdp, plan, query)
    xdp.run(bytes(query))
    answer = (Ether(src=SERVERS[server], dst=LB_MAC) / IP(src=server, dst=SNAT) /
              UDP(sport=port, dport=nat_port) / b"answer")
    delivered = Ether(xdp.run(bytes(answer)).data_out)
    # The client's port is gone: "port unreachable", quoting the reply it got.
    error = icmp_error(CLIENT, VIP, CLIENT_MAC, bytes(delivered[IP])[:28], type=3, code=3)
    result = xdp.run(bytes(error))
    assert result.retval == XDP_TX
    out = Ether(result.data_out)
    assert (out[IP].src, out[IP].dst, out.dst) == (SNAT, server, SERVERS[server])
    assert bytes(out[ICMP].payload) == bytes(answer[IP])[:28]
    assert result.data_out == with_fresh_checksums(out)


def icmp6_error(src: str, dst: str, src_mac: str, quoted: bytes, error: Packet) -> Ether:
    return (Ether(src=src_mac, dst=LB_MAC) / IPv6(src=src, dst=dst, hlim=61) / error /
            Raw(quoted))


def with_fresh_icmp6_checksum(packet: Ether) -> bytes:
    fresh = Ether(bytes(packet))
    del fresh[IPv6].payload.cksum
    return bytes(fresh)


V6_WEB = Service(VIP6, 443, SNAT6, (Backend("fd00:111::21", 8443),))


@pytest.mark.parametrize("error", [
    ICMPv6PacketTooBig(mtu=1280), ICMPv6DestUnreach(code=1), ICMPv6TimeExceeded(),
    ICMPv6ParamProblem(ptr=6)], ids=["too-big", "unreachable", "time-exceeded", "param"])
def test_a_servers_icmpv6_error_reaches_the_client_about_its_own_packet(xdp_in_net, error):
    xdp = xdp_in_net
    serve(xdp, V6_WEB)
    sent = client_packet(TCP(sport=41000, dport=443, flags="S", seq=1000) / b"hello",
                         CLIENT6, VIP6)
    forwarded = Ether(xdp.run(bytes(sent)).data_out)
    server = forwarded[IPv6].dst
    error = icmp6_error(server, SNAT6, SERVERS[server], bytes(forwarded[IPv6])[:72], error)
    result = xdp.run(bytes(error))
    assert result.retval == XDP_TX
    expected = Ether(bytes(error))
    expected.src, expected.dst = LB_MAC, CLIENT_MAC
    expected[IPv6].src, expected[IPv6].dst = VIP6, CLIENT6
    expected[IPv6].payload.remove_payload()
    expected = expected / Raw(bytes(sent[IPv6])[:72])  # the client's own bytes
    assert result.data_out == with_fresh_icmp6_checksum(expected)
    assert xdp.counters()["l4_icmp"] == 1


def test_a_clients_icmpv6_error_about_a_reply_reaches_the_server(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP6, 53, SNAT6, V6_WEB.backends, proto="udp"))
    query = client_packet(UDP(sport=5353, dport=53) / b"query", CLIENT6, VIP6)
    server, port, nat_port = expected_nat(xdp, plan, query)
    xdp.run(bytes(query))
    answer = (Ether(src=SERVERS[server], dst=LB_MAC) / IPv6(src=server, dst=SNAT6) /
              UDP(sport=port, dport=nat_port) / b"answer")
    delivered = Ether(xdp.run(bytes(answer)).data_out)
    error = icmp6_error(CLIENT6, VIP6, CLIENT_MAC, bytes(delivered[IPv6])[:48],
                        ICMPv6DestUnreach(code=4))
    result = xdp.run(bytes(error))
    assert result.retval == XDP_TX
    out = Ether(result.data_out)
    assert (out[IPv6].src, out[IPv6].dst, out.dst) == (SNAT6, server, SERVERS[server])
    assert bytes(out[ICMPv6DestUnreach].payload) == bytes(answer[IPv6])[:48]
    assert result.data_out == with_fresh_icmp6_checksum(out)


def test_icmpv6_that_is_no_error_about_a_flow_passes_untouched(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, V6_WEB)
    quoted = bytes(IPv6(src=SNAT6, dst="fd00:111::21") / TCP(sport=40001, dport=8443))[:48]
    for error in (ICMPv6DestUnreach(code=1), ICMPv6EchoRequest()):
        packet = bytes(icmp6_error("fd00:111::21", SNAT6, SERVERS["fd00:111::21"], quoted,
                                   error))
        assert xdp.run(packet).data_out == packet
    assert xdp.counters()["l4_icmp"] == 0


@pytest.mark.parametrize("icmp", [
    dict(type=3, code=1),  # an error about a flow we do not have
    dict(type=8, code=0),  # an echo request: not an error
], ids=["unknown-flow", "echo"])
def test_other_icmp_passes_untouched(xdp_in_net, icmp):
    xdp = xdp_in_net
    serve(xdp, WEB)
    quoted = bytes(IP(src=SNAT, dst="10.111.0.21") / TCP(sport=40001, dport=8080))[:28]
    packet = bytes(icmp_error("10.111.0.21", SNAT, SERVERS["10.111.0.21"], quoted, **icmp))
    assert xdp.run(packet).data_out == packet
    assert xdp.counters()["l4_icmp"] == 0
