"""The runtime API of `pyxlb up` in the lab, driven by the tools operators use on
HAProxy: socat against the stats socket, hatop in a terminal, and
prometheus-haproxy-exporter scraping the stats CSV."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from runtime_cli import cli

from pyxlb.lab.balancer import LabBalancer, lab_config

EXPORTER_PORT = 9101


def stat_rows(path) -> dict[str, dict[str, str]]:
    header, *rows = cli(path, "show stat").splitlines()
    columns = header.removeprefix("# ").split(",")
    cells = [dict(zip(columns, row.split(","), strict=False)) for row in rows if row]
    return {c["svname"]: c for c in cells if c["pxname"] == "http_back"}


def served_by(lab, source: str | None = None) -> str:
    bind = ["--interface", source] if source else []
    return lab.run("client", ["curl", "-s", "-m", "2", *bind, "-o", "/dev/null", "-w",
                              "%header{x-server}", f"http://{lab.topo.addr('lb')}/"]).stdout


@pytest.fixture
def sock(stats_socket):
    return stats_socket


@pytest.fixture
def balancer(lab, sock):
    lb = LabBalancer(lab, lab_config("runtime"))
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()


def test_socat_drives_servers_in_both_directions(lab, balancer, sock):
    assert oct(sock.stat().st_mode & 0o777) == "0o600"  # `mode 600`
    assert stat_rows(sock)["web1"]["status"] == "no check"
    assert {served_by(lab) for _ in range(4)} == {"web1", "web2"}

    assert cli(sock, "disable server http_back/web1") == "\n"
    assert stat_rows(sock)["web1"]["status"] == "MAINT"
    assert [served_by(lab) for _ in range(4)] == ["web2"] * 4

    assert cli(sock, "set server http_back/web2 state drain") == "\n"
    assert stat_rows(sock)["web2"]["status"] == "DRAIN"
    # No active server takes new traffic: the backup does.
    assert [served_by(lab) for _ in range(2)] == ["ws1"] * 2  # 10.111.0.31

    assert cli(sock, "set server http_back/web2 state ready; enable server http_back/web1") \
        == "\n\n"
    assert {served_by(lab) for _ in range(4)} == {"web1", "web2"}

    assert cli(sock, "set weight http_back/web1 0") == "\n"
    assert cli(sock, "get weight http_back/web1") == "0 (initial 1)\n\n"
    assert [served_by(lab) for _ in range(3)] == ["web2"] * 3
    assert cli(sock, "set weight http_back/web1 100%") == "\n"

    assert cli(sock, "get weight http_back/web9") == "No such server.\n\n"
    assert cli(sock, "nonsense").startswith("Unknown command.")
    assert "pyxlb: Server http_back/web1 is MAINT" in balancer.log()


def test_show_and_clear_table_read_the_kernel_entries(lab, balancer, sock):
    source = lab.topo.client_addrs[1]
    served_by(lab, source)
    lines = cli(sock, "show table http_front").splitlines()
    assert lines[0].startswith("# table: http_front, type: ip, size:102400, used:")
    entry = next(line for line in lines[1:] if f"key={source} " in line)
    assert " use=0 exp=" in entry and " gpc0=0 conn_rate(10000)=1" in entry
    assert cli(sock, f"show table http_front key {source}").count("key=") == 1

    assert cli(sock, f"clear table http_front key {source}") == "\n"
    assert f"key={source} " not in cli(sock, "show table http_front")
    assert cli(sock, "show table nope") == "No such table\n\n"


@pytest.mark.skipif(shutil.which("hatop") is None or shutil.which("tmux") is None,
                    reason="hatop and tmux are installed by tools/setup.sh")
def test_hatop_renders_the_servers(lab, balancer, sock, tmp_path):
    cli(sock, "disable server http_back/web2")
    session = f"pyxlb-hatop-{lab.topo.prefix}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50",
                    f"hatop -s {sock}"], check=True)
    try:
        screen = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True, check=True).stdout
            if "backup1" in screen:
                break
            time.sleep(0.2)
        rows = {line.split()[0].strip("|>"): line for line in screen.splitlines()
                if line.split() and line.split()[0].strip("|>") in
                ("web1", "web2", "backup1")}
        assert set(rows) == {"web1", "web2", "backup1"}, screen
        # hatop writes "no check" as "-".
        assert rows["web2"].split()[2] == "MAINT", screen
        assert rows["web1"].split()[2] == "-", screen
        assert "pyxlb" in screen, screen  # hatop's header shows `show info`'s Name
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


@pytest.mark.skipif(shutil.which("prometheus-haproxy-exporter") is None,
                    reason="prometheus-haproxy-exporter is installed by tools/setup.sh")
def test_prometheus_haproxy_exporter_reports_the_servers(lab, balancer, sock):
    cli(sock, "set server http_back/web1 state maint")
    client = lab.topo.addr("client")
    exporter = lab.exec("client", [
        "prometheus-haproxy-exporter",
        f"--haproxy.scrape-uri=http://{lab.topo.addr('lb')}/haproxy?stats;csv",
        f"--web.listen-address={client}:{EXPORTER_PORT}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        metrics = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "haproxy_up" not in metrics:
            metrics = lab.run("client", ["curl", "-s", "-m", "2",
                                         f"http://{client}:{EXPORTER_PORT}/metrics"],
                              check=False).stdout
            time.sleep(0.2)
        lines = set(metrics.splitlines())
        assert "haproxy_up 1" in lines, metrics
        assert 'haproxy_server_up{backend="http_back",server="web1"} 0' in lines
        assert 'haproxy_server_up{backend="http_back",server="web2"} 1' in lines
        assert 'haproxy_backend_up{backend="http_back"} 1' in lines
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)


def stats_listener(lab, *args: str, path: str = "/") -> str:
    """curl from the client to the protected `listen stats` (port 8404); text,
    so header lines end in "\\n"."""
    return lab.run("client", ["curl", "-s", "-m", "2", *args,
                              f"http://{lab.topo.addr('lb')}:8404{path}"]).stdout


def test_the_stats_listener_asks_for_credentials_and_takes_admin_forms(lab, balancer, sock):
    refused = stats_listener(lab, "-i")
    assert refused.startswith("HTTP/1.1 401 Unauthorized\n")
    assert 'www-authenticate: Basic realm="Haproxy Statistics"\n' in refused

    csv = stats_listener(lab, "-i", "-u", "admin:secret", path="/;csv")
    assert "\nrefresh: 10\n" in csv and "\nhttp_back,web1," in csv

    # The page's form, as a browser posts it: the servers, the action, the backend.
    posted = stats_listener(lab, "-i", "-u", "admin:secret", "--data-raw",
                            "s=web1&action=maint&b=http_back")
    assert posted.startswith("HTTP/1.1 303 See Other\n")
    assert "\nlocation: /;st=DONE\n" in posted
    assert stat_rows(sock)["web1"]["status"] == "MAINT"
    assert [served_by(lab) for _ in range(3)] == ["web2"] * 3

    metrics = stats_listener(lab, path="/metrics")
    assert 'haproxy_server_status{proxy="http_back",server="web1",state="MAINT"} 1\n' in metrics
    assert 'haproxy_server_status{proxy="http_back",server="web2",state="UP"} 1\n' in metrics


ECHO = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], 9000), timeout=2) as s:
        s.sendall(b"ping\\n")
        print(s.recv(64).decode().strip())
except OSError as exc:
    print(type(exc).__name__)
"""


