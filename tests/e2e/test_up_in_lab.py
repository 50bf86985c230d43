"""The walking skeleton end to end: `pyxlb up` in the lab's balancer
namespace with XDP on its eth0, real HTTP clients in the client namespace,
the maps read from another process, and nothing left after `down`."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from pyxlb.lab.balancer import BalancerError, LabBalancer, lab_config

REQUESTS = 10
# 20 UDP datagrams to the balancer over 2 s (nobody listens: XDP counts them).
TRICKLE = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20):
    s.sendto(b"x", ("{vip}", 9))
    time.sleep(0.1)
"""
# Holds the balancer's port 80 (SO_REUSEADDR: earlier tests leave TIME_WAITs).
SQUATTER = """
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{vip}", 80))
s.listen()
print("ok", flush=True)
time.sleep(60)
"""


def xdp_on(lab, role: str = "lb") -> str:
    """`ip link` of the role's eth0: shows `xdp`/`xdpgeneric` while attached."""
    return lab.run(role, ["ip", "-d", "link", "show", "eth0"]).stdout


def curl_server(lab, url: str) -> str:
    out = lab.run("client", ["curl", "-s", "-m", "5", "-o", "/dev/null",
                             "-w", "%{http_code} %header{x-server}", url]).stdout
    return out.strip()


def stats_csv(lab) -> dict[tuple[str, str], dict[str, str]]:
    vip = lab.topo.addr("lb")
    text = lab.run("client", ["curl", "-s", "-m", "5", f"http://{vip}/haproxy?stats;csv"]).stdout
    header, *rows = text.splitlines()
    columns = header.lstrip("# ").split(",")
    table = {}
    for row in rows:
        cells = dict(zip(columns, row.split(","), strict=False))
        table[(cells["pxname"], cells["svname"])] = cells
    return table


@pytest.fixture
def balancer(pyxlb_up):
    return pyxlb_up("basic")


