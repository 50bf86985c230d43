"""The routed reference: its routes, settings and counters worked out without a
network, then the real thing in the lab, forwarding through the balancer's
namespace and leaving nothing behind, even when it fails half-way."""

from __future__ import annotations

import subprocess

import pytest
from benchlab.netstat import read_counters
from benchlab.routed import (
    FORWARDED,
    REDIRECTS,
    HostRoute,
    forwarding_sysctls,
    hop_note,
    route_plan,
    routed_via,
)

from pyxlb.lab.topology import LabTopology


def test_the_client_goes_to_each_server_and_each_server_to_every_client_address_via_lb():
    topo = LabTopology("t")
    plan = route_plan(topo, "client", ["web1", "web2"], "lb")
    assert plan[:2] == [HostRoute("client", "10.111.0.21", "10.111.0.2"),
                        HostRoute("client", "10.111.0.22", "10.111.0.2")]
    back = plan[2:]
    assert {r.role for r in back} == {"web1", "web2"}
    assert sorted(r.dest for r in back if r.role == "web2") == list(topo.client_addrs)
    assert all(r.via == "10.111.0.2" for r in back) and len(back) == 2 * 4


def test_forwarding_goes_on_and_redirects_off_for_all_and_the_interface():
    assert sorted(forwarding_sysctls("eth0")) == [
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.conf.eth0.send_redirects", "0"),
        ("net.ipv4.ip_forward", "1")]


def counts(forwarded: int, redirects: int = 0) -> dict[str, int]:
    return {FORWARDED: forwarded, REDIRECTS: redirects}


def test_the_hop_note_gives_datagrams_per_request_and_redirects():
    note = hop_note("lb", counts(100), counts(100 + 4500, 2), 1000)
    assert note == "lb forwarded 4500 datagrams (4.5/request), sent 2 ICMP redirects"


@pytest.mark.parametrize("forwarded, requests", [(0, None), (0, 10), (19, 10)])
def test_too_few_forwarded_datagrams_say_the_traffic_did_not_all_take_the_hop(
        forwarded, requests):
    assert hop_note("lb", counts(7), counts(7 + forwarded), requests).startswith(
        "NOT all through lb: ")


# -- in the lab -----------------------------------------------------------------------


def sysctl(lab, key: str) -> str:
    return lab.run("lb", ["sysctl", "-n", key]).stdout.strip()


def lab_state(lab) -> tuple[list[str], dict[str, str]]:
    """The client's and the web servers' routes via a gateway, and lb's settings."""
    routes = [f"{role}: {line}" for role in ("client", "web1", "web2")
              for line in lab.run(role, ["ip", "-4", "route", "show"]).stdout.splitlines()
              if "via" in line]
    return routes, {k: sysctl(lab, k) for k, _ in forwarding_sysctls(lab.topo.iface)}


def fetch(lab, role: str) -> None:
    url = f"http://{lab.topo.addr(role)}:{lab.topo.port(role)}/"
    lab.run("client", ["curl", "-sf", "-m", "3", "-o", "/dev/null", url])


def test_routed_traffic_is_forwarded_by_lb_and_everything_is_undone_after(lab):
    untouched = lab_state(lab)
    before = read_counters(lab, "lb")
    fetch(lab, "web1")
    assert read_counters(lab, "lb")[FORWARDED] == before[FORWARDED]  # on-link: no hop
    with routed_via(lab, "lb", "client", ["web1", "web2"]):
        assert sysctl(lab, "net.ipv4.ip_forward") == "1"
        got = lab.run("client", ["ip", "route", "get", lab.topo.addr("web2")]).stdout
        assert f"via {lab.topo.addr('lb')}" in got
        before = read_counters(lab, "lb")
        for _ in range(3):
            fetch(lab, "web1")
            fetch(lab, "web2")
        after = read_counters(lab, "lb")
    assert hop_note("lb", before, after, 6).endswith(", sent 0 ICMP redirects")
    assert not hop_note("lb", before, after, 6).startswith("NOT")
    assert lab_state(lab) == untouched


def test_a_failure_half_way_undoes_what_was_done(lab):
    untouched = lab_state(lab)
    # A route that is already there: adding it again fails, after the client's.
    clash = ["route", f"{lab.topo.client_addrs[0]}/32", "via", lab.topo.addr("lb")]
    lab.run("web2", ["ip", *clash[:1], "add", *clash[1:]])
    try:
        with pytest.raises(subprocess.CalledProcessError), \
                routed_via(lab, "lb", "client", ["web1", "web2"]):
            pytest.fail("routed_via went on past a route it could not add")
    finally:
        lab.run("web2", ["ip", *clash[:1], "del", *clash[1:]])
    assert lab_state(lab) == untouched


def test_an_error_inside_undoes_everything(lab):
    untouched = lab_state(lab)
    with pytest.raises(KeyboardInterrupt), routed_via(lab, "lb", "client", ["web1"]):
        raise KeyboardInterrupt
    assert lab_state(lab) == untouched
