"""The daemon's side of the layer-4 services: the kernel-tier proxies'
services written from the config and the interface's addresses, kept in step
with their servers' health, their idle flows swept, and the datapath's
per-server SYN answers and refusals handed to the health monitor for servers
with `observe layer4`. The maps themselves are pyxlb/datapath/services.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyxlb.config import Config
from pyxlb.datapath import services
from pyxlb.datapath.instance import Instance
from pyxlb.kernel_rules import (
    kernel_backends,
    kernel_frontends,
    kernel_services,
    layer4_observed,
)

if TYPE_CHECKING:
    from pyxlb.health.checker import HealthMonitor

SWEEP_INTERVAL_S = 5.0
# How often `observe layer4` servers' counters are read: a few map lookups,
# and failures reach the health monitor about as fast as HAProxy sees them.
OBSERVE_INTERVAL_S = 0.25
IFA_F_DEPRECATED, IFA_F_TENTATIVE = 0x20, 0x40
DISCARD_PORT = 9  # what a neighbour-resolving datagram is sent to


def interface_addresses(iface: str) -> dict[int, str]:
    """The first usable global address of `iface` per IP version, in the current
    network namespace: a `bind *:PORT` service's VIP and the NAT source."""
    from pyroute2 import IPRoute

    found: dict[int, str] = {}
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=iface)
        for msg in ipr.get_addr(index=index[0]) if index else ():
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            if msg["scope"] != 0 or flags & (IFA_F_DEPRECATED | IFA_F_TENTATIVE):
                continue
            addr = ipaddress.ip_address(msg.get_attr("IFA_ADDRESS"))
            found.setdefault(addr.version, str(addr))
    return found


def resolved_neighbours(iface: str, addrs: set[str]) -> set[str]:
    """Which of `addrs` have a neighbour entry bpf_fib_lookup can use."""
    from pyroute2 import IPRoute

    valid = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80  # NUD_VALID
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=iface)
        found = {msg.get_attr("NDA_DST") for msg in ipr.get_neighbours(ifindex=index[0])
                 if msg["state"] & valid} if index else set()
    return {str(ipaddress.ip_address(a)) for a in found if a} & addrs


def warm_neighbours(addrs: set[str]) -> None:
    """Makes the kernel resolve `addrs`' MACs: XDP cannot, and without one a
    flow's packets go to the stack instead of the server."""
    for addr in addrs:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"", (addr, DISCARD_PORT))


def _turn_on(path: str, what: str) -> None:
    with open(path) as f:
        if f.read().strip() == "1":
            return
    with open(path, "w") as f:
        f.write("1")
    print(f"pyxlb: turned {what}", flush=True)


def enable_forwarding(iface: str, versions: set[int]) -> None:
    """bpf_fib_lookup answers FWD_DISABLED unless forwarding is on for the ingress
    device (DESIGN.md). A rewritten packet whose next hop has no neighbour
    entry yet goes to the stack to be forwarded, and its source is one of our
    own addresses (the NAT source, or the VIP on a reply): IPv4 drops such a
    packet as a martian unless accept_local is on."""
    for version in sorted(versions):
        _turn_on(f"/proc/sys/net/ipv{version}/conf/{iface}/forwarding",
                 f"IPv{version} forwarding on for {iface} (layer-4 services forward "
                 "through it)")
    if 4 in versions:
        _turn_on(f"/proc/sys/net/ipv4/conf/{iface}/accept_local",
                 f"accept_local on for {iface} (so that the stack forwards NAT'd packets "
                 "to a neighbour XDP cannot reach yet)")


