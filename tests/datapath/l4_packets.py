"""Packets and services for the layer-4 BPF_PROG_TEST_RUN tables: a client's
and a server's packets as they come in on lb0, the service they reach, and
what the kernel should send on (checksums computed afresh by scapy)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from pyxlb.datapath import services
from pyxlb.datapath.libbpf import XDP_TX
from pyxlb.datapath.services import Backend, Service

LB_MAC, CLIENT_MAC = "02:00:00:00:00:02", "02:00:00:00:00:0a"
CLIENT, CLIENT6 = "10.111.0.10", "fd00:111::10"
VIP, VIP6 = "10.111.0.100", "fd00:111::100"
SNAT, SNAT6 = "10.111.0.2", "fd00:111::2"
SERVERS = {"10.111.0.21": "02:00:00:00:00:21", "10.111.0.22": "02:00:00:00:00:22",
           "10.111.0.23": "02:00:00:00:00:23", "10.112.0.21": "02:00:00:00:01:21",
           "fd00:111::21": "02:00:00:00:00:21"}
NAT_PORTS = range(40000, 50000)
WEB = Service(VIP, 80, SNAT, tuple(Backend(a, 8080) for a in
                                   ("10.111.0.21", "10.111.0.22", "10.111.0.23")))


def client_packet(l4: Packet, src: str = CLIENT, dst: str = VIP) -> Ether:
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return Ether(src=CLIENT_MAC, dst=LB_MAC) / ip / l4


def syn(sport: int = 40123, **kw) -> Ether:
    return client_packet(TCP(sport=sport, dport=80, flags="S", seq=1000), **kw)


def serve(xdp, *svcs: Service, nat_ports: range = NAT_PORTS) -> services.Plan:
    return services.apply(xdp.l4, list(svcs), nat_ports)


def expected_nat(xdp, plan: services.Plan, packet: Ether) -> tuple[str, int, int]:
    """(server address, server port, NAT port) the twin of the kernel's hash
    picks for a new flow."""
    ip = packet[IPv6] if IPv6 in packet else packet[IP]
    l4 = packet[TCP] if TCP in packet else packet[UDP]
    proto = "tcp" if TCP in packet else "udp"
    key = services.flow_key(xdp.maps["conntrack"].layout.key_type, ip.src, ip.dst,
                            l4.sport, l4.dport, proto)
    hash_ = services.flow_hash(bytes(key))
    sid, _ = plan.services[(ip.dst, l4.dport, proto)]
    number = plan.tables[sid][hash_ % len(plan.tables[sid])]
    backend = plan.backends[number]
    return backend.addr, backend.port, services.nat_port(hash_, NAT_PORTS)


def rewritten(packet: Ether, src: str, sport: int, dst: str, dport: int,
              smac: str | None, dmac: str | None) -> bytes:
    """`packet` as it should leave, with checksums scapy computes afresh."""
    out = Ether(bytes(packet))
    if smac:
        out.src, out.dst = smac, dmac
    ip = out[IPv6] if IPv6 in out else out[IP]
    ip.src, ip.dst = src, dst
    if IP in out:
        del ip.chksum
    l4 = out[TCP] if TCP in out else out[UDP]
    l4.sport, l4.dport = sport, dport
    if TCP in out or l4.chksum != 0:
        del l4.chksum
    return bytes(out)


def checksums_hold(frame: bytes) -> bool:
    """Whether every checksum in `frame` is the one computed from scratch."""
    fresh = Ether(frame)
    for layer in (IP, TCP, UDP):
        if layer in fresh and not (layer is UDP and fresh[UDP].chksum == 0):
            del fresh[layer].chksum
    return bytes(fresh) == frame


def reply_from(server: str, sport: int, nat_port: int, flags: str = "SA") -> Ether:
    ip = IPv6(src=server, dst=SNAT6) if ":" in server else IP(src=server, dst=SNAT)
    return (Ether(src=SERVERS[server], dst=LB_MAC) / ip /
            TCP(sport=sport, dport=nat_port, flags=flags, seq=5000, ack=1001))


def only(table) -> tuple[dict, dict]:
    [(key, value)] = table.decoded_items()
    return key, value


ONE_PORT = range(40000, 40001)
ONE_SERVER = Service(VIP, 80, SNAT, WEB.backends[:1], algorithm="leastconn")


def open_flow(xdp, sport: int) -> Ether | None:
    out = xdp.run(bytes(syn(sport)))
    return Ether(out.data_out) if out.retval == XDP_TX else None


def from_server(xdp, out: Ether, flags: str) -> None:
    xdp.run(bytes(reply_from(out[IP].dst, out[TCP].dport, out[TCP].sport, flags)))

