"""The lab's topology and the `ip` commands made from it (pure, no root needed)."""

from __future__ import annotations

import pytest

from pyxlb.lab.lab import host_batch, switch_batch, unique_prefix
from pyxlb.lab.topology import IFNAMSIZ, MAX_PREFIX_LEN, LabTopology, check_prefix


def test_every_name_fits_ifnamsiz_at_the_longest_prefix() -> None:
    topo = LabTopology("a" * MAX_PREFIX_LEN)
    names = [*topo.namespaces, topo.bridge]
    names += [n for h in topo.hosts.values() for n in (h.peer, h.iface)]
    assert max(len(n) for n in names) <= IFNAMSIZ


@pytest.mark.parametrize("prefix", ["", "a" * (MAX_PREFIX_LEN + 1), "pxl-x", "Pxl", "1ab"])
def test_bad_prefixes_are_refused_with_the_rule(prefix: str) -> None:
    with pytest.raises(ValueError, match="fits in 15"):
        check_prefix(prefix)


def test_unique_prefix_encodes_the_pid() -> None:
    assert check_prefix(unique_prefix("pt")).startswith("pt")
    assert unique_prefix("pc", pid=4194304) == "pc2hwcg"  # pid_max at its largest
    assert int(unique_prefix("pt", pid=1234)[2:], 36) == 1234


def test_addresses_and_names() -> None:
    topo = LabTopology("pxl")
    assert topo.ns("lb") == "pxl-lb"
    assert topo.ns("sw") == topo.switch_ns == "pxl-sw"
    assert topo.addr("lb") == "10.111.0.2"
    assert topo.addr("lb", 6) == "fd00:111::2"
    assert topo.addr("web2", 6) == "fd00:111::22"
    assert topo.client_addrs == ("10.111.0.10", "10.111.0.11", "10.111.0.12", "10.111.0.13")
    assert topo.client_addrs6 == tuple(f"fd00:111::1{i}" for i in range(4))
    assert [h.role for h in topo.backends("web")] == ["web1", "web2"]
    assert [h.role for h in topo.backends("ws")] == ["ws1", "ws2"]
    assert topo.port("tcp1") == 9000
    assert topo.lb_peer == "lb"
    assert topo.host("web1").mac == "02:00:0a:6f:00:21"
    with pytest.raises(KeyError, match="want one of"):
        topo.ns("nope")


def test_switch_batch_never_leaves_an_interface_in_the_root_namespace() -> None:
    topo = LabTopology("pxl")
    veths = [line for line in switch_batch(topo) if "type veth" in line]
    assert len(veths) == len(topo.hosts)
    for host in topo.hosts.values():
        line = f"link add {host.peer} type veth peer name eth0 address {host.mac} netns {host.ns}"
        assert line in veths


def test_host_batch_v6_without_dad_and_first_address_preferred() -> None:
    topo = LabTopology("pxl")
    lines = host_batch(topo.host("client"), topo)
    assert "addr add 10.111.0.13/24 dev eth0" in lines
    assert "addr add fd00:111::10/64 dev eth0 nodad" in lines
    assert "addr add fd00:111::13/64 dev eth0 nodad preferred_lft 0" in lines
    assert lines[0] == "link set lo up" and lines[-1] == "link set eth0 up"
