"""`pyxlb up --hook tc`: the datapath at TC ingress (a tcx link) instead of
XDP, serving a layer-4 service and the block list the same way, and gone
with `pyxlb down`."""

from __future__ import annotations

import json

import pytest

ECHO = """
import socket, sys
with socket.create_connection((sys.argv[1], 9000), timeout=3) as s:
    s.sendall(b"over tc\\n")
    print(s.makefile().readline().strip())
"""


def echo(lab, source: str | None = None) -> str:
    argv = [lab.python, "-c", ECHO, lab.topo.addr("lb")]
    if source:  # the client's other addresses: bind the socket there
        argv[2] = ECHO.replace("timeout=3)", f"timeout=3, source_address=('{source}', 0))")
    return lab.run("client", argv, check=False).stdout.strip()


@pytest.fixture
def at_tc(pyxlb_up):
    return pyxlb_up("tcp-nat", hook="tc")


def test_tc_hook_serves_layer4_and_blocks_then_detaches(lab, at_tc):
    state = at_tc.instance.state()
    assert (state["hook"], state["xdp_mode"]) == ("tc", None)
    assert "TC ingress" in at_tc.cli("status").stdout
    assert "xdp" not in lab.run("lb", ["ip", "link", "show", "eth0"]).stdout
    assert (at_tc.instance.pin_dir / "link_tc").exists()

    assert echo(lab) == "over tc"
    flows = json.loads(at_tc.cli("maps", "show", "conntrack", "--json", "-i",
                                 at_tc.instance.name).stdout)
    assert flows

    blocked = lab.topo.client_addrs[1]
    assert echo(lab, blocked) == "over tc"
    at_tc.cli("block", "add", blocked, "-i", at_tc.instance.name)
    assert echo(lab, blocked) == ""
    assert echo(lab) == "over tc"

    at_tc.stop()
    assert not at_tc.instance.pin_dir.exists()
    assert echo(lab) == ""  # nothing answers on the balancer's port 9000 now
