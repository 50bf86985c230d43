"""The "routed" reference: client and servers talk to each other's own addresses,
but through the balancer's namespace, whose kernel forwards the packets with no
XDP program and no balancing. pyxlb's layer-4 path crosses that same extra hop
(client -> bridge -> lb -> bridge -> server, and back), so this is the cheapest
the kernel crosses it, and the gap between it and the no-balancer ceiling is what
the hop itself costs here.

/32 routes send the client's packets to each server, and each server's to the
client's addresses, via the lb namespace; IP forwarding is on there and ICMP
redirects off (else the client learns the direct path and skips the hop).
Everything is undone on the way out, even on an error or ^C. The lb namespace's
counters (/proc/net/snmp) show that the traffic did take the hop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from pyxlb.lab.lab import Lab
from pyxlb.lab.topology import LabTopology

FORWARDED = "Ip.ForwDatagrams"
REDIRECTS = "Icmp.OutRedirects"


@dataclass(frozen=True)
class HostRoute:
    role: str  # the namespace the route goes in
    dest: str  # a host address, routed as /32
    via: str


def route_plan(topo: LabTopology, client: str, servers: Sequence[str],
               via: str) -> list[HostRoute]:
    """The client's routes to each server and each server's to every client address,
    all via `via`'s address."""
    gw = topo.addr(via)
    to_servers = [HostRoute(client, topo.addr(s), gw) for s in servers]
    to_client = [HostRoute(s, a, gw) for s in servers for a in topo.addrs(client)]
    return to_servers + to_client


def forwarding_sysctls(iface: str) -> list[tuple[str, str]]:
    """Settings for a namespace that forwards without redirecting. The kernel sends
    a redirect if `all` or the interface says so: both say no."""
    return [("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.send_redirects", "0"),
            (f"net.ipv4.conf.{iface}.send_redirects", "0")]


def hop_note(via: str, before: dict[str, int], after: dict[str, int],
             requests: int | None) -> str:
    """What `via`'s counters say about the hop over a run: datagrams forwarded (per
    request when `requests` is known) and redirects sent. A run that went through
    it forwards at least a request and a response per request; else it says so."""
    forwarded = after[FORWARDED] - before[FORWARDED]
    redirects = after[REDIRECTS] - before[REDIRECTS]
    per = f" ({forwarded / requests:.1f}/request)" if requests else ""
    note = f"{via} forwarded {forwarded} datagrams{per}, sent {redirects} ICMP redirects"
    if forwarded == 0 or (requests and forwarded < 2 * requests):
        note = f"NOT all through {via}: {note}"
    return note


@contextmanager
def sysctls(lab: Lab, role: str, settings: Sequence[tuple[str, str]]) -> Iterator[None]:
    """`settings` in `role`'s namespace; each one set is put back, in reverse order."""
    with ExitStack() as undo:
        for key, value in settings:
            old = lab.run(role, ["sysctl", "-n", key]).stdout.strip()
            lab.run(role, ["sysctl", "-qw", f"{key}={value}"])
            undo.callback(lab.run, role, ["sysctl", "-qw", f"{key}={old}"], check=False)
        yield


@contextmanager
def host_routes(lab: Lab, routes: Sequence[HostRoute]) -> Iterator[None]:
    """`routes` added; each one added is deleted on the way out."""
    with ExitStack() as undo:
        for r in routes:
            lab.run(r.role, ["ip", "route", "add", f"{r.dest}/32", "via", r.via])
            undo.callback(lab.run, r.role, ["ip", "route", "del", f"{r.dest}/32", "via",
                                            r.via], check=False)
        yield


@contextmanager
def routed_via(lab: Lab, via: str, client: str, servers: Sequence[str]) -> Iterator[None]:
    """Traffic between `client` and `servers` forwarded by `via`'s kernel."""
    with sysctls(lab, via, forwarding_sysctls(lab.topo.iface)), \
            host_routes(lab, route_plan(lab.topo, client, servers, via)):
        yield
