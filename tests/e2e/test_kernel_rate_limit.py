"""tcp-request connection rules enforced by XDP in the lab: a source over its
connection rate gets nothing, others (and the allow-listed one) are served."""

from __future__ import annotations

import json

import pytest

from pyxlb.lab.balancer import LabBalancer, lab_config

LIMIT = 5  # conn-rate-limit.cfg: reject if { sc0_conn_rate gt 5 } over 10s


def curl_from(lab, source: str) -> str:
    vip = lab.topo.addr("lb")
    return lab.run("client", ["curl", "-s", "-m", "2", "--interface", source, "-o",
                              "/dev/null", "-w", "%{http_code}", f"http://{vip}/"],
                   check=False).stdout.strip()


@pytest.fixture
def limited(lab):
    lb = LabBalancer(lab, lab_config("conn-rate-limit"))
    lb.start()
    yield lb
    lb.stop()


def test_the_connection_over_the_rate_is_dropped_in_the_kernel(lab, limited):
    abuser, bystander, trusted = lab.topo.client_addrs[0], lab.topo.client_addrs[1], \
        lab.topo.client_addrs[2]
    assert [curl_from(lab, abuser) for _ in range(LIMIT)] == ["200"] * LIMIT
    # The 6th SYN within 10 s pushes conn_rate to 6 > 5: dropped, and so are
    # its retransmissions, which count too.
    assert curl_from(lab, abuser) == "000"
    assert curl_from(lab, bystander) == "200"
    assert [curl_from(lab, trusted) for _ in range(LIMIT + 2)] == ["200"] * (LIMIT + 2)

    name = limited.instance.name
    track = {e["key"]["addr"]: e["value"] for e in json.loads(
        limited.cli("maps", "show", "src_track", "--json", "-i", name).stdout)}
    assert track[abuser]["conn_cnt"] > LIMIT
    counters = json.loads(limited.cli("maps", "show", "dp_counters", "--json",
                                      "-i", name).stdout)[0]["value"]
    assert counters["conn_rate_rejected"] >= 1
    assert counters["allowed"] >= 2

