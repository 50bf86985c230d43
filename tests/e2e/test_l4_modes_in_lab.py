"""Layer-4 services in the kernel over TCP and UDP, in both forwarding modes
(lab config l4-modes.cfg), to three servers that answer with their name and
the address they saw: with full NAT they see the balancer, with direct server
return the client, whose answers then come straight from the servers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from pyxlb.datapath import services
from pyxlb.lab.balancer import LabBalancer, lab_config
from pyxlb.lab.lab import Lab
from pyxlb.lab.servers import WHO_PORT

SERVERS = ("web1", "web2", "tcp1")
DSR_VIP = "10.111.0.100"  # l4-modes.cfg

ASK = """
import socket, sys
vip, port, proto, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for _ in range(count):
    if proto == "tcp":
        with socket.create_connection((vip, port), timeout=3) as s:
            print(s.makefile().readline().strip())
    else:
        with socket.socket(socket.AF_INET6 if ":" in vip else socket.AF_INET,
                           socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(b"who?", (vip, port))
            print(s.recv(256).decode().strip())
"""


def _spawn_who(lab: Lab, role: str) -> subprocess.Popen[bytes]:
    proc = lab.exec(role, [lab.python, "-m", "pyxlb.lab.servers", "who", "--name", role,
                           "--port", str(WHO_PORT)], stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"ready who"), f"who server in {role} failed"
    return proc


def _dsr_host_setup(lab: Lab, add: bool) -> None:
    """What DSR asks of the hosts: servers hold the VIP on their loopback and do
    not answer ARP for it; the client routes the VIP via the balancer."""
    verb = "add" if add else "del"
    for role in SERVERS:
        lab.run(role, ["ip", "addr", verb, f"{DSR_VIP}/32", "dev", "lo"], check=add)
        for conf in ("all", "eth0"):
            lab.run(role, ["sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.arp_ignore={int(add)}",
                           f"net.ipv4.conf.{conf}.arp_announce={2 * int(add)}"])
    lab.run("client", ["ip", "route", verb, f"{DSR_VIP}/32", "via", lab.topo.addr("lb")],
            check=add)


@pytest.fixture(scope="module")
def l4_modes(lab: Lab) -> Iterator[LabBalancer]:
    servers = []
    lb = LabBalancer(lab, lab_config("l4-modes"))
    try:
        servers = [_spawn_who(lab, role) for role in SERVERS]
        _dsr_host_setup(lab, add=True)
        lb.start()
        yield lb
    finally:
        lb.stop()
        _dsr_host_setup(lab, add=False)
        for proc in servers:
            proc.kill()
            proc.wait()


def ask(lab: Lab, vip: str, proto: str, count: int = 6, port: int = WHO_PORT) -> list[str]:
    argv = [lab.python, "-c", ASK, vip, str(port), proto, str(count)]
    return lab.run("client", argv).stdout.split("\n")[:-1]


def who(answers: list[str]) -> tuple[list[str], set[str]]:
    """The servers in answer order, and the addresses they saw."""
    pairs = [line.split() for line in answers]
    return [p[0] for p in pairs], {p[1] for p in pairs}


@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_full_nat_spreads_flows_over_three_servers_that_see_the_balancer(lab, l4_modes, proto,
                                                                         family):
    servers, seen = who(ask(lab, lab.topo.addr("lb", family), proto))
    assert sorted(servers) == sorted(SERVERS * 2)  # roundrobin: each twice in six
    assert seen == {lab.topo.addr("lb", family)}


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_dsr_spreads_flows_over_three_servers_that_see_the_client(lab, l4_modes, proto):
    servers, seen = who(ask(lab, DSR_VIP, proto))
    assert sorted(servers) == sorted(SERVERS * 2)
    assert seen == {lab.topo.addr("client")}


def test_dsr_flows_have_no_reply_side_on_the_balancer(lab, l4_modes):
    ask(lab, DSR_VIP, "tcp", count=3)
    ask(lab, lab.topo.addr("lb"), "tcp", count=3)

    def shown(name: str) -> list[dict]:
        return json.loads(l4_modes.cli("maps", "show", name, "--json",
                                       "-i", l4_modes.instance.name).stdout)

    flows = shown("conntrack")
    dsr = [f for f in flows if f["key"]["dst_addr"] == DSR_VIP]
    nat = [f for f in flows if f["key"]["dst_addr"] == lab.topo.addr("lb")]
    assert dsr and nat
    assert all(f["value"]["state"] & services.CONN_DSR for f in dsr)
    assert not any(f["value"]["state"] & services.CONN_DSR for f in nat)
    # Only NAT'd flows wait for replies on the balancer.
    replies = shown("nat_reverse")
    balancer = {lab.topo.addr("lb", 4), lab.topo.addr("lb", 6)}
    assert replies and {r["value"]["out_src_addr"] for r in replies} <= balancer


def test_leastconn_in_the_kernel_counts_each_flow_open_and_closed(lab, l4_modes):
    servers, _ = who(ask(lab, lab.topo.addr("lb"), "tcp", port=7001))
    assert sorted(servers) == sorted(SERVERS * 2)  # one at a time: equals take turns

    def shown(name: str) -> list[dict]:
        return json.loads(l4_modes.cli("maps", "show", name, "--json",
                                       "-i", l4_modes.instance.name).stdout)

    [service_id] = [s["value"]["id"] for s in shown("services") if s["key"]["port"] == 7001]
    numbers = {b["key"] for b in shown("backends") if b["value"]["service"] == service_id
               and b["value"]["state"]}
    counts = {f["key"]: (f["value"]["opened"], f["value"]["closed"])
              for f in shown("backend_flows") if f["key"] in numbers}
    # Each server opened 2 flows and saw both close (the client's FIN).
    assert sorted(counts.values()) == [(2, 2)] * 3


# Prints the TSval of each SYN to PORT that reaches this namespace, COUNT of them.
SYN_TSVALS = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sniffer.settimeout(10)
print("ready", flush=True)
while count:
    ip = sniffer.recv(2048)[14:]
    tcp = ip[(ip[0] & 15) * 4:]
    if ip[9] != 6 or int.from_bytes(tcp[2:4], "big") != port or tcp[13] & 0x12 != 0x02:
        continue
    options, at = tcp[20:(tcp[12] >> 4) * 4], 0
    while at < len(options) and options[at] not in (0, 8):
        at += 1 if options[at] == 1 else options[at + 1]
    if at < len(options) and options[at] == 8:
        print(int.from_bytes(options[at + 2:at + 6], "big"), flush=True)
        count -= 1
"""


def test_full_nat_servers_see_timestamps_on_the_balancers_clock(lab, l4_modes):
    """Clients start each connection's TCP timestamps at a random offset; a
    server that holds a NAT port in TIME_WAIT takes a new SYN on it only with
    a newer TSval. So the SYNs a server gets through full NAT read newer each
    time (serial arithmetic), whichever client connection they come from."""
    count = 8
    sniffer = lab.exec("web1", [lab.python, "-c", SYN_TSVALS, str(WHO_PORT), str(count)],
                       stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline() == "ready\n"
        servers, _ = who(ask(lab, lab.topo.addr("lb"), "tcp", count=3 * count))
        assert servers.count("web1") == count
        tsvals = [int(line) for line in sniffer.stdout.read().split()]
    finally:
        sniffer.kill()
        sniffer.wait()
    assert len(tsvals) == count
    steps = [(b - a) % 2**32 for a, b in zip(tsvals, tsvals[1:], strict=False)]
    assert all(0 < step < 2**31 for step in steps), tsvals