def test_round_robin_counts_and_clean_down(lab, balancer):
    vip = lab.topo.addr("lb")
    assert "xdp" in xdp_on(lab)

    answers = [curl_server(lab, f"http://{vip}/") for _ in range(REQUESTS)]
    assert answers == ["200 web1", "200 web2"] * (REQUESTS // 2)

    # The per-source map, read by a separate `pyxlb maps show` process.
    shown = balancer.cli("maps", "show", "src_stats", "--json", "-i", balancer.instance.name)
    entries = {e["key"]["addr"]: e["value"] for e in json.loads(shown.stdout)}
    client = lab.topo.addr("client")
    assert entries[client]["syns"] == REQUESTS
    assert entries[client]["packets"] >= REQUESTS * 5

    listed = balancer.cli("maps", "list", "--json", "-i", balancer.instance.name)
    by_name = {m["name"]: m for m in json.loads(listed.stdout)}
    assert by_name["src_stats"]["type"] == "lru_percpu_hash"
    assert by_name["src_stats"]["entries"] >= 1

    stats = stats_csv(lab)
    assert stats[("http_back", "web1")]["stot"] == "5"
    assert stats[("http_back", "web2")]["stot"] == "5"

    down = balancer.cli("down", "-i", balancer.instance.name)
    assert "stopped" in down.stdout
    assert balancer.proc.wait(timeout=15) == 0
    assert "xdp" not in xdp_on(lab)
    assert not balancer.instance.pin_dir.exists()
    assert not balancer.instance.run_dir.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_detaches_and_unpins(lab, signum):
    lb = LabBalancer(lab, lab_config("basic"), xdp_mode="generic")
    lb.start()
    try:
        assert "xdpgeneric" in xdp_on(lab)
        lb.proc.send_signal(signum)
        assert lb.proc.wait(timeout=15) == 0
        assert "xdp" not in xdp_on(lab)
        assert not lb.instance.pin_dir.exists()
    finally:
        lb.stop()


def test_failed_start_leaves_nothing_attached(lab):
    # Something already holds the balancer's port 80: the listener fails
    # after XDP was attached, and the attach must be undone.
    vip = lab.topo.addr("lb")
    squatter = lab.exec("lb", ["python3", "-c", SQUATTER.format(vip=vip)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert squatter.stdout.readline().strip() == b"ok", squatter.stderr.read()
        lb = LabBalancer(lab, lab_config("basic"))
        with pytest.raises(BalancerError, match="cannot listen"):
            lb.start()
        assert lb.proc.wait(timeout=15) == 1
        assert "xdp" not in xdp_on(lab)
        assert not lb.instance.pin_dir.exists()
    finally:
        squatter.kill()
        squatter.wait()


def test_unknown_interface_is_a_clear_error(lab):
    lb = LabBalancer(lab, lab_config("basic"))
    result = lb.cli("up", "--netns", lab.topo.ns("lb"), "iface", "nosuch0",
                    "-f", str(lb.config), check=False)
    assert result.returncode == 1
    assert "no interface 'nosuch0'" in result.stderr
    assert not (lb.instance.pin_dir.parent / f"nosuch0@{lab.topo.ns('lb')}").exists()


def curl_from(lab, source: str) -> str:
    vip = lab.topo.addr("lb")
    out = lab.run("client", ["curl", "-s", "-m", "2", "--interface", source, "-o", "/dev/null",
                             "-w", "%{http_code}", f"http://{vip}/"], check=False).stdout
    return out.strip()


def test_block_list_drops_a_source_from_the_next_packet(lab, balancer):
    name = balancer.instance.name
    blocked, spared = lab.topo.client_addrs[3], lab.topo.client_addrs[2]
    assert curl_from(lab, blocked) == "200"

    balancer.cli("block", "add", blocked, "-i", name)
    assert curl_from(lab, blocked) == "000"
    assert curl_from(lab, spared) == "200"
    listed = json.loads(balancer.cli("block", "list", "--json", "-i", name).stdout)
    assert listed == [{"network": f"{blocked}/32", "expires_in_s": None}]
    counters = json.loads(balancer.cli("maps", "show", "dp_counters", "--json",
                                       "-i", name).stdout)
    assert counters[0]["value"]["blocked"] >= 1

    balancer.cli("block", "del", blocked, "-i", name)
    assert curl_from(lab, blocked) == "200"


def test_timed_block_expires(lab, balancer):
    name = balancer.instance.name
    source = lab.topo.client_addrs[1]
    balancer.cli("block", "add", f"{source}/32", "--for", "1500ms", "-i", name)
    assert curl_from(lab, source) == "000"
    deadline = time.monotonic() + 10
    while curl_from(lab, source) != "200":
        assert time.monotonic() < deadline, "the timed block never ended"


def test_block_cli_rejects_bad_input(lab, balancer):
    name = balancer.instance.name
    bad = balancer.cli("block", "add", "10.111.0.1/24", "-i", name, check=False)
    assert bad.returncode == 2
    assert "is not an address or network" in bad.stderr
    bad_time = balancer.cli("block", "add", "10.111.0.13", "--for", "soon", "-i", name,
                            check=False)
    assert bad_time.returncode == 2 and "is not a time" in bad_time.stderr
    missing = balancer.cli("block", "del", "10.111.0.99", "-i", name, check=False)
    assert missing.returncode == 1 and "not on the block list" in missing.stderr


def test_allow_list_overrides_the_block_list(lab, balancer):
    name = balancer.instance.name
    allowed, blocked = lab.topo.client_addrs[2], lab.topo.client_addrs[3]
    balancer.cli("block", "add", f"{allowed}/31", "-i", name)
    balancer.cli("allow", "add", allowed, "-i", name)
    try:
        assert curl_from(lab, allowed) == "200"
        assert curl_from(lab, blocked) == "000"
    finally:
        balancer.cli("block", "del", f"{allowed}/31", "-i", name)
        balancer.cli("allow", "del", allowed, "-i", name)


def test_maps_dump_and_watch_from_another_process(lab, balancer):
    name = balancer.instance.name
    client = lab.topo.addr("client")
    assert curl_from(lab, client) == "200"
    dump = json.loads(balancer.cli("maps", "dump", "--json", "-i", name).stdout)
    assert set(dump) >= {"src_stats", "dp_counters", "block_list", "allow_list"}
    assert client in {e["key"]["addr"] for e in dump["src_stats"]}

    # Datagrams keep the client's counters growing while the watcher reads twice.
    pinger = lab.exec("client", ["python3", "-c", TRICKLE.format(vip=lab.topo.addr("lb"))])
    watcher = balancer.cli("maps", "watch", "src_stats", "--addr", client, "--interval",
                           "0.5", "--count", "2", "-i", name)
    pinger.wait(timeout=10)
    assert f"addr={client}" in watcher.stdout and "packets/s=" in watcher.stdout
