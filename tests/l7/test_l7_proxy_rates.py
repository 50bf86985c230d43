"""The stats' rates, times and lastsess filled by the proxy's real traffic on
loopback (l7.proxy): what the pure arithmetic (tests/stats/test_stats_rates.py)
is fed, at the places HAProxy 2.6 feeds its own."""

from __future__ import annotations

import socket
import time

from l7_harness import ProxyStarter, ScriptedServer, one_server_config, read_until

from pyxlb.stats.page import CSV_FIELDS, render_csv

REQUEST = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
HOLD = 0.06  # how long the server holds its second answer (s)


def test_traffic_fills_the_rates_times_and_lastsess(
    run_proxy: ProxyStarter, scripted: ScriptedServer
) -> None:
    config = one_server_config(scripted.port).replace(
        "    server s1", "    server idle 127.0.0.1:1 backup\n    server s1")
    proxy = run_proxy(config)
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=5) as client:
        client.sendall(REQUEST)
        server = scripted.accept()
        with server:
            for n in range(3):
                if n:
                    client.sendall(REQUEST)
                read_until(server, b"\r\n\r\n")
                if n == 1:
                    time.sleep(HOLD)  # %Tr of at least HOLD for this one
                server.sendall(RESPONSE)
                read_until(client, b"ok")

            def read() -> dict[str, dict[str, str]]:
                reg = proxy.registry.fresh()
                lines = render_csv(reg).splitlines()[1:]
                cells = [dict(zip(CSV_FIELDS, line.split(",")[:-1], strict=True))
                         for line in lines]
                return {c["svname"]: c for c in cells}

            by = proxy.call(read)
    front, used, idle, back = by["FRONTEND"], by["s1"], by["idle"], by["BACKEND"]
    # One connection: one session, one connection in its busiest second.
    assert (front["rate_max"], front["conn_rate_max"]) == ("1", "1")
    # Three requests, in one period of a second or spread over more.
    assert 1 <= int(front["req_rate_max"]) <= 3
    for row in (used, back):
        assert row["stot"] == "3"
        assert 1 <= int(row["rate_max"]) <= 3
        assert int(row["lastsess"]) >= 0
        assert int(row["rtime_max"]) >= HOLD * 1000 - 10
        assert int(row["ttime_max"]) >= int(row["rtime_max"])
        # The average of three, one of them held: at least a third of the hold.
        assert int(row["rtime"]) >= int(row["rtime_max"]) // 3
        assert row["ctime"] != "" and row["ctime_max"] != ""
    # The backup server saw nothing: HAProxy's -1 and zeros.
    assert [idle[f] for f in ("rate", "rate_max", "lastsess", "ctime", "rtime", "ttime",
                              "ctime_max", "rtime_max", "ttime_max")] == [
        "0", "0", "-1", "0", "0", "0", "0", "0", "0"]
