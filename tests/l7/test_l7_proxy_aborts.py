"""HAProxy's eresp, cli_abrt and srv_abrt as the l7 proxy counts them, on loopback:
the slots behind the CSV columns, the frontend's included (which HAProxy's CSV
does not show). tests/e2e/test_aborts_vs_haproxy.py compares the columns with
HAProxy's; here, `timeout client` ending a response the client stopped reading
(cD) on a frontend without a log."""

from __future__ import annotations

import socket
import time

from l7_harness import RunningProxy, Servers

from pyxlb.stats.counters import StatsRegistry

WAIT_S = 10


def aborts(proxy: RunningProxy) -> dict[str, tuple[int, ...]]:
    """The counters by slot, read in the proxy's loop."""
    def read(reg: StatsRegistry) -> dict[str, tuple[int, ...]]:
        fe, be = reg.frontend("f"), reg.backend("b")
        srv = be.server("s")
        return {"f": (fe.client_aborts, fe.server_aborts),
                "b": (be.failed_responses, be.client_aborts, be.server_aborts),
                "s": (srv.failed_responses, srv.client_aborts, srv.server_aborts)}
    return proxy.call(read, proxy.registry)


def test_a_client_that_stops_reading_counts_a_client_abort(
        backends: Servers, run_proxy) -> None:
    proxy = run_proxy(f"""
defaults
    mode http
    timeout connect 1000
    timeout client 300
    timeout server 50000
frontend f
    bind 127.0.0.1:8080
    default_backend b
backend b
    server s 127.0.0.1:{backends.ports["web1"]}
""")
    assert aborts(proxy) == {"f": (0, 0), "b": (0, 0, 0), "s": (0, 0, 0)}
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(WAIT_S)
        s.connect(("127.0.0.1", proxy.port["f"]))
        s.sendall(b"GET /big/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(12) == b"HTTP/1.1 200"
        # Read nothing more: the proxy's writes stall, and `timeout client` ends it.
        deadline = time.monotonic() + WAIT_S
        while aborts(proxy)["f"] == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert aborts(proxy) == {"f": (1, 0), "b": (0, 1, 0), "s": (0, 1, 0)}
