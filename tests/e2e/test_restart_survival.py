"""A long-lived TCP connection through a layer-4 service survives `kill -9`
of `pyxlb up` and a new `pyxlb up`: the program, its link and its maps
(conntrack included) are pinned, not owned by the process."""

from __future__ import annotations

import signal
import subprocess

from pyxlb.lab.balancer import LabBalancer, lab_config

# Holds one connection to the echo service; echoes a line per line on stdin.
HOLDER = """
import socket, sys
s = socket.create_connection((sys.argv[1], 9000), timeout=5)
for line in sys.stdin:
    s.sendall(line.encode())
    got = b""
    while not got.endswith(b"\\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed")
        got += chunk
    print(got.decode().strip(), flush=True)
"""


def round_trip(holder: subprocess.Popen, text: str) -> str:
    holder.stdin.write(text + "\n")
    holder.stdin.flush()
    return holder.stdout.readline().strip()


def test_a_connection_survives_kill_9_and_a_new_up(lab):
    first = LabBalancer(lab, lab_config("tcp-nat"))
    first.start()
    holder = lab.exec("client", ["python3", "-c", HOLDER, lab.topo.addr("lb")],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    second = None
    try:
        assert round_trip(holder, "before") == "before"

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        assert round_trip(holder, "orphaned") == "orphaned"

        second = LabBalancer(lab, lab_config("tcp-nat"))
        second.start()
        assert round_trip(holder, "after restart") == "after restart"
    finally:
        holder.stdin.close()
        holder.kill()
        holder.wait()
        (second or first).stop()
