"""HTTP rules served by `pyxlb up` in the lab: Host routing, deny, redirect."""

from __future__ import annotations

import pytest


@pytest.fixture
def ruled(pyxlb_up):
    return pyxlb_up("rules")


def fetch(lab, path: str, host: str = "www.example.com") -> str:
    vip = lab.topo.addr("lb")
    return lab.run("client", ["curl", "-s", "-m", "2", "-o", "/dev/null", "-H", f"Host: {host}",
                              "-w", "%{http_code} %header{x-server} %header{location}",
                              f"http://{vip}{path}"]).stdout.strip()


def test_host_routing_deny_and_redirect(lab, ruled):
    assert {fetch(lab, "/") for _ in range(4)} == {"200 web1", "200 web2"}
    assert {fetch(lab, "/status", "ws.node-example.com") for _ in range(4)} == \
        {"200 ws1", "200 ws2"}
    assert fetch(lab, "/admin/users") == "403"
    assert fetch(lab, "/secure/x?y=1", "shop.example.com:8080") == \
        "301  https://shop.example.com:8080/secure/x?y=1"
