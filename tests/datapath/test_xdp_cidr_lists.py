"""Block-listed sources are dropped before they are counted, unless allowed."""

from __future__ import annotations

import time

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from pyxlb.datapath import cidr_lists
from pyxlb.datapath.libbpf import XDP_DROP, XDP_PASS

ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:02")


def syn4(src: str) -> bytes:
    return bytes(ETH / IP(src=src, dst="10.111.0.2") / TCP(flags="S"))


def syn6(src: str) -> bytes:
    return bytes(ETH / IPv6(src=src, dst="fd00:111::2") / TCP(flags="S"))


def block(xdp, cidr: str, duration_s: float | None = None) -> None:
    cidr_lists.add(xdp.maps["block_list"], cidr_lists.parse_network(cidr), duration_s)


def allow(xdp, cidr: str, duration_s: float | None = None) -> None:
    cidr_lists.add(xdp.maps["allow_list"], cidr_lists.parse_network(cidr), duration_s)


def test_a_blocked_address_is_dropped_and_not_tracked(xdp):
    block(xdp, "10.111.0.10")
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_DROP
    assert xdp.source("10.111.0.10") is None
    assert xdp.counters()["blocked"] == 1


def test_a_blocked_network_spares_its_neighbours(xdp):
    block(xdp, "10.111.0.8/30")
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_DROP
    assert xdp.run(syn4("10.111.0.11")).retval == XDP_DROP
    assert xdp.run(syn4("10.111.0.12")).retval == XDP_PASS


def test_an_ipv6_network_blocks_ipv6_only(xdp):
    block(xdp, "fd00:111::/120")
    assert xdp.run(syn6("fd00:111::10")).retval == XDP_DROP
    assert xdp.run(syn6("fd00:112::10")).retval == XDP_PASS
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_PASS


def test_a_timed_block_ends_at_its_deadline(xdp):
    block(xdp, "10.111.0.10", duration_s=0.3)
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_DROP
    time.sleep(0.35)
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_PASS


def test_deleting_a_block_lets_the_source_in(xdp):
    block(xdp, "10.111.0.0/24")
    assert cidr_lists.delete(xdp.maps["block_list"], cidr_lists.parse_network("10.111.0.0/24"))
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_PASS


def test_entries_read_back_as_networks(xdp):
    block(xdp, "10.111.0.0/24")
    block(xdp, "fd00:111::10", duration_s=60)
    rows = cidr_lists.entries(xdp.maps["block_list"])
    assert [r["network"] for r in rows] == ["10.111.0.0/24", "fd00:111::10/128"]
    assert rows[0]["expires_in_s"] is None
    assert 59 < rows[1]["expires_in_s"] <= 60


@pytest.mark.parametrize("text", ["10.111.0.1/24", "nonsense", "10.0.0.0/33", ""])
def test_bad_networks_are_refused_with_the_text(text):
    with pytest.raises(ValueError, match="is not an address or network"):
        cidr_lists.parse_network(text)


def test_the_allow_list_overrides_a_wider_or_narrower_block(xdp):
    block(xdp, "10.111.0.0/24")
    allow(xdp, "10.111.0.10")
    block(xdp, "fd00:111::10")
    allow(xdp, "fd00::/16")
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_PASS
    assert xdp.run(syn4("10.111.0.11")).retval == XDP_DROP
    assert xdp.run(syn6("fd00:111::10")).retval == XDP_PASS
    assert xdp.counters()["allowed"] == 2
    assert xdp.source("10.111.0.10")["syns"] == 1


def test_an_expired_allow_no_longer_overrides(xdp):
    block(xdp, "10.111.0.10")
    allow(xdp, "10.111.0.10", duration_s=0.2)
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_PASS
    time.sleep(0.25)
    assert xdp.run(syn4("10.111.0.10")).retval == XDP_DROP
