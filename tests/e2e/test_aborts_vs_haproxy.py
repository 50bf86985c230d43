"""Failed and aborted exchanges, side by side: the real HAProxy 2.6 and `pyxlb
up` in the lab's balancer run the same config against a server that misbehaves
on purpose (misbehaving_backend.py), and a client that leaves half-way
(abort_client.py). After each scenario the stats CSV's eresp, cli_abrt and
srv_abrt of the frontends, the backend and its server must have moved as
HAProxy's did, and the log must end the request with the same status and
termination flags.

Each scenario runs through a frontend that logs and one that does not (the
counts must not depend on a log), except the one that needs a short `timeout
client`, which has a frontend of its own. HAProxy's CSV leaves the three columns
empty on FRONTEND rows (its fe_counters have them): those cells are compared as
they read.
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from side_by_side import BALANCERS, running

from pyxlb.lab.lab import Lab

HERE = Path(__file__).resolve().parent
BACKEND = str(HERE / "misbehaving_backend.py")
CLIENT = str(HERE / "abort_client.py")
SERVER_ROLE = "web1"
SERVER_PORT = 8731
# frontends fe, quiet, impatient; the stats listener
PORTS = {"haproxy": (8701, 8702, 8703, 8704), "pyxlb": (8711, 8712, 8713, 8714)}

CONFIG = """\
global
    log {log} local0

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 1s

frontend fe
    bind *:{fe}
    default_backend be

frontend quiet
    bind *:{quiet}
    no log
    default_backend be

frontend impatient
    bind *:{impatient}
    timeout client 1s
    default_backend be

backend be
    server s1 {server}:{server_port}

listen stats
    bind *:{stats}
    no log
    stats uri /
"""

# name: (abort_client.py mode, path[, the frontends it goes through])
SCENARIOS: dict[str, tuple[str, ...]] = {
    "server-closes-before-head": ("whole", "/close"),        # SH, 502
    "server-timeout-before-head": ("whole", "/hang"),        # sH, 504
    "server-sends-junk": ("whole", "/junk"),                 # PH, 502
    "server-cuts-body": ("whole", "/cut"),                   # SD
    "server-timeout-in-body": ("whole", "/stall"),           # sD
    "client-leaves-response": ("leave-response", "/big"),    # CD
    "client-leaves-request-body": ("leave-request", "/wait"),
    "client-leaves-before-head": ("leave-head", "/wait"),
    "client-stops-reading": ("stop-reading", "/big", "impatient"),  # cD
}
COLUMNS = ("eresp", "cli_abrt", "srv_abrt")
ROWS = (("fe", "FRONTEND"), ("quiet", "FRONTEND"), ("impatient", "FRONTEND"),
        ("be", "s1"), ("be", "BACKEND"))
# HAProxy's CSV leaves these columns empty on FRONTEND rows: compared as they read.
COUNTED = ROWS[3:]
SETTLE_S = 15


def stats(lab: Lab, port: int) -> dict[tuple[str, str], dict[str, str]]:
    body = lab.run("client", ["curl", "-s", "-m", "5",
                              f"http://{lab.topo.addr('lb')}:{port}/;csv"]).stdout
    rows = csv.DictReader(io.StringIO(body.removeprefix("# ")))
    return {(r["pxname"], r["svname"]): r for r in rows}


def settled(lab: Lab, port: int) -> dict[tuple[str, str], dict[str, str]]:
    """The CSV once no exchange is under way (every scur 0)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        rows = stats(lab, port)
        if all(rows[row]["scur"] in ("", "0") for row in ROWS) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def logged(sink: socket.socket) -> list[str]:
    """The status and termination flags (first two) of each line logged since
    the last call."""
    lines = []
    try:
        while True:
            fields = sink.recv(65536).decode().split("]: ", 1)[1].split()
            lines.append(f"{fields[5]} {fields[9][:2]}")
    except TimeoutError:
        return lines


def run(lab: Lab, who: str, sink: socket.socket) -> dict[str, object]:
    fe, quiet, impatient, port = PORTS[who]
    seen: dict[str, object] = {}
    before = settled(lab, port)
    logged(sink)
    for name, (mode, path, *through) in SCENARIOS.items():
        fronts = [impatient] if through else [fe, quiet]
        answers = [lab.run("client", [lab.python, CLIENT, lab.topo.addr("lb"), str(p),
                                      mode, path]).stdout.strip() for p in fronts]
        after = settled(lab, port)
        moved = {f"{px}/{sv}": [int(after[(px, sv)][c]) - int(before[(px, sv)][c])
                                for c in COLUMNS] for px, sv in COUNTED}
        moved |= {f"{px}/{sv}": [after[(px, sv)][c] for c in COLUMNS]
                  for px, sv in ROWS if (px, sv) not in COUNTED}
        seen[name] = {"answers": answers, "moved": moved, "logged": logged(sink)}
        before = after
    return seen


@pytest.fixture
def backend(lab: Lab) -> Iterator[None]:
    proc = lab.exec(SERVER_ROLE, [lab.python, BACKEND, str(SERVER_PORT)],
                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n", "misbehaving backend did not start"
        yield
    finally:
        proc.kill()
        proc.wait()


def test_aborts_count_as_haproxy(lab: Lab, tmp_path: Path, backend: None) -> None:
    results = {}
    for who in BALANCERS:
        fe, quiet, impatient, port = PORTS[who]
        log = tmp_path / f"{who}.log"
        config = tmp_path / f"{who}.cfg"
        config.write_text(CONFIG.format(log=log, fe=fe, quiet=quiet, impatient=impatient,
                                        stats=port,
                                        server=lab.topo.addr(SERVER_ROLE),
                                        server_port=SERVER_PORT))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
            sink.bind(str(log))
            sink.settimeout(0.5)
            with running(lab, who, config, PORTS[who]):
                results[who] = run(lab, who, sink)
    for name in SCENARIOS:
        theirs = results["haproxy"][name]
        # Every scenario moves a counter (or it compares nothing).
        assert any(any(theirs["moved"][f"{px}/{sv}"]) for px, sv in COUNTED), name
        assert results["pyxlb"][name] == theirs, name
