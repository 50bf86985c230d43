"""The tutorial's `observe layer4` example, served in the kernel
(observe.cfg): when db1's process dies, the SYNs it refuses are observed by
the datapath, each is a failed check (`error-limit 1`), and after `fall 3` of
them new connections go to the backup db2, long before the next 2-minute
check."""

from __future__ import annotations

import time

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config

PORT = 3306
# One connection attempt: `refused`, or the first bytes of the answer.
ATTEMPT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        s.settimeout(2)
        sys.stdout.write(repr(s.recv(64)))
except ConnectionRefusedError:
    sys.stdout.write("refused")
except OSError as exc:
    sys.stdout.write(f"error {exc}")
"""


@pytest.fixture(scope="module")
def observed(lab):
    lb = LabBalancer(lab, lab_config("observe"))
    lb.start()
    yield lb
    lb.stop()


def attempt(lab) -> str:
    return lab.run("client", [lab.python, "-c", ATTEMPT, lab.topo.addr("lb"),
                              str(PORT)]).stdout


def test_refused_connections_send_new_ones_to_the_backup_within_seconds(lab, observed):
    assert attempt(lab).startswith("b'GET /")  # db1, the echo server, is up
    lab.stop_server("tcp1")
    try:
        start = time.monotonic()
        outcomes = [attempt(lab)]
        assert outcomes[0] == "refused"
        while not outcomes[-1].startswith("b'HTTP/"):
            assert time.monotonic() - start < 5, (outcomes, observed.log())
            outcomes.append(attempt(lab))
        # fall 3 refusals make db1 DOWN; no 2-minute check was needed.
        assert outcomes.count("refused") >= 3, outcomes
        while "Server msql_databases/db1 is DOWN" not in observed.log():
            assert time.monotonic() - start < 6, observed.log()
            time.sleep(0.05)
    finally:
        lab.start_server("tcp1")
