"""TCP timestamps of full-NAT flows (bpf/tcp_ts.h), one BPF_PROG_TEST_RUN per
row: the backend sees TSvals on the balancer's clock, the client gets its own
back in the TSecr, and every checksum is the one scapy computes afresh.

Why it matters: a backend holding a NAT port in TIME_WAIT takes a new SYN on
it only with a newer TSval, and clients start each connection's timestamps at
a random offset."""

from __future__ import annotations

import time

import pytest
from l4_packets import (
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
    reply_from,
    rewritten,
    serve,
)
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import checksum

from pyxlb.datapath.libbpf import XDP_TX
from pyxlb.datapath.services import Backend, Service

# Linux's SYN options, and its other segments' (NOP NOP timestamps).
LINUX_SYN = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (0, 0)), ("NOP", None),
             ("WScale", 10)]
LINUX_SEGMENT = [("NOP", None), ("NOP", None), ("Timestamp", (0, 0))]


def with_ts(options: list, tsval: int, tsecr: int) -> list:
    return [(kind, (tsval, tsecr)) if kind == "Timestamp" else (kind, value)
            for kind, value in options]


def ts_of(frame: bytes) -> tuple[int, int]:
    [value] = [v for kind, v in Ether(frame)[TCP].options if kind == "Timestamp"]
    return value


def syn_with_ts(tsval: int, sport: int = 40123, options: list = LINUX_SYN, **kw) -> Ether:
    return client_packet(TCP(sport=sport, dport=80, flags="S", seq=1000,
                             options=with_ts(options, tsval, 0)), **kw)


def without_checksum(frame: bytes) -> bytes:
    """An IPv4 frame's TCP segment past its ports, its checksum zeroed."""
    segment = bytearray(frame[14 + 20 + 4:])
    segment[12:14] = b"\0\0"
    return bytes(segment)


def raw_tcp_checksum_holds(frame: bytes) -> bool:
    ip, segment = frame[14:34], frame[34:]
    pseudo = ip[12:20] + b"\0\x06" + len(segment).to_bytes(2, "big")
    return checksum(pseudo + segment) == 0


def shift_of(xdp) -> tuple[int, int]:
    """The forward and reply entries' shifts of the only flow."""
    _, forward = only(xdp.maps["conntrack"])
    _, reply = only(xdp.maps["nat_reverse"])
    return forward["ts_shift"], reply["ts_shift"]


