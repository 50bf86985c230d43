"""Fixtures shared by all tests: `lab`, one network-namespace lab for the session;
`pyxlb_up`, the real daemon on a lab configuration; `syslog`, a socket it logs to;
`stats_socket`, where its runtime API listens."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config
from pyxlb.lab.lab import Lab, lab_unavailable, reap_stale_labs, unique_prefix

# Prefix bases of labs made by tests ("pt" + pid): the session lab and tests' own labs.
TEST_LAB_BASES = ("pt", "pc")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The lab, up, under a prefix unique to this run; torn down whatever happens."""
    if reason := lab_unavailable():
        pytest.skip(reason)
    reap_stale_labs(*TEST_LAB_BASES)
    the_lab = Lab(unique_prefix("pt"))
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def pyxlb_up(lab: Lab) -> Iterator[Callable[..., LabBalancer]]:
    """Starts `pyxlb up` in the lab's balancer on a lab configuration
    (`pyxlb_up("abusers")`, LabBalancer's options as keywords); stopped after
    the test, whatever happens."""
    started: list[LabBalancer] = []

    def start(config: str, **options: str) -> LabBalancer:
        balancer = LabBalancer(lab, lab_config(config), **options)
        started.append(balancer)
        balancer.start()
        return balancer

    yield start
    for balancer in reversed(started):
        balancer.stop()


@pytest.fixture
def syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A unix datagram socket standing in for /dev/log: the lab configurations
    log to "${PYXLB_LOG_SOCKET-/dev/log}"."""
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("PYXLB_LOG_SOCKET", str(path))
    yield sock
    sock.close()


@pytest.fixture
def stats_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the runtime API listens: the lab configurations put their `stats
    socket` at "${PYXLB_STATS_SOCKET-/run/pyxlb-lab.sock}"."""
    path = tmp_path / "pyxlb.sock"
    monkeypatch.setenv("PYXLB_STATS_SOCKET", str(path))
    return path
