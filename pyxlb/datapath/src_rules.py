"""The config's `tcp-request connection accept|reject|silent-drop if { src
NETS }` rules as XDP enforces them: the `src_rules` LPM trie.

XDP looks a SYN's source up there once, for the SYNs of a tracked frontend
(pyxlb.datapath.ports gives each its number), and reads in the entry's masks
what that frontend's first matching rule does (bpf/structs.h, struct
src_rule). A trie finds only the longest match, so the rules' order is
folded in here: networks nest or are disjoint, so a source whose longest
match is K matches exactly the rules' networks that hold K, and K's entry
says, per frontend, what the first of those rules does. Folding is pure
(`fold`); writing is the thin part.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from pyxlb.datapath import libbpf
from pyxlb.datapath.cidr_lists import network_key
from pyxlb.datapath.maps import BpfMap
from pyxlb.datapath.ports import TRACKED_FRONTENDS_MAX

MAP_NAME = "src_rules"
ACTIONS = ("accept", "reject", "silent_drop")

Network = IPv4Network | IPv6Network
_V4_MAPPED = int(ipaddress.IPv6Address("::ffff:0.0.0.0"))


@dataclass(frozen=True)
class SrcRule:
    """One of a frontend's src rules: its networks, what it does (`accept`,
    `reject`: a RST, `silent_drop`), and whether it follows the frontend's
    `track-sc0` (the SYN is counted before it decides)."""

    frontend: int
    networks: tuple[Network, ...]
    action: str
    after_track: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"src rule action {self.action!r} is not one of "
                             f"{', '.join(ACTIONS)}")
        if not 0 <= self.frontend < TRACKED_FRONTENDS_MAX:
            raise ValueError(f"src rule frontend {self.frontend}: out of range "
                             f"(0-{TRACKED_FRONTENDS_MAX - 1})")


@dataclass(frozen=True)
class Entry:
    """A src_rules value: per action, the mask of frontends (bit = number)."""

    accept: int = 0
    reject: int = 0
    silent_drop: int = 0
    after_track: int = 0


Prefix = tuple[int, int]  # (prefix length, address as an int), IPv4 mapped, as the trie keys


def _prefix(net: Network) -> Prefix:
    if net.version == 4:
        return 96 + net.prefixlen, _V4_MAPPED | int(net.network_address)
    return net.prefixlen, int(net.network_address)


def _holders(prefix: Prefix) -> Iterable[Prefix]:
    """`prefix` and every network that holds it."""
    length, addr = prefix
    for p in range(length + 1):
        yield p, addr & ~((1 << (128 - p)) - 1) & ((1 << 128) - 1)


def fold(rules: Iterable[SrcRule]) -> dict[Network, Entry]:
    """The src_rules entries for `rules`, each frontend's given in its order."""
    # Per frontend: each network its rules name -> (order, rule) of the first.
    first: dict[int, dict[Prefix, tuple[int, SrcRule]]] = {}
    named: dict[Prefix, Network] = {}
    for order, rule in enumerate(rules):
        by_prefix = first.setdefault(rule.frontend, {})
        for net in rule.networks:
            prefix = _prefix(net)
            by_prefix.setdefault(prefix, (order, rule))
            named.setdefault(prefix, net)
    entries = {}
    for prefix, net in named.items():
        masks = dict.fromkeys((*ACTIONS, "after_track"), 0)
        for frontend, by_prefix in first.items():
            matching = [by_prefix[h] for h in _holders(prefix) if h in by_prefix]
            if not matching:
                continue
            _, rule = min(matching, key=lambda found: found[0])
            masks[rule.action] |= 1 << frontend
            if rule.after_track:
                masks["after_track"] |= 1 << frontend
        entries[net] = Entry(**masks)
    return entries


def write(rules_map: BpfMap, entries: Mapping[Network, Entry]) -> None:
    """Makes the map hold exactly `entries` (on start: a pinned map keeps an
    earlier run's)."""
    key_type, value_type = rules_map.layout.key_type, rules_map.layout.value_type
    wanted = set()
    for net, entry in entries.items():
        value = value_type()
        for name in (*ACTIONS, "after_track"):
            setattr(value, name, getattr(entry, name))
        key = network_key(net, key_type)
        wanted.add(bytes(key))
        libbpf.map_update(rules_map.fd, key, value)
    for key in list(rules_map.keys()):
        if bytes(key) not in wanted:
            libbpf.map_delete(rules_map.fd, key)
