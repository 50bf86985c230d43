"""The log lines of the runtime API's server changes, side by side: the real
HAProxy 2.6 and `pyxlb up` in the lab's balancer on the same config, the same
commands on each one's stats socket, the same syslog lines (priority and
message) in the same order."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from side_by_side import BALANCERS, running

from pyxlb.lab.lab import Lab

CONFIG = """\
global
    log {log} local0
    stats socket {cli} mode 600 level admin

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend stats
    bind *:8404
    no log
    stats uri /haproxy?stats

frontend fe
    bind *:8001
    default_backend be

backend be
    server web1 {web1}:80
    server web2 {web2}:80 check inter 1s
"""
COMMANDS = (
    "set server be/web1 state maint",
    "set server be/web1 state ready",
    "set server be/web1 state drain",
    "set server be/web1 state ready",
    "disable server be/web2",
    "enable server be/web2",
    "set server be/web2 state maint",
    "set server be/web1 state maint",  # the last one: no server left
    "set server be/web1 state ready",
    "set server be/web2 state ready",
)


def command(path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def logged(sink: socket.socket) -> list[str]:
    """What reached the log socket since the last call: `<pri> message` each."""
    lines = []
    try:
        while True:
            datagram = sink.recv(65536).decode()
            lines.append(datagram[:datagram.index(">") + 1] + " "
                         + datagram.split("]: ", 1)[1].strip())
    except TimeoutError:
        return lines


def test_runtime_api_server_changes_log_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    seen = {}
    for who in BALANCERS:
        log, cli = tmp_path / f"{who}.log", tmp_path / f"{who}.sock"
        config = tmp_path / f"{who}.cfg"
        config.write_text(CONFIG.format(log=log, cli=cli, web1=lab.topo.addr("web1"),
                                        web2=lab.topo.addr("web2")))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
            sink.bind(str(log))
            sink.settimeout(0.5)
            with running(lab, who, config, [8404]):
                time.sleep(1.5)  # web2's first check has passed: no change of state
                logged(sink)
                seen[who] = [(line, command(cli, line), logged(sink)) for line in COMMANDS]
    for theirs, ours in zip(seen["haproxy"], seen["pyxlb"], strict=True):
        assert ours == theirs
    # It says something: one line per change, and the backend's end once.
    assert sum(len(lines) for _, _, lines in seen["pyxlb"]) == len(COMMANDS) + 1
