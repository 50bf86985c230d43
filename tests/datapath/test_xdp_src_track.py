"""Per-source tracking and reject rules in XDP (BPF_PROG_TEST_RUN), with time
supplied through dp_params: SYN counting, expiry, rate-limit onset, the gpc0
flag, the allow list, and what must not touch src_track."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from pyxlb.datapath import cidr_lists
from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS, XDP_TX
from pyxlb.datapath.params import DpParams

CLIENT = "10.111.0.10"
OTHER = "10.111.0.11"
CLIENT6 = "fd00:111::10"
ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")
# An even tick far from 0 and from the wrap, so a first SYN opens a period there.
T0 = 1_000_000
TRACK_CONNECTIONS = DpParams(count_syns=True, conn_rate_period=3_000, expire_ms=120_000)


def tcp(src: str = CLIENT, flags: str = "S") -> bytes:
    return bytes(ETH / IP(src=src, dst="10.111.0.2") / TCP(sport=40000, dport=80, flags=flags))


def syn6(src: str = CLIENT6) -> bytes:
    return bytes(ETH / IPv6(src=src, dst="fd00:111::2") / TCP(dport=80, flags="S"))


def at(xdp, dp: DpParams, now_ms: int) -> None:
    xdp.set_params(dp.replace(now_ms_override=now_ms))


def verdicts(xdp, packet: bytes, count: int) -> list[int]:
    return [xdp.run(packet).retval for _ in range(count)]


def test_a_syn_is_counted_for_its_source(xdp):
    at(xdp, TRACK_CONNECTIONS, T0)
    assert xdp.run(tcp()).retval == XDP_PASS
    entry = xdp.src_track.get(CLIENT)
    assert (entry.conn_cnt, entry.conn_rate, entry.conn_cur) == (1, 1, 0)
    assert entry.expire_in_ms == 120_000
    assert entry.http_req_rate is None  # not stored by this table
    assert xdp.counters()["conns_tracked"] == 1
    assert xdp.src_track.get(OTHER) is None


def test_ipv6_sources_have_their_own_entries(xdp):
    at(xdp, TRACK_CONNECTIONS, T0)
    xdp.run(syn6())
    xdp.run(syn6())
    assert xdp.src_track.get(CLIENT6).conn_cnt == 2
    assert [e.src for e in xdp.src_track.entries()] == [CLIENT6]


@pytest.mark.parametrize("flags", ["A", "SA", "R", "F", "PA"])
def test_packets_other_than_a_syn_do_not_touch_src_track(xdp, flags):
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=0, gpc0_gt=0), T0)
    assert verdicts(xdp, tcp(flags=flags), 3) == [XDP_PASS] * 3
    udp = bytes(ETH / IP(src=CLIENT, dst="10.111.0.2") / UDP(dport=53) / b"q")
    assert xdp.run(udp).retval == XDP_PASS
    assert len(xdp.maps["src_track"]) == 0
    assert xdp.counters()["conns_tracked"] == 0


def test_a_truncated_tcp_header_is_not_a_syn(xdp):
    at(xdp, TRACK_CONNECTIONS, T0)
    assert xdp.run(tcp()[: 14 + 20 + 10]).retval == XDP_PASS
    assert len(xdp.maps["src_track"]) == 0


def test_without_tracking_or_rules_a_syn_leaves_src_track_alone(xdp):
    at(xdp, DpParams(conn_rate_period=3_000), T0)
    xdp.run(tcp())
    assert len(xdp.maps["src_track"]) == 0
    assert xdp.source(CLIENT)["syns"] == 1  # src_stats still counts it


def test_rate_limit_starts_at_the_exact_syn(xdp):
    # tcp-request connection track-sc0 src
    # tcp-request connection reject if { sc0_conn_rate gt 10 }
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=10), T0)
    assert verdicts(xdp, tcp(), 12) == [XDP_PASS] * 10 + [XDP_DROP] * 2
    # Rejected connections were tracked first, as in HAProxy.
    assert xdp.src_track.get(CLIENT).conn_cnt == 12
    assert xdp.counters()["conn_rate_rejected"] == 2
    assert xdp.source(CLIENT)["syns"] == 10  # dropped SYNs are not traffic
    assert xdp.run(tcp(OTHER)).retval == XDP_PASS
    assert xdp.run(tcp(flags="A")).retval == XDP_PASS  # established flows go on


def test_rate_limit_lifts_as_the_window_slides(xdp):
    dp = TRACK_CONNECTIONS.replace(conn_rate_gt=3)
    at(xdp, dp, T0)
    assert verdicts(xdp, tcp(), 5) == [XDP_PASS] * 3 + [XDP_DROP] * 2
    # At T0+4500 half of the last period is in the window: with this SYN,
    # (5*1500 + 1*3000) / 3000 = 3, not above 3; the next SYN makes 4.
    at(xdp, dp, T0 + 4_500)
    assert xdp.run(tcp()).retval == XDP_PASS
    assert xdp.run(tcp()).retval == XDP_DROP


def test_expiry_is_refreshed_by_every_write(xdp):
    dp = TRACK_CONNECTIONS.replace(expire_ms=1_000)
    at(xdp, dp, T0)
    xdp.run(tcp())
    at(xdp, dp, T0 + 900)
    assert xdp.src_track.get(CLIENT).expire_in_ms == 100
    xdp.run(tcp())
    at(xdp, dp, T0 + 1_500)
    entry = xdp.src_track.get(CLIENT)
    assert (entry.conn_cnt, entry.expire_in_ms) == (2, 400)


def test_reads_do_not_refresh_the_expiry(xdp):
    dp = TRACK_CONNECTIONS.replace(expire_ms=1_000, gpc0_gt=0)
    at(xdp, dp, T0)
    xdp.run(tcp())
    at(xdp, dp.replace(count_syns=False), T0 + 500)
    xdp.run(tcp())  # the rule reads the entry; nothing writes it
    at(xdp, dp, T0 + 1_000)
    assert xdp.src_track.get(CLIENT) is None


def test_an_expired_entry_restarts_from_zero(xdp):
    dp = TRACK_CONNECTIONS.replace(expire_ms=1_000)
    at(xdp, dp, T0)
    verdicts(xdp, tcp(), 4)
    at(xdp, dp, T0 + 1_000)
    assert xdp.src_track.get(CLIENT) is None
    assert len(xdp.maps["src_track"]) == 1  # gone for readers, still in the map
    xdp.run(tcp())
    entry = xdp.src_track.get(CLIENT)
    assert (entry.conn_cnt, entry.conn_rate, entry.expire_in_ms) == (1, 1, 1_000)
    assert entry.counters["conn_rate"].prev_ctr == 0


def test_without_expire_entries_stay(xdp):
    dp = TRACK_CONNECTIONS.replace(expire_ms=0)
    at(xdp, dp, T0)
    xdp.run(tcp())
    at(xdp, dp, T0 + 10_000_000)
    entry = xdp.src_track.get(CLIENT)
    assert (entry.conn_cnt, entry.expire_in_ms, entry.conn_rate) == (1, None, 0)


def test_the_gpc0_flag_drops_the_source_it_marks(xdp):
    # tcp-request connection reject if { src_get_gpc0 gt 0 }, flagged by l7.
    dp = DpParams(expire_ms=2_000, gpc0_gt=0)
    at(xdp, dp, T0)
    assert xdp.run(tcp()).retval == XDP_PASS
    assert len(xdp.maps["src_track"]) == 0  # src_* reads never create
    assert xdp.src_track.inc_gpc0(CLIENT) == 1
    assert xdp.run(tcp()).retval == XDP_DROP
    assert xdp.run(tcp(OTHER)).retval == XDP_PASS
    assert xdp.run(tcp(flags="A")).retval == XDP_PASS
    assert xdp.counters()["gpc0_rejected"] == 1
    # The flag lasts as long as the entry.
    at(xdp, dp, T0 + 2_000)
    assert xdp.run(tcp()).retval == XDP_PASS


def test_a_gpc0_threshold_above_zero(xdp):
    at(xdp, DpParams(gpc0_gt=2), T0)
    for expected in (XDP_PASS, XDP_PASS, XDP_DROP):
        xdp.src_track.inc_gpc0(CLIENT)
        assert xdp.run(tcp()).retval == expected


def test_the_http_error_rate_written_by_l7_rejects_in_xdp(xdp):
    dp = DpParams(http_err_rate_period=5_000, expire_ms=120_000, http_err_rate_gt=2)
    at(xdp, dp, T0)
    for _ in range(3):
        assert xdp.run(tcp()).retval == XDP_PASS
        xdp.src_track.bump_http_error(CLIENT)
    assert xdp.run(tcp()).retval == XDP_DROP
    assert xdp.counters()["http_err_rate_rejected"] == 1
    # 3 errors decay below 3 a little after one period: 3*2400/5000 = 1.
    at(xdp, dp, T0 + 7_600)
    assert xdp.run(tcp()).retval == XDP_PASS


def test_the_allow_list_exempts_from_every_rule(xdp):
    cidr_lists.add(xdp.maps["allow_list"], cidr_lists.parse_network("10.111.0.0/28"))
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=1, gpc0_gt=0), T0)
    xdp.src_track.inc_gpc0(CLIENT)
    assert verdicts(xdp, tcp(), 3) == [XDP_PASS] * 3
    assert verdicts(xdp, tcp("10.111.0.20"), 3) == [XDP_PASS, XDP_DROP, XDP_DROP]
    counters = xdp.counters()
    assert counters["allowed"] == 3
    assert counters["gpc0_rejected"] + counters["conn_rate_rejected"] == 2
    # Allowed sources are still counted: l7 reads the same entry.
    assert xdp.src_track.get(CLIENT).conn_cnt == 3


def test_a_block_still_drops_before_any_counting(xdp):
    cidr_lists.add(xdp.maps["block_list"], cidr_lists.parse_network(CLIENT))
    at(xdp, TRACK_CONNECTIONS, T0)
    assert xdp.run(tcp()).retval == XDP_DROP
    assert len(xdp.maps["src_track"]) == 0


def test_open_connections_keep_an_entry_past_its_expiry(xdp):
    dp = DpParams(conn_rate_period=3_000, expire_ms=1_000)
    at(xdp, dp, T0)
    track = xdp.src_track
    track.track_connection(CLIENT)
    at(xdp, dp, T0 + 5_000)
    assert track.get(CLIENT).conn_cur == 1
    assert track.end_connection(CLIENT).expire_in_ms == 1_000
    at(xdp, dp, T0 + 6_000)
    assert track.get(CLIENT) is None


def test_a_full_table_evicts_the_least_recently_used(xdp_small_table):
    xdp = xdp_small_table
    at(xdp, TRACK_CONNECTIONS, T0)
    sources = [f"10.112.{i // 256}.{i % 256}" for i in range(4 * 256)]
    for src in sources:
        assert xdp.run(tcp(src)).retval == XDP_PASS
    assert len(xdp.maps["src_track"]) <= 256
    assert xdp.src_track.get(sources[-1]).conn_cnt == 1
    assert xdp.src_track.get(sources[0]) is None
    counters = xdp.counters()
    assert counters["conns_tracked"] == len(sources)
    assert counters["track_full"] == 0


# -- `reject` answers the SYN with a RST; `silent-drop` drops it ----------------------

def expected_rst(syn: Ether) -> bytes:
    """The RST a stack would send for `syn`, built afresh by scapy."""
    ip_type = IPv6 if IPv6 in syn else IP
    ip, tcp_in = syn[ip_type], syn[TCP]
    header = (IPv6(src=ip.dst, dst=ip.src, hlim=64) if ip_type is IPv6 else
              IP(src=ip.dst, dst=ip.src, ttl=64, id=0, flags="DF"))
    return bytes(Ether(src=syn.dst, dst=syn.src) / header /
                 TCP(sport=tcp_in.dport, dport=tcp_in.sport, flags="RA", seq=0,
                     ack=(tcp_in.seq + 1 + len(tcp_in.payload)) % 2**32, window=0))


@pytest.mark.parametrize("syn", [
    ETH / IP(src=CLIENT, dst="10.111.0.2") / TCP(sport=40001, dport=80, flags="S", seq=77,
                                               options=[("MSS", 1460), ("SAckOK", b"")]),
    ETH / IP(src=CLIENT, dst="10.111.0.2") / TCP(sport=40002, dport=80, flags="S",
                                               seq=0xFFFFFFFF) / b"fast open data",
    ETH / IPv6(src=CLIENT6, dst="fd00:111::2") / TCP(sport=40003, dport=443, flags="S", seq=5),
], ids=["ipv4-with-options", "ipv4-payload-seq-wraps", "ipv6"])
def test_a_rejected_syn_is_answered_with_a_rst(xdp, syn):
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=0, reject_with_rst=True), T0)
    result = xdp.run(bytes(syn))
    assert result.retval == XDP_TX
    assert result.data_out == expected_rst(syn)
    assert xdp.counters()["rst_sent"] == 1


def test_silent_drop_answers_nothing(xdp):
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=0, reject_with_rst=False), T0)
    assert xdp.run(tcp()).retval == XDP_DROP
    assert xdp.counters()["rst_sent"] == 0


def test_a_syn_with_ip_options_is_dropped_not_answered(xdp):
    at(xdp, TRACK_CONNECTIONS.replace(conn_rate_gt=0, reject_with_rst=True), T0)
    syn = ETH / IP(src=CLIENT, dst="10.111.0.2", options=[IPOption_RR()]) / TCP(flags="S")
    assert xdp.run(bytes(syn)).retval == XDP_DROP
