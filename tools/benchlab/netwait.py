"""Waiting, from inside the lab, until something accepts TCP connections."""

from __future__ import annotations

from pyxlb.lab.lab import Lab

# The probe runs in the tcp1 namespace: its address is no client source, so the
# probes never count in the client addresses' connection rates.
PROBE_ROLE = "tcp1"
_WAIT = """
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        break
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"{host}:{port}: {e}")
        time.sleep(0.05)
"""


def wait_listening(lab: Lab, host: str, port: int, timeout: float = 10.0) -> None:
    res = lab.run(PROBE_ROLE, [lab.python, "-c", _WAIT, host, str(port), str(timeout)],
                  check=False, timeout=timeout + 10)
    if res.returncode:
        raise RuntimeError(f"nothing accepts connections at {host}:{port} after "
                           f"{timeout:.0f}s: {res.stderr.strip()}")
