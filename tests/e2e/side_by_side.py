"""The real HAProxy 2.6 or `pyxlb up` in a lab's balancer namespace, on one
config: what the side-by-side tests compare."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pyxlb.lab.balancer import LabBalancer
from pyxlb.lab.lab import Lab

TOOLS = str(Path(__file__).resolve().parents[2] / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from benchlab.haproxy import HaproxyInLab  # noqa: E402 (tools/ is not a package)

BALANCERS = ("haproxy", "pyxlb")


@contextmanager
def running(lab: Lab, who: str, config: Path, ports: Sequence[int]) -> Iterator[None]:
    """`who` ("haproxy" or "pyxlb") serving `config` while in the block. `ports`:
    where haproxy is awaited (pyxlb says itself when it is ready)."""
    runner = HaproxyInLab(lab, config, list(ports)) if who == "haproxy" else LabBalancer(
        lab, config)
    runner.start()
    try:
        yield
    finally:
        runner.stop()


def raw_answer(lab: Lab, port: int, payload: bytes) -> bytes:
    """What the balancer answers ``payload`` sent to ``port`` from the client
    namespace: up to its close or the last chunk (a keep-alive answer)."""
    script = ("import socket,sys\n"
              "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5)\n"
              "s.sendall(bytes.fromhex(sys.argv[3])); d=b''\n"
              "while not d.endswith(b'\\r\\n0\\r\\n\\r\\n'):\n"
              "    c=s.recv(65536)\n"
              "    if not c: break\n"
              "    d+=c\n"
              "sys.stdout.write(d.hex())\n")
    out = lab.run("client", [lab.python, "-c", script, lab.topo.addr("lb"), str(port),
                             payload.hex()]).stdout
    return bytes.fromhex(out)
