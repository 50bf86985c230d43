"""The allow and block lists: CIDRs, each for good or until a deadline.

XDP drops packets from block-listed sources unless the allow list also holds
them. Both are LPM tries over 128-bit keys; IPv4 networks are stored
IPv4-mapped (a /24 becomes a /120), like every address in pyxlb's maps.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from pyxlb.datapath import libbpf
from pyxlb.datapath.maps import BpfMap

MAP_NAMES = {"block": "block_list", "allow": "allow_list"}
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """ADDR or ADDR/LEN; host bits must be zero, as in HAProxy's ACLs."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an address or network: {exc}") from None


def _mapped(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, bytes]:
    if net.version == 4:
        return 96 + net.prefixlen, bytes(10) + b"\xff\xff" + net.network_address.packed
    return net.prefixlen, net.network_address.packed


def network_key(net: ipaddress.IPv4Network | ipaddress.IPv6Network, key_type: Any) -> Any:
    prefixlen, packed = _mapped(net)
    key = key_type()
    key.prefixlen = prefixlen
    key.addr[:] = list(packed)
    return key


def key_network(key: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    net = ipaddress.IPv6Network((bytes(key.addr), key.prefixlen))
    if key.prefixlen >= 96 and net.subnet_of(_V4_MAPPED):
        return ipaddress.IPv4Network((net.network_address.ipv4_mapped, key.prefixlen - 96))
    return net


def add(cidr_map: BpfMap, net, duration_s: float | None = None) -> None:
    """Puts `net` on the list, for good or for `duration_s` seconds from now."""
    rule = cidr_map.layout.value_type()
    rule.expires_ns = 0 if duration_s is None else time.monotonic_ns() + int(duration_s * 1e9)
    libbpf.map_update(cidr_map.fd, network_key(net, cidr_map.layout.key_type), rule)


def delete(cidr_map: BpfMap, net) -> bool:
    return libbpf.map_delete(cidr_map.fd, network_key(net, cidr_map.layout.key_type))


def entries(cidr_map: BpfMap) -> list[dict[str, Any]]:
    now = time.monotonic_ns()
    rows = []
    for key, rule in cidr_map.items():
        expires = rule.expires_ns
        rows.append({
            "network": str(key_network(key)),
            "expires_in_s": None if not expires else round((expires - now) / 1e9, 3),
        })
    return sorted(rows, key=lambda r: r["network"])
