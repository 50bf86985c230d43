"""Layer-4 services in the lab: `mode tcp` listens (tcp-nat.cfg) served by
XDP with full NAT. Real TCP clients in the client namespace reach the
servers through the balancer's address; the servers see the balancer's
address as the source; the flows are in conntrack, read from another process."""

from __future__ import annotations

import json
import time

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config

ECHO = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
    s.sendall(b"hello through the kernel\\n")
    got = b""
    while not got.endswith(b"\\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    sys.stdout.write(got.decode())
"""


@pytest.fixture(scope="module")
def l4(lab):
    lb = LabBalancer(lab, lab_config("tcp-nat"))
    lb.start()
    yield lb
    lb.stop()


def http_via_l4(lab, path: str = "/") -> dict[str, str]:
    """A request to web_l4 (port 8080): status, the server and the address it saw."""
    out = lab.run("client", ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                             "%{http_code} %header{x-server} %header{x-client-addr}",
                             f"http://{lab.topo.addr('lb')}:8080{path}"]).stdout.split()
    return dict(zip(("status", "server", "client_addr"), out, strict=False))


def test_an_echo_round_trip_goes_through_the_vip(lab, l4):
    out = lab.run("client", [lab.python, "-c", ECHO, lab.topo.addr("lb"), "9000"])
    assert out.stdout == "hello through the kernel\n"
    # up turns forwarding on (and says so, when it was off: an earlier test
    # on this lab may have done it already).
    assert lab.run("lb", ["sysctl", "-n", "net.ipv4.conf.eth0.forwarding"]).stdout.strip() == "1"


def test_http_through_the_l4_service_alternates_and_servers_see_the_balancer(lab, l4):
    answers = [http_via_l4(lab) for _ in range(6)]
    assert {a["status"] for a in answers} == {"200"}
    # roundrobin: each new flow takes the next server.
    servers = [a["server"] for a in answers]
    assert set(servers) == {"web1", "web2"}
    assert all(a != b for a, b in zip(servers, servers[1:], strict=False))
    assert {a["client_addr"] for a in answers} == {lab.topo.addr("lb")}


def test_the_flows_are_in_conntrack(lab, l4):
    lab.run("client", [lab.python, "-c", ECHO, lab.topo.addr("lb"), "9000"])
    http_via_l4(lab)
    flows = json.loads(l4.cli("maps", "show", "conntrack", "--json",
                              "-i", l4.instance.name).stdout)
    text = json.dumps(flows)
    client = lab.topo.client_addrs[0]
    assert client in text
    assert "10.111.0.41" in text and ("10.111.0.21" in text or "10.111.0.22" in text)


def test_a_dead_server_leaves_the_service_and_returns(lab, l4):
    lab.stop_server("web2")
    try:
        deadline = time.monotonic() + 2 * 0.5 + 2  # fall x inter, + slack
        while "Server web_l4/web2 is DOWN" not in l4.log():
            assert time.monotonic() < deadline, l4.log()
            time.sleep(0.05)
        assert [http_via_l4(lab)["server"] for _ in range(4)] == ["web1"] * 4
    finally:
        lab.start_server("web2")
    deadline = time.monotonic() + 2 * 0.5 + 2
    while "Server web_l4/web2 is UP" not in l4.log():
        assert time.monotonic() < deadline, l4.log()
        time.sleep(0.05)
    assert {http_via_l4(lab)["server"] for _ in range(4)} == {"web1", "web2"}


def test_a_client_the_balancer_has_no_neighbour_entry_for_is_answered(lab, l4):
    # XDP cannot resolve a MAC: the reply goes to the stack rewritten (its
    # source the VIP, one of our own addresses), which must forward it.
    client = lab.topo.client_addrs[2]
    lab.run("lb", ["ip", "neigh", "flush", "to", client])
    code = ECHO.replace("timeout=3)", f"timeout=3, source_address=('{client}', 0))")
    out = lab.run("client", [lab.python, "-c", code, lab.topo.addr("lb"), "9000"])
    assert out.stdout == "hello through the kernel\n"
    counters = json.loads(l4.cli("maps", "show", "dp_counters", "--json",
                                 "-i", l4.instance.name).stdout)
    assert sum(row["value"]["fib_no_neigh"] for row in counters) >= 1
