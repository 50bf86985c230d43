"""Layer-4 services in the kernel: what the control plane writes into the
`services`, `backends`, `maglev`, `l4_params` and `ports` maps, and how it
sweeps idle flows out of `conntrack` and `nat_reverse`.

The pure part decides: `plan()` turns a list of `Service` into map contents
(service ids and backend numbers that stay the same across updates, so that a
conntrack entry keeps naming the same server; one table per service, filled
by pyxlb.datapath.maglev or `roundrobin_table()` as its algorithm says),
`flow_timeout()` says how long an idle flow lives, and `flow_hash()` is the
twin of the kernel's flow hash (bpf/flow.h). The thin part, `L4Maps`,
`apply()` and `sweep()`, does the map I/O, in an order that keeps the
datapath consistent at every step: servers before the tables that name them,
tables before the services that use them, and each service's table swapped
whole, as a new map put into its `maglev` slot in one update.
"""

from __future__ import annotations

import ctypes
import ipaddress
import math
import os
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyxlb.datapath import libbpf, maglev, ports
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.maps import BpfMap, decode, fold_percpu

MAP_NAMES = ("services", "backends", "maglev", "maglev_table", "conntrack", "nat_reverse",
             "service_stats", "backend_stats", "backend_flows", "backend_swept", "l4_params",
             "ports")
ALGORITHMS = {"maglev": 0, "roundrobin": 1, "leastconn": 2, "first": 3}  # PYXLB_ALGO_*
# Algorithms that pick among candidates by their flows; at most this many each.
BY_LOAD = ("leastconn", "first")
CANDIDATES_MAX = 32  # PYXLB_CANDIDATES_MAX
FORWARDING = {"nat": 0, "dsr": 0x01}  # PYXLB_SERVICE_DSR
BACKEND_STATES = {"unused": 0, "up": 1, "drain": 2, "down": 3}  # PYXLB_BACKEND_*
CONN_FIN, CONN_RST, CONN_ANSWERED, CONN_DSR, CONN_CLOSED = 0x01, 0x02, 0x04, 0x08, 0x10
NO_BACKEND = 0xFFFF_FFFF  # a Maglev slot with no server (every one of them is down)
MAX_WEIGHT = 256  # HAProxy's
SERVICE_BITS = ports.PORT_SERVICE | ports.PORT_NAT
RESERVED_PORTS_SYSCTL = "/proc/sys/net/ipv4/ip_local_reserved_ports"
# Below the kernel's default ephemeral range (32768-60999), so reserving them
# (reserve_nat_ports) takes nothing from our own sockets; a flow's port is
# unique per server, so this is 12768 concurrent flows to each.
DEFAULT_NAT_PORTS = range(20000, 32768)
_FLOW_HASH_SEED = 0x70786C62
_U32 = 0xFFFF_FFFF

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ServiceKey = tuple[str, int, str]          # (VIP, port, protocol)
BackendKey = tuple[ServiceKey, str, int]   # (service, address, port)