def test_a_syns_tsval_is_shifted_and_every_other_byte_is_nat(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    packet = syn_with_ts(123456789)
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    shift, back = shift_of(xdp)
    assert shift and (shift + back) % 2**32 == 0
    sent = (123456789 + shift) % 2**32
    expected = syn_with_ts(sent)
    assert result.data_out == rewritten(expected, SNAT, nat_port, server, port,
                                        LB_MAC, SERVERS[server])
    assert checksums_hold(result.data_out)


def test_the_flows_later_segments_keep_the_shift_and_the_echo_is_shifted_back(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    xdp.run(bytes(syn_with_ts(1000)))
    shift, _ = shift_of(xdp)
    server, port, nat_port = expected_nat(xdp, plan, syn_with_ts(1000))

    answer = reply_from(server, port, nat_port, "SA")
    answer[TCP].options = with_ts(LINUX_SYN, 777, (1000 + shift) % 2**32)
    result = xdp.run(bytes(answer))
    assert result.retval == XDP_TX
    assert ts_of(result.data_out) == (777, 1000)  # the server's own TSval untouched
    expected = Ether(bytes(answer))
    expected[TCP].options = with_ts(LINUX_SYN, 777, 1000)
    assert result.data_out == rewritten(expected, VIP, 80, "10.111.0.10", 40123,
                                        LB_MAC, CLIENT_MAC)

    data = client_packet(TCP(sport=40123, dport=80, flags="PA", seq=1001, ack=5001,
                             options=with_ts(LINUX_SEGMENT, 1005, 777)) / b"GET / HTTP/1.1\r\n")
    result = xdp.run(bytes(data))
    assert ts_of(result.data_out) == ((1005 + shift) % 2**32, 777)
    assert checksums_hold(result.data_out)
    assert Ether(result.data_out)[TCP].payload == data[TCP].payload


@pytest.mark.parametrize("options", [
    pytest.param([("NOP", None), ("Timestamp", (0, 0))], id="fields-at-odd-offsets"),
    pytest.param([("SAckOK", b""), ("Timestamp", (0, 0)), ("NOP", None), ("NOP", None)],
                 id="after-another-option"),
    pytest.param([("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAck", (1, 2)),
                  ("Timestamp", (0, 0))], id="last-of-several"),
])
def test_any_layout_of_options_is_walked_with_right_checksums(xdp_in_net, options):
    xdp = xdp_in_net
    serve(xdp, WEB)
    result = xdp.run(bytes(syn_with_ts(0xfffffff0, options=options)))
    assert result.retval == XDP_TX
    shift, _ = shift_of(xdp)
    assert ts_of(result.data_out) == ((0xfffffff0 + shift) % 2**32, 0)
    assert checksums_hold(result.data_out)


def test_a_flow_on_a_reused_nat_port_reads_newer_whatever_its_clients_offset(xdp_in_net):
    """The backend's TIME_WAIT test: the second flow's first TSval is newer
    (serial arithmetic) than the first flow's last, though the second client's
    own timestamps start far below."""
    xdp = xdp_in_net
    serve(xdp, ONE_SERVER, nat_ports=ONE_PORT)
    first = Ether(xdp.run(bytes(syn_with_ts(3_000_000_000, sport=1001))).data_out)
    from_server(xdp, first, "SA")
    fin = client_packet(TCP(sport=1001, dport=80, flags="FA",
                            options=with_ts(LINUX_SEGMENT, 3_000_000_001, 0)))
    last_seen = ts_of(xdp.run(bytes(fin)).data_out)[0]
    from_server(xdp, first, "FA")
    time.sleep(0.001)  # the clock ticks every 65.5 us
    second = Ether(xdp.run(bytes(syn_with_ts(5, sport=1002))).data_out)
    assert second[TCP].sport == first[TCP].sport  # the NAT port came round again
    newer = (ts_of(bytes(second))[0] - last_seen) % 2**32
    assert 0 < newer < 2**31


def test_ipv6_flows_are_shifted_too(xdp_in_net):
    xdp = xdp_in_net
    plan = serve(xdp, Service(VIP6, 443, SNAT6, (Backend("fd00:111::21", 8443),)))
    packet = client_packet(TCP(sport=41000, dport=443, flags="S",
                               options=with_ts(LINUX_SYN, 42, 0)), CLIENT6, VIP6)
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    shift, _ = shift_of(xdp)
    assert ts_of(result.data_out) == ((42 + shift) % 2**32, 0)
    answer = reply_from(server, port, nat_port)
    answer[TCP].options = with_ts(LINUX_SYN, 9, (42 + shift) % 2**32)
    back = xdp.run(bytes(answer)).data_out
    assert ts_of(back) == (9, 42)
    fresh = Ether(back)
    del fresh[TCP].chksum
    assert bytes(fresh) == back
    assert Ether(back)[IPv6].dst == CLIENT6


@pytest.mark.parametrize("options", [
    pytest.param([("MSS", 1460), ("WScale", 7)], id="no-timestamps"),
    pytest.param(b"\x08\x00" + b"\x00" * 10, id="zero-length-option"),
    pytest.param(b"\x02\x04\x05\xb4\x08\x0a\x00\x00", id="cut-short-by-the-header"),
])
def test_without_readable_timestamps_nothing_is_shifted(xdp_in_net, options):
    xdp = xdp_in_net
    plan = serve(xdp, WEB)
    if isinstance(options, bytes):  # malformed: scapy would not build it
        tcp = TCP(sport=40123, dport=80, flags="S", seq=1000, dataofs=5 + len(options) // 4)
        packet = client_packet(tcp / options)
    else:
        packet = client_packet(TCP(sport=40123, dport=80, flags="S", seq=1000, options=options))
    server, port, nat_port = expected_nat(xdp, plan, packet)
    result = xdp.run(bytes(packet))
    assert result.retval == XDP_TX
    assert shift_of(xdp) == (0, 0)
    out = Ether(result.data_out)
    assert (out[IP].src, out[IP].dst, out[TCP].sport, out[TCP].dport) == (
        SNAT, server, nat_port, port)
    # Past the ports, the segment is as it came but for its checksum, which
    # is checked on the raw bytes (scapy rewrites malformed options).
    assert without_checksum(result.data_out) == without_checksum(bytes(packet))
    assert raw_tcp_checksum_holds(result.data_out)
    # A later segment that has timestamps after all is left as it came.
    data = client_packet(TCP(sport=40123, dport=80, flags="A", seq=1001,
                             options=with_ts(LINUX_SEGMENT, 99, 0)))
    assert ts_of(xdp.run(bytes(data)).data_out) == (99, 0)


def test_dsr_flows_keep_the_clients_timestamps(xdp_in_net):
    xdp = xdp_in_net
    serve(xdp, Service(VIP, 80, SNAT, (Backend("10.111.0.21", 80),), forward="dsr"))
    packet = syn_with_ts(4242)
    result = xdp.run(bytes(packet))
    assert ts_of(result.data_out) == (4242, 0)
    assert Ether(result.data_out)[IP].dst == VIP
