"""Which destination ports XDP looks at, and why: the `ports` array and the
`listeners` hash.

`ports` holds, for every port number and for TCP and UDP, a set of PYXLB_PORT_*
flags (bpf/structs.h). Each concern owns its own bits and rewrites only those
(pyxlb.datapath.services owns the layer-4 ones): this module owns the
tracked-frontend bits, which say which SYNs XDP counts in
src_track and checks against the reject rules (with dp_params'
tracked_ports_only). A frontend that binds every address marks the port
and writes its number beside the flags (`tcp_frontend`); one bound to given
addresses also puts each (address, port, protocol) in `listeners`, with its
number, which XDP consults for that port. The number says which of the
config's src rules apply (pyxlb.datapath.src_rules).

Building the flags is pure (`tracked_flags`, `tracked_frontends`); writing
them is the thin part.
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
TRACKED_FRONTENDS_MAX = 64  # bpf/structs.h: PYXLB_TRACKED_FRONTENDS_MAX

_WILDCARDS = {None, "", "*", "0.0.0.0", "::"}
_NON_ZERO = re.compile(rb"[^\x00]")

PortFlags = dict[tuple[str, int], int]  # (protocol, port) -> PYXLB_PORT_* flags


@dataclass(frozen=True)
class Bind:
    """A frontend's listening address. `addr` None (or *, 0.0.0.0, ::) is
    every address; `frontend` is the frontend's number among the tracked ones
    (its bit in src_rules values)."""

    addr: str | None
    port: int
    proto: str = "tcp"
    frontend: int = 0

    def __post_init__(self) -> None:
        if self.proto not in PROTOCOLS:
            raise ValueError(f"bind {self.addr}:{self.port}: protocol {self.proto!r} is not "
                             f"one of {', '.join(PROTOCOLS)}")
        if not 0 <= self.frontend < TRACKED_FRONTENDS_MAX:
            raise ValueError(f"bind {self.addr}:{self.port}: frontend number {self.frontend} "
                             f"out of range (0-{TRACKED_FRONTENDS_MAX - 1})")
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


def tracked_frontends(binds: Iterable[Bind]) -> dict[int, int]:
    """The `tcp_frontend` of each port a frontend binds on every address;
    ValueError when two frontends do."""
    found: dict[int, int] = {}
    for bind in binds:
        if bind.proto != "tcp" or not bind.wildcard:
            continue
        if found.setdefault(bind.port, bind.frontend) != bind.frontend:
            raise ValueError(f"bind *:{bind.port}: tracked frontends {found[bind.port]} and "
                             f"{bind.frontend} both bind the port on every address")
    return found


def _read_values(ports_map: BpfMap) -> dict[int, Any]:
    """Every non-zero entry of `ports`, in one batch read."""
    keys = (ctypes.c_uint32 * PORT_COUNT)()
    values = (ports_map.layout.value_type * PORT_COUNT)()
    count = libbpf.map_lookup_batch(ports_map.fd, keys, values)
    size = ctypes.sizeof(ports_map.layout.value_type)
    found: dict[int, Any] = {}
    # A few ports of 65536 are set: find them at C speed.
    for match in _NON_ZERO.finditer(memoryview(values).cast("B")[: count * size]):
        i = match.start() // size
        found.setdefault(keys[i], values[i])
    return found


def read_flags(ports_map: BpfMap) -> PortFlags:
    """Every non-zero flag set in `ports`."""
    flags: PortFlags = {}
    for port, value in _read_values(ports_map).items():
        for proto in PROTOCOLS:
            if bits := getattr(value, proto):
                flags[(proto, port)] = bits
    return flags


def update_flags(ports_map: BpfMap, owned_bits: int, flags: Mapping[tuple[str, int], int],
                 frontends: Mapping[int, int] | None = None) -> None:
    """Makes `owned_bits` of every port equal to `flags`' (absent: 0), leaving
    the other bits as they are, and with `frontends` (the owner of the
    tracked bits) every port's `tcp_frontend` (absent: 0); writes only the
    ports that change."""
    value_type = ports_map.layout.value_type
    current = _read_values(ports_map)
    ports = {port for _, port in flags} | set(current) | set(frontends or ())
    changed: dict[int, Any] = {}
    for port in ports:
        old = current.get(port, value_type())
        new = value_type.from_buffer_copy(old)
        for proto in PROTOCOLS:
            bits = flags.get((proto, port), 0)
            setattr(new, proto, (getattr(old, proto) & ~owned_bits) | (bits & owned_bits))
        if frontends is not None:
            new.tcp_frontend = frontends.get(port, 0)
        if bytes(new) != bytes(old):
            changed[port] = new
    if not changed:
        return
    keys = (ctypes.c_uint32 * len(changed))(*sorted(changed))
    values = (value_type * len(changed))(*(changed[port] for port in sorted(changed)))
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
    update_flags(ports_map, TRACKED_BITS, tracked_flags(binds), tracked_frontends(binds))
    for key in list(listeners_map.keys()):
        if bytes(key) not in wanted:
            libbpf.map_delete(listeners_map.fd, key)
