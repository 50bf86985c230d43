"""The config's `tcp-request connection accept|reject|silent-drop if { src
NETS }`, per frontend, as XDP enforces them: a table of SYNs and other
packets, each run through BPF_PROG_TEST_RUN."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from test_xdp_src_track import expected_rst

from pyxlb.datapath import cidr_lists, ports, src_rules
from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS, XDP_TX
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.ports import Bind
from pyxlb.datapath.src_rules import SrcRule

ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")
VIP, VIP6, API = "10.111.0.2", "fd00:111::2", "10.111.0.3"
T0 = 1_000_000
WEB, ADMIN = 5, 2  # the tracked frontends' numbers
# frontend web: bind *:80; frontend admin: bind 10.111.0.3:8080
BINDS = [Bind(None, 80, frontend=WEB), Bind(API, 8080, frontend=ADMIN)]
RULES = [
    SrcRule(WEB, (ip_network("10.111.0.16/28"),), "accept"),
    SrcRule(WEB, (ip_network("10.111.0.0/24"), ip_network("fd00:111::/64")), "reject"),
    SrcRule(WEB, (ip_network("10.113.0.0/16"),), "silent_drop"),
    # The broader network first: its accept is final for 10.111.0.20 too.
    SrcRule(ADMIN, (ip_network("10.111.0.0/24"),), "accept"),
    SrcRule(ADMIN, (ip_network("10.111.0.20/32"), ip_network("10.113.0.0/16")), "reject"),
]
RULED = DpParams(tracked_ports_only=True, src_rules=True, now_ms_override=T0)


def packet(src: str, dst: str = VIP, dport: int = 80, flags: str = "S") -> Ether:
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return ETH / ip / TCP(sport=40000, dport=dport, flags=flags, seq=1000)


def rule(xdp, rules: list[SrcRule] = RULES, dp: DpParams = RULED) -> None:
    ports.write_tracked(xdp.maps["ports"], xdp.maps["listeners"], BINDS)
    src_rules.write(xdp.maps["src_rules"], src_rules.fold(rules))
    xdp.set_params(dp)


@pytest.mark.parametrize(("syn", "verdict"), [
    (packet("10.111.0.10"), XDP_TX),                         # web rejects: a RST
    (packet("fd00:111::10", VIP6), XDP_TX),
    (packet("10.111.0.17"), XDP_PASS),                       # web accepts it first
    (packet("10.113.0.5"), XDP_DROP),                        # web silent-drops
    (packet("10.114.0.1"), XDP_PASS),                        # no rule of web's
    (packet("10.111.0.10", API, 8080), XDP_PASS),            # admin accepts the /24 ...
    (packet("10.111.0.20", API, 8080), XDP_PASS),            # ... before its /32 reject
    (packet("10.113.0.5", API, 8080), XDP_TX),               # admin rejects with a RST
    (packet("10.113.0.5", VIP, 8080), XDP_PASS),             # admin binds 10.111.0.3 only
    (packet("10.111.0.10", VIP, 22), XDP_PASS),              # no tracked frontend's port
    (packet("10.113.0.5", VIP, 22), XDP_PASS),
    (packet("10.111.0.10", flags="A"), XDP_PASS),            # not a SYN
    (packet("10.113.0.5", flags="SA"), XDP_PASS),
    (packet("10.113.0.5", flags="R"), XDP_PASS),
], ids=lambda v: v.summary() if isinstance(v, Ether) else str(v))
def test_src_rules_apply_to_their_frontends_syns_only(xdp, syn, verdict):
    rule(xdp)
    result = xdp.run(bytes(syn))
    assert result.retval == verdict
    counters = xdp.counters()
    if verdict == XDP_TX:
        assert result.data_out == expected_rst(syn)
        assert counters["rst_sent"] == counters["src_rejected"] == 1
    elif verdict == XDP_DROP:
        assert counters["src_rejected"] == 1 and counters["rst_sent"] == 0
    else:
        assert counters["src_rejected"] == 0


def test_accepts_are_counted_as_such(xdp):
    rule(xdp)
    xdp.run(bytes(packet("10.111.0.17")))
    xdp.run(bytes(packet("10.111.0.20", API, 8080)))
    assert xdp.counters()["src_accepted"] == 2


def test_the_allow_list_exempts_from_src_rejects(xdp):
    rule(xdp)
    cidr_lists.add(xdp.maps["allow_list"], ip_network("10.113.0.5/32"))
    assert xdp.run(bytes(packet("10.113.0.5"))).retval == XDP_PASS
    assert xdp.run(bytes(packet("10.113.0.5", API, 8080))).retval == XDP_PASS
    counters = xdp.counters()
    assert counters["allowed"] == 2 and counters["src_rejected"] == 0


def test_without_the_src_rules_flag_nothing_is_looked_up(xdp):
    rule(xdp, dp=RULED.replace(src_rules=False))
    assert xdp.run(bytes(packet("10.113.0.5"))).retval == XDP_PASS


def test_the_block_list_still_drops_every_packet(xdp):
    rule(xdp)
    cidr_lists.add(xdp.maps["block_list"], ip_network("10.114.0.1/32"))
    assert xdp.run(bytes(packet("10.114.0.1", VIP, 22, flags="A"))).retval == XDP_DROP


# -- the order against track-sc0: a rule after it decides on a counted SYN ---------

TRACKING = RULED.replace(count_syns=True, conn_rate_period=10_000, expire_ms=30_000)


def conn_cnt(xdp, src: str) -> int:
    entry = xdp.src_track.get(src)
    return entry.conn_cnt if entry else 0


def test_rules_before_track_sc0_decide_before_counting(xdp):
    rule(xdp, dp=TRACKING)
    assert xdp.run(bytes(packet("10.111.0.17"))).retval == XDP_PASS
    assert xdp.run(bytes(packet("10.111.0.10"))).retval == XDP_TX
    assert xdp.run(bytes(packet("10.114.0.1"))).retval == XDP_PASS
    assert conn_cnt(xdp, "10.111.0.17") == conn_cnt(xdp, "10.111.0.10") == 0
    assert conn_cnt(xdp, "10.114.0.1") == 1


def test_rules_after_track_sc0_count_first(xdp):
    after = [SrcRule(WEB, (ip_network("10.111.0.16/28"),), "accept", after_track=True),
             SrcRule(WEB, (ip_network("10.111.0.0/24"),), "silent_drop", after_track=True)]
    rule(xdp, after, TRACKING.replace(conn_rate_gt=0))
    assert xdp.run(bytes(packet("10.111.0.17"))).retval == XDP_PASS  # accepted: no threshold
    assert xdp.run(bytes(packet("10.111.0.10"))).retval == XDP_DROP
    assert conn_cnt(xdp, "10.111.0.17") == conn_cnt(xdp, "10.111.0.10") == 1
    counters = xdp.counters()
    assert (counters["src_accepted"], counters["src_rejected"]) == (1, 1)
    assert counters["conn_rate_rejected"] == 0


def test_the_map_is_made_exactly_the_rules(xdp):
    rule(xdp)
    src_rules.write(xdp.maps["src_rules"], src_rules.fold(RULES[:1]))
    assert len(xdp.maps["src_rules"]) == 1
    assert xdp.run(bytes(packet("10.111.0.10"))).retval == XDP_PASS


def test_an_address_bind_beside_a_wildcard_one_runs_its_own_frontends_rules(xdp):
    rule(xdp)
    # admin also binds 10.111.0.3:80: its connections are admin's, not web's.
    ports.write_tracked(xdp.maps["ports"], xdp.maps["listeners"],
                        [*BINDS, Bind(API, 80, frontend=ADMIN)])
    assert xdp.run(bytes(packet("10.111.0.10", API, 80))).retval == XDP_PASS
    assert xdp.run(bytes(packet("10.113.0.5", API, 80))).retval == XDP_TX
    assert xdp.run(bytes(packet("10.111.0.10", VIP, 80))).retval == XDP_TX
    assert xdp.run(bytes(packet("10.113.0.5", VIP, 80))).retval == XDP_DROP


def test_only_the_tracking_frontends_syns_are_counted_and_limited(xdp):
    rule(xdp, [], TRACKING.replace(conn_rate_gt=0, track_frontend=WEB, src_rules=False))
    assert xdp.run(bytes(packet("10.114.0.1"))).retval == XDP_DROP  # silent: conn_rate 1 > 0
    assert xdp.run(bytes(packet("10.114.0.2", API, 8080))).retval == XDP_PASS
    assert (conn_cnt(xdp, "10.114.0.1"), conn_cnt(xdp, "10.114.0.2")) == (1, 0)
