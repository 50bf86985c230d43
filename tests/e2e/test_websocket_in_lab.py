"""The tutorial's WebSocket configuration served by `pyxlb up` in the lab: Host
routing to the ws servers, a real WebSocket client echoing through the tunnel,
and cookie persistence across plain HTTP (curl's cookie jar) and WebSocket."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config
from pyxlb.lab.certs import make_pem

WS_HOST = "ws.node-example.com"
CLIENT = str(Path(__file__).with_name("ws_echo_client.py"))


@pytest.fixture
def websocket(pyxlb_up):
    return pyxlb_up("websocket")


def ws_echo(lab, cookie: str | None = None, ca: Path | None = None) -> dict:
    scheme = "ws" if ca is None else "wss"
    argv = [sys.executable, CLIENT, f"{scheme}://{WS_HOST}/chat", lab.topo.addr("lb")]
    if cookie:
        argv += ["--cookie", cookie]
    if ca:
        argv += ["--ca", str(ca)]
    return json.loads(lab.run("client", argv).stdout)


def curl(lab, jar: Path, path: str = "/status", host: str = WS_HOST) -> tuple[str, str]:
    """(x-server, set-cookie) of a GET through the balancer, with a cookie jar."""
    out = lab.run("client", [
        "curl", "-s", "-m", "5", "-o", "/dev/null", "-b", str(jar), "-c", str(jar),
        "-H", f"Host: {host}", "-w", "%{http_code} %header{x-server}|%header{set-cookie}",
        f"http://{lab.topo.addr('lb')}{path}"]).stdout
    status, _, rest = out.partition(" ")
    assert status == "200", out
    server, _, set_cookie = rest.partition("|")
    return server, set_cookie


def test_websocket_echo_through_the_tunnel_with_cookie_persistence(lab, websocket, tmp_path):
    fresh = [ws_echo(lab) for _ in range(2)]
    assert [r["echoes"] for r in fresh] == [["message 0", "message 1", "message 2"]] * 2
    # Round-robin across ws1 and ws2, each telling the client where it landed.
    assert {r["x_server"] for r in fresh} == {"ws1", "ws2"}
    for r in fresh:
        assert r["set_cookie"] == f"HAPROXY_COOKIE={r['x_server']}; path=/"

    # curl learns a cookie over plain HTTP, then keeps reaching the same server...
    jar = tmp_path / "jar"
    server, set_cookie = curl(lab, jar)
    assert set_cookie == f"HAPROXY_COOKIE={server}; path=/"
    assert [curl(lab, jar) for _ in range(4)] == [(server, "")] * 4
    # ...and so does a WebSocket presenting it: no new cookie, same server.
    sticky = [ws_echo(lab, f"HAPROXY_COOKIE={server}") for _ in range(3)]
    assert [(r["x_server"], r["set_cookie"]) for r in sticky] == [(server, None)] * 3
    # Other Hosts go to www, which has no cookie persistence.
    server, set_cookie = curl(lab, tmp_path / "jar2", "/", "www.example.com")
    assert server in ("web1", "web2") and set_cookie == ""


def test_a_cookie_naming_a_down_server_redispatches(lab, tmp_path):
    # Checks every 200ms: ws1's death shows in well under a second.
    config = lab_config("websocket").read_text().replace("inter 10000", "inter 200")
    path = tmp_path / "websocket-fast-checks.cfg"
    path.write_text(config)
    lb = LabBalancer(lab, path)
    lb.start()
    try:
        lab.stop_server("ws1")
        try:
            deadline = time.monotonic() + 20
            while True:
                r = ws_echo(lab, "HAPROXY_COOKIE=ws1")
                # Until the check sees it, a request for ws1 fails (503).
                if r["status"] == 101 and r["x_server"] == "ws2":
                    break
                assert time.monotonic() < deadline, "ws1 never went DOWN"
                time.sleep(0.2)
            assert r["set_cookie"] == "HAPROXY_COOKIE=ws2; path=/"
            assert r["echoes"] == ["message 0", "message 1", "message 2"]
        finally:
            lab.start_server("ws1")
    finally:
        lb.stop()


def test_websocket_over_tls(lab, tmp_path):
    pem = make_pem(tmp_path / "site.pem", WS_HOST)
    config = lab_config("websocket").read_text().replace(
        "  bind *:80\n", f"  bind *:80\n  bind *:443 ssl crt {pem}\n")
    path = tmp_path / "websocket-tls.cfg"
    path.write_text(config)
    lb = LabBalancer(lab, path)
    lb.start()
    try:
        r = ws_echo(lab, ca=pem)
        assert r["echoes"] == ["message 0", "message 1", "message 2"]
        assert r["set_cookie"] == f"HAPROXY_COOKIE={r['x_server']}; path=/"
        again = ws_echo(lab, f"HAPROXY_COOKIE={r['x_server']}", ca=pem)
        assert (again["x_server"], again["set_cookie"]) == (r["x_server"], None)
    finally:
        lb.stop()
