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
