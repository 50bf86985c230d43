"""tcp-request connection rules enforced by XDP in the lab: a source over its
connection rate is refused, others (and the accepted one) are served; a
frontend's src rules refuse its connections only."""

from __future__ import annotations

import json

import pytest

from pyxlb.lab.balancer import LabBalancer

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
    # `accept if trusted` comes before track-sc0: final, so never counted.
    assert counters["src_accepted"] >= LIMIT + 2
    assert trusted not in track


SRC_RULES = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend web
    bind *:80
    tcp-request connection reject if {{ src {rejected} }}
    tcp-request connection silent-drop if {{ src {dropped} }}
    default_backend http_back

frontend other
    bind *:8080
    default_backend http_back

backend http_back
    server web1 10.111.0.21:80
"""


def curl_exit(lab, source: str, port: int) -> tuple[int, str]:
    vip = lab.topo.addr("lb")
    done = lab.run("client", ["curl", "-s", "-m", "2", "--interface", source, "-o",
                              "/dev/null", "-w", "%{http_code}", f"http://{vip}:{port}/"],
                   check=False)
    return done.returncode, done.stdout.strip()


def test_src_rules_refuse_their_frontends_connections_only(lab, tmp_path):
    rejected, dropped, other = lab.topo.client_addrs[:3]
    config = tmp_path / "src-rules.cfg"
    config.write_text(SRC_RULES.format(rejected=rejected, dropped=dropped))
    balancer = LabBalancer(lab, config)
    balancer.start()
    try:
        # `reject`: the SYN is answered with a RST, curl's "could not connect".
        assert curl_exit(lab, rejected, 80) == (7, "000")
        # `silent-drop`: nothing comes back, curl gives up at its deadline.
        assert curl_exit(lab, dropped, 80) == (28, "000")
        assert curl_exit(lab, other, 80) == (0, "200")
        # The other frontend has no rules: both are served there.
        assert curl_exit(lab, rejected, 8080) == (0, "200")
        assert curl_exit(lab, dropped, 8080) == (0, "200")
        counters = json.loads(balancer.cli("maps", "show", "dp_counters", "--json", "-i",
                                           balancer.instance.name).stdout)[0]["value"]
        assert counters["src_rejected"] >= 2 and counters["rst_sent"] >= 1
        assert counters["blocked"] == 0
    finally:
        balancer.stop()