class L4Services:
    """The layer-4 services of the kernel-tier proxies, kept in step with
    their servers' health."""

    def __init__(self, config: Config, instance: Instance,
                 nat_ports: range = services.DEFAULT_NAT_PORTS) -> None:
        self.config = config
        self.instance = instance
        self.nat_ports = nat_ports
        self.backends = {be.name for be in kernel_backends(config)}
        self.addresses: dict[int, str] = {}
        self.maps: services.L4Maps | None = None
        self.servers: set[str] = set()
        # `observe layer4` servers by backend number, and what their counters
        # (answered, refused) were when last read.
        self.observed: dict[int, tuple[str, str]] = {}
        self.signals: dict[int, tuple[int, int]] = {}
        self.timeouts: dict[int, services.Timeouts] = {}  # by service id

    @property
    def wanted(self) -> bool:
        return bool(kernel_frontends(self.config))

    def start(self, up: Callable[[str, str], bool]) -> None:
        """Writes the services with the servers' starting states; the
        interface forwards and the NAT ports are the datapath's from now on."""
        iface = self.instance.iface
        self.addresses = interface_addresses(iface)
        planned = self.plan(up)
        enable_forwarding(iface, {ipaddress.ip_address(svc.vip).version for svc in planned})
        services.reserve_nat_ports(self.nat_ports)
        self.servers = {b.addr for svc in planned for b in svc.backends}
        warm_neighbours(self.servers)
        deadline = time.monotonic() + 1.0
        while (resolved_neighbours(iface, self.servers) != self.servers
               and time.monotonic() < deadline):
            time.sleep(0.02)
        self.maps = services.L4Maps.open(self.instance)
        self.watch(services.apply(self.maps, planned, self.nat_ports))
        for svc in planned:
            print(f"pyxlb: layer-4 service {svc.vip}:{svc.port}/{svc.proto} -> "
                  + ", ".join(f"{b.addr}:{b.port} ({b.state})" for b in svc.backends),
                  flush=True)

    def plan(self, up: Callable[[str, str], bool],
             weight: Callable[[str, str], int] | None = None) -> list[services.Service]:
        return kernel_services(
            self.config, self.addresses, lambda backend, server: up(backend, server.name),
            None if weight is None else lambda backend, server: weight(backend, server.name))

    def update(self, up: Callable[[str, str], bool],
               weight: Callable[[str, str], int] | None = None) -> None:
        """After a server state or weight change (`weight`: the runtime API's,
        else the config's): new flows go where the states say."""
        if self.maps is not None:
            self.watch(services.apply(self.maps, self.plan(up, weight), self.nat_ports))

    def watch(self, plan: services.Plan) -> None:
        """Finds the `observe layer4` servers' backend numbers in what was
        written; counts from before a server was watched are not news."""
        wanted = layer4_observed(self.config, self.addresses)
        observed = {}
        for number, entry in plan.backends.items():
            key = next((k for k, (sid, _) in plan.services.items() if sid == entry.service), None)
            names = wanted.get((key, entry.addr, entry.port)) if key else None
            if names is not None:
                observed[number] = names
        if self.maps is not None:
            self.signals = {n: self.signals.get(n) or services.passive_signals(self.maps, n)
                            for n in observed}
        self.observed = observed
        self.timeouts = {sid: svc.timeouts for sid, svc in plan.services.values()}

    def observe(self, monitor: HealthMonitor) -> None:
        """Tells the monitor of each SYN answered (L4_OK) and refused (L4_ERR)
        since the last call. A SYN never answered is the sweep's to find
        (`report_unanswered`): the datapath cannot see a missing answer."""
        from pyxlb.health.state import Analyze

        if self.maps is None:
            return
        for number, (backend, server) in self.observed.items():
            answered, refused = services.passive_signals(self.maps, number)
            was_answered, was_refused = self.signals.get(number, (answered, refused))
            self.signals[number] = (answered, refused)
            for _ in range(max(0, answered - was_answered)):
                monitor.observe(backend, server, Analyze.L4_OK)
            for _ in range(max(0, refused - was_refused)):
                monitor.observe(backend, server, Analyze.L4_ERR)

    async def run(self, monitor: HealthMonitor | None = None) -> None:
        """Sweeps idle flows, keeps the servers' neighbour entries warm and
        passes `observe layer4` signals to `monitor`, until cancelled."""
        next_sweep = time.monotonic() + SWEEP_INTERVAL_S
        while True:
            observing = monitor is not None and bool(self.observed)
            await asyncio.sleep(OBSERVE_INTERVAL_S if observing
                                else max(0.0, next_sweep - time.monotonic()))
            if observing:
                self.observe(monitor)
            if time.monotonic() < next_sweep:
                continue
            next_sweep = time.monotonic() + SWEEP_INTERVAL_S
            if self.maps is not None:
                swept = await asyncio.to_thread(services.sweep, self.maps, self.timeouts)
                if swept.evicted:
                    print(f"pyxlb: [WARNING] the flow table was full: "
                          f"{sum(swept.evicted.values())} flows were forgotten",
                          file=sys.stderr)
                if monitor is not None:
                    self.report_unanswered(monitor, swept.unanswered)
            warm_neighbours(self.servers)

    def report_unanswered(self, monitor: HealthMonitor, unanswered: dict[int, int]) -> None:
        """Each SYN an `observe layer4` server left unanswered past `timeout
        connect` is a failed connection (L4_ERR), as HAProxy counts a connect
        timeout."""
        from pyxlb.health.state import Analyze

        for number, count in unanswered.items():
            if number in self.observed:
                backend, server = self.observed[number]
                for _ in range(count):
                    monitor.observe(backend, server, Analyze.L4_ERR)

    def close(self) -> None:
        if self.maps is not None:
            self.maps.close()
            self.maps = None