def _address(text: str, what: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an IP address") from None


def _mapped(addr: Address) -> bytes:
    return addr.packed if addr.version == 6 else bytes(10) + b"\xff\xff" + addr.packed


def _unmapped(raw: bytes) -> str:
    addr = ipaddress.IPv6Address(bytes(raw))
    return str(addr.ipv4_mapped or addr)


@dataclass(frozen=True)
class Backend:
    """A server: `state` is up (takes new flows), drain or down (keeps the
    flows it has, takes no new one); `maxconn` its flows under `first` before
    the next server takes new ones (0: no limit)."""

    addr: str
    port: int
    weight: int = 1
    state: str = "up"
    maxconn: int = 0


@dataclass(frozen=True)
class Timeouts:
    """How long an idle flow lives, in seconds, by what its packets said;
    and how long a backend may leave a SYN unanswered (`connect`) before the
    flow is given up and counted against it."""

    tcp: float = 900.0          # established
    tcp_closing: float = 120.0  # a FIN one way
    tcp_closed: float = 10.0    # FINs both ways, or a RST
    udp: float = 300.0
    connect: float = 5.0


@dataclass(frozen=True)
class Service:
    """A layer-4 service: `vip`:`port` balanced over `backends`. `forward`
    "nat": full NAT, backends see `snat` (the balancer's address) as the
    source; "dsr": direct server return, backends see the client, hold the
    VIP on a loopback, listen on the service's port and answer clients
    straight."""

    vip: str
    port: int
    snat: str
    backends: tuple[Backend, ...] = ()
    proto: str = "tcp"
    algorithm: str = "maglev"
    forward: str = "nat"
    timeouts: Timeouts = Timeouts()

    def __post_init__(self) -> None:
        name = f"service {self.vip}:{self.port}/{self.proto}"
        vip = _address(self.vip, name)
        family = vip.version
        if _address(self.snat, f"{name} source address").version != family:
            raise ValueError(f"{name}: source address {self.snat} is not IPv{family} like the VIP")
        if self.proto not in ports.PROTOCOLS:
            raise ValueError(f"{name}: protocol must be one of {', '.join(ports.PROTOCOLS)}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"{name}: algorithm {self.algorithm!r} is not one of "
                             f"{', '.join(ALGORITHMS)}")
        if self.forward not in FORWARDING:
            raise ValueError(f"{name}: forwarding {self.forward!r} is not one of "
                             f"{', '.join(FORWARDING)}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"{name}: port out of range (1-65535)")
        if self.algorithm in BY_LOAD and len(self.backends) > CANDIDATES_MAX:
            raise ValueError(f"{name}: {self.algorithm} compares at most {CANDIDATES_MAX} "
                             "servers in the kernel")
        seen = set()
        for b in self.backends:
            where = f"{name}: server {b.addr}:{b.port}"
            if _address(b.addr, where).version != family:
                raise ValueError(f"{where} is not IPv{family} like the VIP")
            if not 1 <= b.port <= 65535:
                raise ValueError(f"{where}: port out of range (1-65535)")
            if self.forward == "dsr" and b.port != self.port:
                raise ValueError(f"{where}: direct server return leaves ports as they are: "
                                 f"the server must listen on the service's port {self.port}")
            if not 0 <= b.weight <= MAX_WEIGHT:
                raise ValueError(f"{where}: weight {b.weight} is not 0-{MAX_WEIGHT}")
            if b.state not in BACKEND_STATES or b.state == "unused":
                raise ValueError(f"{where}: state {b.state!r} is not up, drain or down")
            if b.maxconn < 0:
                raise ValueError(f"{where}: maxconn {b.maxconn} is negative")
            if (b.addr, b.port) in seen:
                raise ValueError(f"{where} is listed twice")
            seen.add((b.addr, b.port))

    @property
    def key(self) -> ServiceKey:
        return (str(ipaddress.ip_address(self.vip)), self.port, self.proto)


@dataclass(frozen=True)
class BackendEntry:
    """One `backends` slot as the kernel holds it."""

    service: int
    addr: str
    port: int
    weight: int
    state: str
    maxconn: int = 0


@dataclass(frozen=True)
class Assignment:
    """Which ids and numbers are taken: read from the maps before an update."""

    service_ids: dict[ServiceKey, int] = field(default_factory=dict)
    backends: dict[int, BackendEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """The maps' contents for a list of services."""

    services: dict[ServiceKey, tuple[int, Service]]
    backends: dict[int, BackendEntry]
    tables: dict[int, list[int]]  # service id -> slot -> backend number (or NO_BACKEND)


def _first_free(taken: set[int], limit: int, what: str) -> int:
    for n in range(limit):
        if n not in taken:
            taken.add(n)
            return n
    raise ValueError(f"more {what} than the datapath holds ({limit}; raise it at build time)")


def roundrobin_table(weights: Sequence[int], size: int) -> list[int]:
    """A roundrobin service's table: one period of a smooth weighted round
    robin (each turn, every backend gains its weight and the richest, the
    first on a tie, is picked and pays the total), repeated over the `size`
    slots the kernel walks one new flow at a time. Equal weights take turns
    in order, as HAProxy's roundrobin does; a weight of 0 is left out."""
    divisor = math.gcd(*weights)
    if not divisor:
        return [maglev.NO_BACKEND] * size
    shares = [w // divisor for w in weights]
    total = sum(shares)
    credit = [0] * len(shares)
    period = []
    for _ in range(total):
        for i, share in enumerate(shares):
            credit[i] += share
        best = max((i for i, share in enumerate(shares) if share), key=lambda i: credit[i])
        credit[best] -= total
        period.append(best)
    return [period[slot % total] for slot in range(size)]


def by_load_table(weights: Sequence[int], size: int) -> list[int]:
    """A leastconn or first service's table: its candidates (the backends
    with a weight, in server order) at the head, which the kernel compares
    by their flows; `Service.candidates` says how many."""
    listed = [i for i, weight in enumerate(weights) if weight]
    return listed + [maglev.NO_BACKEND] * (size - len(listed))


def candidates(svc: Service) -> int:
    """How many backends a leastconn or first service's table lists."""
    return sum(1 for b in svc.backends if b.state == "up" and b.weight) \
        if svc.algorithm in BY_LOAD else 0


def plan(services: Sequence[Service], current: Assignment = Assignment(), *,
         maglev_size: int = maglev.DEFAULT_SIZE, services_max: int = 64,
         backends_max: int = 4096) -> Plan:
    """What to write for `services`, keeping `current`'s ids and numbers for
    the services and servers that stay. New ones get the lowest id or number
    neither plan uses, so a number freed now is not reused by this update
    (its conntrack entries still count under it until they go)."""
    by_key: dict[ServiceKey, Service] = {}
    for svc in services:
        if svc.key in by_key:
            raise ValueError(f"service {svc.vip}:{svc.port}/{svc.proto} is listed twice")
        by_key[svc.key] = svc
    taken_ids = set(current.service_ids.values())
    ids = {key: current.service_ids[key] for key in by_key if key in current.service_ids}
    for key in by_key:
        if key not in ids:
            ids[key] = _first_free(taken_ids, services_max, "layer-4 services")

    numbers_now = {(e.service, e.addr, e.port): n for n, e in current.backends.items()}
    taken_numbers = set(current.backends)
    backends: dict[int, BackendEntry] = {}
    tables: dict[int, list[int]] = {}
    for key, svc in by_key.items():
        sid = ids[key]
        numbers = []
        for b in svc.backends:
            addr = str(ipaddress.ip_address(b.addr))
            number = numbers_now.get((sid, addr, b.port))
            if number is None:
                number = _first_free(taken_numbers, backends_max, "layer-4 servers")
            backends[number] = BackendEntry(sid, addr, b.port, b.weight, b.state, b.maxconn)
            numbers.append(number)
        weights = [b.weight if b.state == "up" else 0 for b in svc.backends]
        if svc.algorithm in BY_LOAD:
            table = by_load_table(weights, maglev_size)
        elif svc.algorithm == "roundrobin":
            table = roundrobin_table(weights, maglev_size)
        elif weights:
            table = maglev.build_table([(f"{b.addr}:{b.port}", w)
                                        for b, w in zip(svc.backends, weights, strict=True)],
                                       maglev_size)
        else:
            table = [maglev.NO_BACKEND] * maglev_size
        tables[sid] = [numbers[i] if i >= 0 else NO_BACKEND for i in table]
    return Plan({key: (ids[key], svc) for key, svc in by_key.items()}, backends, tables)


def service_ports(services: Iterable[Service], nat_ports: range) -> ports.PortFlags:
    """The `ports` bits services own: their ports, and the NAT source ports
    (both protocols) that replies from backends come back to, while there is
    any service. A service's flows end with it: its port is no longer looked
    at, and its last packets reach the stack."""
    flags: ports.PortFlags = {}
    for svc in services:
        flags[(svc.proto, svc.port)] = ports.PORT_SERVICE
    for port in nat_ports if flags else ():
        for proto in ports.PROTOCOLS:
            flags[(proto, port)] = flags.get((proto, port), 0) | ports.PORT_NAT
    return flags


def check_nat_ports(nat_ports: range) -> None:
    if nat_ports.step != 1 or not nat_ports or nat_ports.start < 1 or nat_ports.stop > 65536:
        raise ValueError(f"NAT source ports {nat_ports.start}-{nat_ports.stop - 1}: "
                         "want a non-empty range within 1-65535")


def reserved_ports_with(current: str, nat_ports: range) -> str:
    """net.ipv4.ip_local_reserved_ports with `nat_ports` added, so that the
    kernel never gives one of them to a socket of ours (l7's connections,
    health checks), whose replies XDP would then take for a NAT flow's."""
    spans = [(nat_ports.start, nat_ports.stop - 1)]
    for part in current.replace("\n", "").split(","):
        if part.strip():
            low, _, high = part.strip().partition("-")
            spans.append((int(low), int(high or low)))
    merged: list[list[int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in merged)


def reserve_nat_ports(nat_ports: range, path: str = RESERVED_PORTS_SYSCTL) -> None:
    """Adds the NAT ports to the current network namespace's reserved ports."""
    with open(path) as f:
        current = f.read()
    with open(path, "w") as f:
        f.write(reserved_ports_with(current, nat_ports))


def flow_timeout(proto: int, forward_state: int, reply_state: int, timeouts: Timeouts) -> float:
    if proto != ports.PROTOCOLS["tcp"]:
        return timeouts.udp
    either = forward_state | reply_state
    if either & CONN_RST or forward_state & reply_state & CONN_FIN:
        return timeouts.tcp_closed
    if either & CONN_FIN:
        return timeouts.tcp_closing
    return timeouts.tcp


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _U32


def flow_hash(key: bytes, seed: int = _FLOW_HASH_SEED) -> int:
    """bpf/flow.h's pyxlb_flow_hash: MurmurHash3 (x86, 32 bits) of a struct
    flow_key's words as this CPU reads them."""
    h = seed
    for (word,) in struct.iter_unpack("=I", key):
        k = _rotl32(word * 0xCC9E2D51 & _U32, 15) * 0x1B873593 & _U32
        h = (_rotl32(h ^ k, 13) * 5 + 0xE6546B64) & _U32
    h ^= len(key)
    h = (h ^ (h >> 16)) * 0x85EBCA6B & _U32
    h = (h ^ (h >> 13)) * 0xC2B2AE35 & _U32
    return h ^ (h >> 16)


def flow_key(key_type: Any, src: str, dst: str, sport: int, dport: int, proto: str) -> Any:
    """A struct flow_key for a packet from src:sport to dst:dport."""
    key = key_type()
    key.src_addr[:] = list(_mapped(ipaddress.ip_address(src)))
    key.dst_addr[:] = list(_mapped(ipaddress.ip_address(dst)))
    key.sport, key.dport, key.proto = sport, dport, ports.PROTOCOLS[proto]
    return key


def nat_port(hash_: int, nat_ports: range, taken: int = 0) -> int:
    """The NAT port a new flow claims when the `taken` ports it tries first
    are in use (bpf: pyxlb_claim_nat_port)."""
    return nat_ports.start + ((hash_ >> 8) % len(nat_ports) + taken) % len(nat_ports)


def reply_key(key_type: Any, conn: Any, proto: int) -> Any:
    """The key of the other direction of the flow `conn` rewrites to."""
    key = key_type()
    key.src_addr[:] = conn.out_dst_addr
    key.dst_addr[:] = conn.out_src_addr
    key.sport, key.dport, key.proto = conn.out_dport, conn.out_sport, proto
    return key


@dataclass
class L4Maps:
    """The maps of the layer-4 datapath, by name (MAP_NAMES)."""

    maps: dict[str, BpfMap]

    @classmethod
    def open(cls, instance: Instance) -> L4Maps:
        layouts = instance.layouts()
        return cls({name: BpfMap.open_pinned(str(instance.pin_dir / name), layouts[name])
                    for name in MAP_NAMES})

    def close(self) -> None:
        for table in self.maps.values():
            table.close()

    def __enter__(self) -> L4Maps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> BpfMap:
        return self.maps[name]

    @property
    def maglev_size(self) -> int:
        return self["maglev_table"].max_entries

    def read_backends(self) -> dict[int, BackendEntry]:
        table = self["backends"]
        count = table.max_entries
        keys = (ctypes.c_uint32 * count)()
        values = (table.layout.value_type * count)()
        states = {v: k for k, v in BACKEND_STATES.items()}
        found = {}
        for i in range(libbpf.map_lookup_batch(table.fd, keys, values)):
            value = values[i]
            if value.state:
                found[keys[i]] = BackendEntry(value.service, _unmapped(bytes(value.addr)),
                                              value.port, value.weight,
                                              states.get(value.state, "down"), value.maxconn)
        return found

    def read_assignment(self) -> Assignment:
        ids = {}
        for key, value in self["services"].items():
            proto = {v: k for k, v in ports.PROTOCOLS.items()}[key.proto]
            ids[(_unmapped(bytes(key.addr)), key.port, proto)] = value.id
        return Assignment(ids, self.read_backends())

    def has_table(self, service_id: int) -> bool:
        outer = self["maglev"]
        return libbpf.map_lookup(outer.fd, ctypes.c_uint32(service_id), ctypes.c_uint32())

    def swap_table(self, service_id: int, table: Sequence[int]) -> None:
        """Fills a new map with `table` and puts it in the service's slot: the
        kernel sees the old table or the new one, never a mix."""
        template = self["maglev_table"]
        size = template.max_entries
        if len(table) != size:
            raise ValueError(f"a Maglev table of {len(table)} slots for a datapath of {size}")
        fd = libbpf.map_create(libbpf.BPF_MAP_TYPE_ARRAY, "pyxlb_maglev", 4, 4, size)
        try:
            keys = (ctypes.c_uint32 * size)(*range(size))
            values = (ctypes.c_uint32 * size)(*table)
            libbpf.map_update_batch(fd, keys, values)
            libbpf.map_update(self["maglev"].fd, ctypes.c_uint32(service_id), ctypes.c_uint32(fd))
        finally:
            os.close(fd)

    def drop_table(self, service_id: int) -> None:
        libbpf.map_delete(self["maglev"].fd, ctypes.c_uint32(service_id))


def _write_backend(maps: L4Maps, number: int, entry: BackendEntry | None) -> None:
    table = maps["backends"]
    value = table.layout.value_type()
    if entry is not None:
        value.addr[:] = list(_mapped(ipaddress.ip_address(entry.addr)))
        value.port, value.weight, value.service = entry.port, entry.weight, entry.service
        value.maxconn = entry.maxconn
        value.state = BACKEND_STATES[entry.state]
    libbpf.map_update(table.fd, ctypes.c_uint32(number), value)


def _service_key(maps: L4Maps, key: ServiceKey) -> Any:
    vip, port, proto = key
    return ports.endpoint_key(vip, port, proto, maps["services"].layout.key_type)


def apply(maps: L4Maps, services: Sequence[Service], nat_ports: range) -> Plan:
    """Makes the kernel serve exactly `services` (at start and on every change
    of servers, weights or states), NAT source ports taken from `nat_ports`."""
    check_nat_ports(nat_ports)
    current = maps.read_assignment()
    new = plan(services, current, maglev_size=maps.maglev_size,
               services_max=maps["services"].max_entries,
               backends_max=maps["backends"].max_entries)

    params = maps["l4_params"]
    value = params.layout.value_type(nat_port_min=nat_ports.start,
                                     nat_port_count=len(nat_ports))
    libbpf.map_update(params.fd, params.layout.key_type(0), value)
    for number, entry in new.backends.items():
        if current.backends.get(number) != entry:
            _write_backend(maps, number, entry)
    entries = {key: maps["services"].lookup(_service_key(maps, key)) for key in new.services}
    for key, (sid, svc) in new.services.items():
        same = {n: e for n, e in new.backends.items() if e.service == sid}
        before = {n: e for n, e in current.backends.items() if e.service == sid}
        old = entries[key]
        if (same != before or old is None or old.algorithm != ALGORITHMS[svc.algorithm]
                or not maps.has_table(sid)):
            maps.swap_table(sid, new.tables[sid])
    for key, (sid, svc) in new.services.items():
        entry = maps["services"].layout.value_type(id=sid, algorithm=ALGORITHMS[svc.algorithm],
                                                   flags=FORWARDING[svc.forward],
                                                   candidates=candidates(svc))
        entry.snat_addr[:] = list(_mapped(ipaddress.ip_address(svc.snat)))
        old = entries[key]
        # Rewritten only when it changed: that would restart roundrobin's turns.
        if old is None or (bytes(old.snat_addr), old.id, old.algorithm, old.flags,
                           old.candidates) != (bytes(entry.snat_addr), entry.id,
                                               entry.algorithm, entry.flags, entry.candidates):
            libbpf.map_update(maps["services"].fd, _service_key(maps, key), entry)
    ports.update_flags(maps["ports"], SERVICE_BITS,
                       service_ports([svc for _, svc in new.services.values()], nat_ports))

    # What went away, last: its entries are no longer reachable.
    for key, sid in current.service_ids.items():
        if key not in new.services:
            libbpf.map_delete(maps["services"].fd, _service_key(maps, key))
            maps.drop_table(sid)
    for number in current.backends:
        if number not in new.backends:
            _write_backend(maps, number, None)
    return new


@dataclass(frozen=True)
class SweepResult:
    flows: int    # flows removed, both directions
    orphans: int  # reply entries removed whose flow was gone
    # backend number -> SYNs it left unanswered past the connect timeout
    # (those flows are among `flows`): `observe layer4`'s missing answers.
    unanswered: dict[int, int] = field(default_factory=dict)
    # backend number -> flows it still counted that conntrack had evicted
    # (a full table): taken off its count, as swept.
    evicted: dict[int, int] = field(default_factory=dict)


# Linux's clock id; Python names it from 3.13 only.
CLOCK_MONOTONIC_COARSE = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)


def coarse_now_ns() -> int:
    """The clock conntrack's last_seen_ns is read from (bpf_ktime_get_coarse_ns)."""
    return time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)


def _idle(last_seen_ns: int, timeout_s: float, now_ns: int) -> bool:
    return now_ns - last_seen_ns > timeout_s * 1e9


def _unanswered(proto: int, conn: Any, reply: Any, connect_s: float, now_ns: int) -> bool:
    """A TCP flow whose backend never answered its SYN: the reply entry,
    written when the flow began, has seen nothing since."""
    return (proto == ports.PROTOCOLS["tcp"] and reply is not None
            and not (reply.state & (CONN_ANSWERED | CONN_RST))
            and not (conn.state & (CONN_FIN | CONN_RST))
            and _idle(reply.last_seen_ns, connect_s, now_ns))


def sweep(maps: L4Maps, timeouts: Timeouts | Mapping[int, Timeouts] = Timeouts(),
          now_ns: int | None = None) -> SweepResult:
    """Removes the flows idle longer than their timeout: a flow's two entries
    go together, judged on the later of their last packets; and the flows
    whose backend left the SYN unanswered longer than `connect`. `timeouts`
    is for every service, or by service id (services absent get the
    defaults)."""
    now = coarse_now_ns() if now_ns is None else now_ns
    conntrack, reverse = maps["conntrack"], maps["nat_reverse"]
    key_type = conntrack.layout.key_type
    per_service = {} if isinstance(timeouts, Timeouts) else timeouts
    default = timeouts if isinstance(timeouts, Timeouts) else Timeouts()
    flows = orphans = 0
    unanswered: dict[int, int] = {}
    swept: dict[int, int] = {}
    live: dict[int, int] = {}  # backend number -> flows kept, not counted closed
    paired: set[bytes] = set()
    counted_before = _flow_counts(maps)
    for key, conn in list(conntrack.items()):
        rkey = reply_key(key_type, conn, key.proto)
        reply = reverse.lookup(rkey)
        limits = per_service.get(conn.service, default)
        last = max(conn.last_seen_ns, reply.last_seen_ns if reply else 0)
        timeout = flow_timeout(key.proto, conn.state, reply.state if reply else 0, limits)
        given_up = _unanswered(key.proto, conn, reply, limits.connect, now)
        if given_up:
            unanswered[conn.backend] = unanswered.get(conn.backend, 0) + 1
        elif not _idle(last, timeout, now):
            if reply is not None:
                paired.add(bytes(rkey))
            if not conn.state & CONN_CLOSED:
                live[conn.backend] = live.get(conn.backend, 0) + 1
            continue
        libbpf.map_delete(conntrack.fd, key)
        if reply is not None:
            libbpf.map_delete(reverse.fd, rkey)
        flows += 1
        if not conn.state & CONN_CLOSED:
            swept[conn.backend] = swept.get(conn.backend, 0) + 1
    for rkey, reply in list(reverse.items()):
        if bytes(rkey) in paired:
            continue
        timeout = flow_timeout(rkey.proto, 0, reply.state,
                               per_service.get(reply.service, default))
        forward = conntrack.lookup(reply_key(key_type, reply, rkey.proto))
        if forward is not None and forward.out_sport == rkey.dport:
            continue  # created after the pass above looked
        if _idle(reply.last_seen_ns, timeout, now):
            libbpf.map_delete(reverse.fd, rkey)
            orphans += 1
    evicted = _evicted(maps, counted_before, live, swept)
    for number, count in evicted.items():
        swept[number] = swept.get(number, 0) + count
    _count_swept(maps, swept)
    return SweepResult(flows, orphans, unanswered, evicted)


def _flow_counts(maps: L4Maps) -> dict[int, tuple[int, int]]:
    """backend number -> (opened, closed) for the backends with flows, read at once."""
    table = maps["backend_flows"]
    count = table.max_entries
    keys = (ctypes.c_uint32 * count)()
    values = (table.layout.value_type * count)()
    return {keys[i]: (values[i].opened, values[i].closed)
            for i in range(libbpf.map_lookup_batch(table.fd, keys, values))
            if values[i].opened}


def _evicted(maps: L4Maps, before: Mapping[int, tuple[int, int]], live: Mapping[int, int],
             swept_now: Mapping[int, int]) -> dict[int, int]:
    """The flows each backend still counts that conntrack no longer holds: the
    LRU evicted them (a full table), unseen by the kernel's count and the
    sweep. A backend cannot have more flows than the sweep saw kept plus those
    opened while it looked; only the excess is taken off, so a flow is never
    uncounted while it lives, whatever raced with the sweep."""
    after = _flow_counts(maps)
    swept_table = maps["backend_swept"]
    evicted = {}
    for number, (opened, closed) in after.items():
        swept = swept_table.lookup(ctypes.c_uint32(number))
        counted = opened - closed - (swept.value if swept is not None else 0)
        counted -= swept_now.get(number, 0)
        opened_meanwhile = opened - before.get(number, (0, 0))[0]
        excess = counted - live.get(number, 0) - opened_meanwhile
        if excess > 0:
            evicted[number] = excess
    return evicted


def active_flows(maps: L4Maps, number: int) -> int:
    """A backend's flows now, as leastconn and first count them in the kernel
    (struct backend_flows): opened - closed - swept."""
    flows = maps["backend_flows"].lookup(ctypes.c_uint32(number))
    swept = maps["backend_swept"].lookup(ctypes.c_uint32(number))
    if flows is None:
        return 0
    return max(0, flows.opened - flows.closed - (swept.value if swept is not None else 0))


def _count_swept(maps: L4Maps, swept: dict[int, int]) -> None:
    """Adds to `backend_swept` the flows the sweeper removed that the kernel
    never counted closed (user space is its only writer)."""
    table = maps["backend_swept"]
    for number, count in swept.items():
        key = ctypes.c_uint32(number)
        before = table.lookup(key)
        total = (before.value if before is not None else 0) + count
        libbpf.map_update(table.fd, key, ctypes.c_uint64(total))


def _folded(table: BpfMap, index: int) -> dict[str, int]:
    return decode(fold_percpu(table.lookup(ctypes.c_uint32(index))))


def passive_signals(maps: L4Maps, number: int) -> tuple[int, int]:
    """A backend's `observe layer4` counters so far: (SYNs answered, SYNs
    refused), each flow counted once by the datapath."""
    counts = _folded(maps["backend_stats"], number)
    return counts["answered"], counts["refused"]


def stats(maps: L4Maps) -> Iterator[dict[str, Any]]:
    """Each service's counters with its servers', for stats pages and the CLI."""
    assignment = maps.read_assignment()
    for (vip, port, proto), sid in sorted(assignment.service_ids.items()):
        yield {
            "service": f"{vip}:{port}/{proto}", "id": sid,
            **_folded(maps["service_stats"], sid),
            "backends": [
                {"server": f"{e.addr}:{e.port}", "number": n, "state": e.state,
                 "weight": e.weight, "active_flows": active_flows(maps, n),
                 **_folded(maps["backend_stats"], n)}
                for n, e in sorted(assignment.backends.items()) if e.service == sid],
        }
