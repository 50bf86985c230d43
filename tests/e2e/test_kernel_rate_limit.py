"""tcp-request connection rules enforced by XDP in the lab: a source over its
connection rate is refused, others (and the allow-listed one) are served."""

from __future__ import annotations

import json

import pytest

LIMIT = 5  # conn-rate-limit.cfg: reject if { sc0_conn_rate gt 5 } over 10s


def curl_from(lab, source: str) -> str:
    vip = lab.topo.addr("lb")
    return lab.run("client", ["curl", "-s", "-m", "2", "--interface", source, "-o",
                              "/dev/null", "-w", "%{http_code}", f"http://{vip}/"],
                   check=False).stdout.strip()


def connect_from(lab, source: str, port: int) -> None:
    """One TCP connection attempt (a SYN, answered by a RST: nothing listens)."""
    lab.run("client", [lab.python, "-c", "import socket,sys; s=socket.socket(); "
                       "s.bind((sys.argv[1], 0)); s.settimeout(2); "
                       "print(s.connect_ex((sys.argv[2], int(sys.argv[3]))))",
                       source, lab.topo.addr("lb"), str(port)])


@pytest.fixture
def limited(pyxlb_up):
    return pyxlb_up("conn-rate-limit")


def test_the_connection_over_the_rate_is_refused_in_the_kernel(lab, limited):
    abuser, bystander, trusted = lab.topo.client_addrs[0], lab.topo.client_addrs[1], \
        lab.topo.client_addrs[2]
    assert [curl_from(lab, abuser) for _ in range(LIMIT)] == ["200"] * LIMIT
    # The 6th SYN within 10 s pushes conn_rate to 6 > 5: XDP answers it with
    # a RST (`reject`; `silent-drop` would drop it), no socket ever sees it.
    assert curl_from(lab, abuser) == "000"
    assert curl_from(lab, bystander) == "200"
    assert [curl_from(lab, trusted) for _ in range(LIMIT + 2)] == ["200"] * (LIMIT + 2)

    # SYNs to a port no tracked frontend binds (SSH, say) are neither counted
    # nor limited: this source stays unknown to the kernel, and is served.
    other = lab.topo.client_addrs[3]
    for _ in range(LIMIT * 2):
        connect_from(lab, other, 22)
    assert curl_from(lab, other) == "200"

    name = limited.instance.name
    track = {e["key"]["addr"]: e["value"] for e in json.loads(
        limited.cli("maps", "show", "src_track", "--json", "-i", name).stdout)}
    assert track[abuser]["conn_cnt"] > LIMIT
    assert track[other]["conn_cnt"] == 1  # its one request to port 80
    counters = json.loads(limited.cli("maps", "show", "dp_counters", "--json",
                                      "-i", name).stdout)[0]["value"]
    assert counters["conn_rate_rejected"] >= 1
    assert counters["rst_sent"] == counters["conn_rate_rejected"]
    assert counters["allowed"] >= 2

