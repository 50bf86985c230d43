"""The lab's shape as data: namespaces, veth pairs, addresses, MACs and server ports.

Pure: nothing here touches the system. `pyxlb.lab.lab` turns this into `ip` commands,
and tests and demos read addresses and names from it instead of repeating them.

One L2 segment: every host namespace has a veth `eth0` whose peer sits in the switch
namespace, enslaved to the bridge `br0`. No routes are needed beyond the on-link ones.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

V4_NET = ipaddress.IPv4Network("10.111.0.0/24")
V6_NET = ipaddress.IPv6Network("fd00:111::/64")

BRIDGE = "br0"
HOST_IFACE = "eth0"
DEFAULT_PREFIX = "pxl"

WEB_PORT = 80
WS_PORT = 80
TCP_PORT = 9000

IFNAMSIZ = 15  # usable characters in a Linux interface name
# The longest namespace name is "{prefix}-client"; keeping namespace names within
# IFNAMSIZ too means one rule covers every name the lab makes.
_LONGEST_ROLE = "client"
MAX_PREFIX_LEN = IFNAMSIZ - len(_LONGEST_ROLE) - 1
# No dash in a prefix, so "{prefix}-" never matches another lab's names.
_PREFIX_RE = re.compile(rf"[a-z][a-z0-9]{{0,{MAX_PREFIX_LEN - 1}}}")


@dataclass(frozen=True)
class Host:
    """One namespace on the bridge."""

    role: str  # "lb", "client", "web1", ...
    ns: str  # namespace name, "{prefix}-{role}"
    peer: str  # name of the bridge-side veth end in the switch namespace
    hostnums: tuple[int, ...]  # host part of each address, same in v4 and v6
    server: str | None = None  # "web", "ws" or "tcp": the program it runs
    port: int | None = None

    @property
    def iface(self) -> str:
        return HOST_IFACE

    @property
    def v4(self) -> tuple[str, ...]:
        return tuple(str(V4_NET[n]) for n in self.hostnums)

    @property
    def v6(self) -> tuple[str, ...]:
        # The v4 host number's decimal digits read as hex: .21 <-> ::21, easy to match up.
        return tuple(str(V6_NET[int(str(n), 16)]) for n in self.hostnums)

    @property
    def mac(self) -> str:
        # Fixed, locally administered MACs make captures and neighbour tables readable
        # and let datapath tests predict L2 headers.
        return f"02:00:0a:6f:00:{self.hostnums[0]:02d}"


# role -> (host numbers, server kind, port)
_HOSTS: dict[str, tuple[tuple[int, ...], str | None, int | None]] = {
    "client": ((10, 11, 12, 13), None, None),
    "lb": ((2,), None, None),
    "web1": ((21,), "web", WEB_PORT),
    "web2": ((22,), "web", WEB_PORT),
    "ws1": ((31,), "ws", WS_PORT),
    "ws2": ((32,), "ws", WS_PORT),
    "tcp1": ((41,), "tcp", TCP_PORT),
}


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it makes valid names, else raise ValueError saying what fits."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"lab prefix {prefix!r}: want 1-{MAX_PREFIX_LEN} characters of [a-z0-9] "
            f"starting with a letter, so '{prefix}-{_LONGEST_ROLE}' fits in {IFNAMSIZ}"
        )
    return prefix


class LabTopology:
    """Names and addresses of one lab instance, chosen by its prefix."""

    bridge = BRIDGE
    iface = HOST_IFACE
    v4_net = V4_NET
    v6_net = V6_NET

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_prefix(prefix)
        self.switch_ns = f"{prefix}-sw"
        self.hosts: dict[str, Host] = {
            role: Host(role, f"{prefix}-{role}", role, nums, server, port)
            for role, (nums, server, port) in _HOSTS.items()
        }

    def host(self, role: str) -> Host:
        try:
            return self.hosts[role]
        except KeyError:
            raise KeyError(f"lab role {role!r}: want one of {', '.join(self.hosts)}") from None

    def ns(self, role: str) -> str:
        """Namespace of `role`; "sw" names the switch namespace."""
        return self.switch_ns if role == "sw" else self.host(role).ns

    def addr(self, role: str, family: int = 4) -> str:
        """First address of `role` (family 4 or 6)."""
        return self.addrs(role, family)[0]

    def addrs(self, role: str, family: int = 4) -> tuple[str, ...]:
        host = self.host(role)
        return host.v6 if family == 6 else host.v4

    def port(self, role: str) -> int:
        port = self.host(role).port
        if port is None:
            raise KeyError(f"lab role {role!r} runs no server")
        return port

    def peer(self, role: str) -> str:
        """Bridge-side veth of `role`, inside `switch_ns`."""
        return self.host(role).peer

    @property
    def namespaces(self) -> list[str]:
        return [self.switch_ns, *(h.ns for h in self.hosts.values())]

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.server]

    def backends(self, kind: str) -> list[Host]:
        """Hosts running `kind` ("web", "ws" or "tcp")."""
        return [h for h in self.hosts.values() if h.server == kind]

    @property
    def client_addrs(self) -> tuple[str, ...]:
        return self.addrs("client", 4)

    @property
    def client_addrs6(self) -> tuple[str, ...]:
        return self.addrs("client", 6)

    @property
    def lb_peer(self) -> str:
        """The balancer's bridge-side veth: where a pass-through XDP program goes."""
        return self.peer("lb")