def test_kernel_tier_flows_count_and_its_server_obeys_the_socket(lab, balancer, sock):
    echo = [lab.python, "-c", ECHO, lab.topo.addr("lb")]
    assert [lab.run("client", echo).stdout.strip() for _ in range(2)] == ["ping"] * 2
    header, *rows = cli(sock, "show stat").splitlines()
    columns = header.removeprefix("# ").split(",")
    cells = {(c["pxname"], c["svname"]): c for c in
             (dict(zip(columns, row.split(","), strict=False)) for row in rows if row)}
    assert cells[("tcp_echo", "FRONTEND")]["stot"] == "2"
    assert cells[("tcp_echo", "tcp1")]["stot"] == "2"
    assert cells[("tcp_echo", "BACKEND")]["stot"] == "2"
    # Payload bytes, as haproxy counts a tcp proxy's: "ping\n" each way, twice.
    for row in ("FRONTEND", "tcp1", "BACKEND"):
        assert (cells[("tcp_echo", row)]["bin"], cells[("tcp_echo", row)]["bout"]) == ("10", "10")
    metrics = stats_listener(lab, path="/metrics")
    assert 'haproxy_server_sessions_total{proxy="tcp_echo",server="tcp1"} 2\n' in metrics

    assert cli(sock, "disable server tcp_echo/tcp1") == "\n"
    assert lab.run("client", echo).stdout.strip() != "ping"
    assert cli(sock, "enable server tcp_echo/tcp1") == "\n"
    assert lab.run("client", echo).stdout.strip() == "ping"
