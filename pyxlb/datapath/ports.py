"""Which destination ports XDP looks at, and why: the `ports` array and the
`listeners` hash.

`ports` holds, for every port number and for TCP and UDP, a set of PYXLB_PORT_*
flags (bpf/structs.h). Each concern owns its own bits and rewrites only those
(pyxlb.datapath.services owns the layer-4 ones): this module owns the
tracked-frontend bits, which say which SYNs XDP counts in
src_track and checks against the reject rules (with dp_params'
tracked_ports_only). A frontend that binds every address marks the port
alone; one bound to given addresses also puts each (address, port, protocol)
in `listeners`, which XDP consults for that port.

Building the flags is pure (`tracked_flags`); writing them is the thin part.
"""

from __future__ import annotations

import ctypes
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyxlb.datapath import libbpf
from pyxlb.datapath.maps import BpfMap

PORTS_MAP = "ports"
LISTENERS_MAP = "listeners"
PORT_COUNT = 65536
PROTOCOLS = {"tcp": 6, "udp": 17}

# bpf/structs.h: PYXLB_PORT_*
PORT_TRACKED = 0x01
PORT_TRACKED_ADDR = 0x02
PORT_SERVICE = 0x04  # owned by pyxlb.datapath.services
PORT_NAT = 0x08
TRACKED_BITS = PORT_TRACKED | PORT_TRACKED_ADDR

_WILDCARDS = {None, "", "*", "0.0.0.0", "::"}
_NON_ZERO = re.compile(rb"[^\x00]")

PortFlags = dict[tuple[str, int], int]  # (protocol, port) -> PYXLB_PORT_* flags


@dataclass(frozen=True)
class Bind:
    """A frontend's listening address. `addr` None (or *, 0.0.0.0, ::) is
    every address; `frontend` is the control plane's number for it, kept in
    `listeners` for inspection."""

    addr: str | None
    port: int
    proto: str = "tcp"
    frontend: int = 0

    def __post_init__(self) -> None:
        if self.proto not in PROTOCOLS:
            raise ValueError(f"bind {self.addr}:{self.port}: protocol {self.proto!r} is not "
                             f"one of {', '.join(PROTOCOLS)}")
        if not 1 <= self.port < PORT_COUNT:
            raise ValueError(f"bind {self.addr}:{self.port}: port out of range (1-65535)")
        if not self.wildcard:
            ipaddress.ip_address(self.addr)  # raises ValueError naming the address

    @property
    def wildcard(self) -> bool:
        return self.addr in _WILDCARDS


def tracked_flags(binds: Iterable[Bind]) -> PortFlags:
    """The tracked-frontend bits of `ports` for these binds."""
    flags: PortFlags = {}
    for bind in binds:
        bit = PORT_TRACKED if bind.wildcard else PORT_TRACKED_ADDR
        key = (bind.proto, bind.port)
        flags[key] = flags.get(key, 0) | bit
    return flags


def endpoint_key(addr: str | None, port: int, proto: str, key_type: Any) -> Any:
    """A struct endpoint_key: the address IPv4-mapped (:: for a wildcard)."""
    key = key_type()
    if addr not in _WILDCARDS:
        ip = ipaddress.ip_address(addr)
        packed = ip.packed if ip.version == 6 else bytes(10) + b"\xff\xff" + ip.packed
        key.addr[:] = list(packed)
    key.port = port
    key.proto = PROTOCOLS[proto]
    return key


def read_flags(ports_map: BpfMap) -> PortFlags:
    """Every non-zero flag set in `ports`, in one batch read."""
    keys = (ctypes.c_uint32 * PORT_COUNT)()
    values = (ports_map.layout.value_type * PORT_COUNT)()
    count = libbpf.map_lookup_batch(ports_map.fd, keys, values)
    size = ctypes.sizeof(ports_map.layout.value_type)
    flags: PortFlags = {}
    # A few ports of 65536 are set: find them at C speed.
    for match in _NON_ZERO.finditer(memoryview(values).cast("B")[: count * size]):
        i = match.start() // size
        for proto in PROTOCOLS:
            if bits := getattr(values[i], proto):
                flags[(proto, keys[i])] = bits
    return flags


def update_flags(ports_map: BpfMap, owned_bits: int, flags: Mapping[tuple[str, int], int]) -> None:
    """Makes `owned_bits` of every port equal to `flags`' (absent: 0), leaving
    the other bits as they are; writes only the ports that change."""
    current = read_flags(ports_map)
    changed: dict[int, dict[str, int]] = {}
    for key in set(current) | set(flags):
        old = current.get(key, 0)
        new = (old & ~owned_bits) | (flags.get(key, 0) & owned_bits)
        if new != old:
            proto, port = key
            changed.setdefault(port, {})[proto] = new
    if not changed:
        return
    value_type = ports_map.layout.value_type
    keys = (ctypes.c_uint32 * len(changed))()
    values = (value_type * len(changed))()
    for i, (port, protos) in enumerate(sorted(changed.items())):
        keys[i] = port
        for proto in PROTOCOLS:
            setattr(values[i], proto, protos.get(proto, current.get((proto, port), 0)))
    libbpf.map_update_batch(ports_map.fd, keys, values)


def write_tracked(ports_map: BpfMap, listeners_map: BpfMap, binds: Iterable[Bind]) -> None:
    """Makes the tracked frontends exactly `binds` (on start and on reload)."""
    binds = list(binds)
    key_type = listeners_map.layout.key_type
    wanted = {}
    for bind in binds:
        if not bind.wildcard:
            wanted[bytes(endpoint_key(bind.addr, bind.port, bind.proto, key_type))] = bind
    # Addresses first, so that a port never reads as tracked on some
    # addresses while its listeners are still missing.
    for raw, bind in wanted.items():
        value = listeners_map.layout.value_type()
        value.frontend = bind.frontend
        libbpf.map_update(listeners_map.fd, key_type.from_buffer_copy(raw), value)
    update_flags(ports_map, TRACKED_BITS, tracked_flags(binds))
    for key in list(listeners_map.keys()):
        if bytes(key) not in wanted:
            libbpf.map_delete(listeners_map.fd, key)
