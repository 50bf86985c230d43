"""The running lab: every backend answers from the client namespace, on v4 and v6 and
from each client source address; the balancer's namespace is left empty."""

from __future__ import annotations

import json

import pytest

from pyxlb.lab.lab import Lab, netns_pids
from pyxlb.lab.probes import http_get, http_gets, tcp_echo, ws_echo


def url(lab: Lab, role: str, path: str = "/", family: int = 4) -> str:
    addr = lab.topo.addr(role, family)
    host = f"[{addr}]" if family == 6 else addr
    return f"http://{host}:{lab.topo.port(role)}{path}"


def test_up_again_says_already_up(lab: Lab) -> None:
    assert lab.up() is False
    st = lab.status()
    assert st.up and all(s.alive for s in st.servers)
    state = json.loads(lab.state_path.read_text())
    assert {r: s["pid"] for r, s in state["servers"].items()} == {
        s.role: s.pid for s in st.servers}


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("role", ["web1", "web2"])
def test_web_backend(lab: Lab, role: str, family: int) -> None:
    r = http_get(lab, "client", url(lab, role, "/some/page", family))
    assert (r.error, r.status, r.body) == (None, 200, f"served by {role}\n")
    assert r.headers["x-server"] == role
    assert r.headers["content-length"] == str(len(r.body))
    assert r.headers["x-client-addr"] == lab.topo.addr("client", family)

    assert http_get(lab, "client", url(lab, role, "/status", family)).status == 200
    assert http_get(lab, "client", url(lab, role, "/notfound/x", family)).status == 404
    head = http_get(lab, "client", url(lab, role, "/", family), method="HEAD")
    assert (head.status, head.body, head.headers["x-server"]) == (200, "", role)


def test_web_keeps_connections_alive(lab: Lab) -> None:
    code = """if True:
        import http.client, sys
        c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
        for body in (b"x" * 100, b""):
            c.request("POST", "/", body=body)
            r = c.getresponse(); r.read()
            print(r.status, r.getheader("X-Client-Port"))
    """
    out = lab.run("client", [lab.python, "-c", code, lab.topo.addr("web1")]).stdout.split()
    assert out[0] == out[2] == "200"
    assert out[1] == out[3]  # same client port: the second request reused the connection


def test_curl_from_each_client_source(lab: Lab) -> None:
    target = url(lab, "web2")
    for src in lab.topo.client_addrs:
        out = lab.run("client", ["curl", "-sS", "--max-time", "5", "--interface", src,
                                 "-D", "-", target]).stdout
        assert "X-Server: web2" in out and f"X-Client-Addr: {src}" in out


@pytest.mark.parametrize("family", [4, 6])
def test_every_client_source_address_works(lab: Lab, family: int) -> None:
    for src in lab.topo.addrs("client", family):
        r = http_get(lab, "client", url(lab, "web1", family=family), source=src)
        assert r.status == 200 and r.headers["x-client-addr"] == src
        e = tcp_echo(lab, "client", lab.topo.addr("tcp1", family), 9000, b"hi", source=src)
        assert e.data == b"hi"


def test_http_gets_opens_a_connection_per_request(lab: Lab) -> None:
    replies = http_gets(lab, "client", url(lab, "web1"), 5)
    assert [r.status for r in replies] == [200] * 5
    assert len({r.headers["x-client-port"] for r in replies}) == 5


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("role", ["ws1", "ws2"])
def test_websocket_echo(lab: Lab, role: str, family: int) -> None:
    ws_url = url(lab, role, "/chat", family).replace("http:", "ws:")
    r = ws_echo(lab, "client", ws_url, f"hello {role}")
    assert (r.error, r.reply) == (None, f"hello {role}")
    assert r.headers["x-server"] == role


def test_websocket_server_answers_health_checks(lab: Lab) -> None:
    r = http_get(lab, "client", url(lab, "ws1", "/status"))
    assert (r.status, r.body) == (200, "OK\n")


@pytest.mark.parametrize("family", [4, 6])
def test_tcp_echo(lab: Lab, family: int) -> None:
    data = bytes(range(256)) * 1000  # every byte value, many segments
    r = tcp_echo(lab, "client", lab.topo.addr("tcp1", family), 9000, data)
    assert r.error is None and r.data == data


def test_a_closed_port_is_an_error_not_an_exception(lab: Lab) -> None:
    r = tcp_echo(lab, "client", lab.topo.addr("web1"), 9000, b"x", timeout=2)
    assert r.data is None and "Refused" in (r.error or "")


def test_balancer_namespace_is_empty_and_reachable(lab: Lab) -> None:
    assert netns_pids([lab.topo.ns("lb")]) == {lab.topo.ns("lb"): []}
    # keep_mounts: the balancer sees the host's /sys/fs/bpf but its own interfaces.
    out = lab.run("lb", ["ip", "-br", "addr", "show", "dev", "eth0"], keep_mounts=True).stdout
    assert "10.111.0.2/24" in out and "fd00:111::2/64" in out
    r = http_get(lab, "lb", url(lab, "web1"))
    assert r.headers["x-client-addr"] == "10.111.0.2"


def test_bridge_side_peer_of_the_balancer_exists(lab: Lab) -> None:
    out = lab.run("sw", ["ip", "-br", "link", "show", "master", lab.topo.bridge]).stdout
    ports = {line.split("@")[0] for line in out.splitlines()}
    assert lab.topo.lb_peer in ports and ports == {h.peer for h in lab.topo.hosts.values()}


def test_the_balancers_peer_runs_a_pass_through_xdp_program(lab: Lab) -> None:
    # Native-mode XDP_TX on veth needs an XDP program on the peer (DESIGN.md).
    out = lab.run("sw", ["ip", "-d", "link", "show", "dev", lab.topo.lb_peer]).stdout
    assert "prog/xdp" in out and "pyxlb_lab_pass" in out


@pytest.mark.parametrize("role", ["client", "web1", "tcp1"])
def test_senders_compute_full_checksums(lab: Lab, role: str) -> None:
    # The layer-4 NAT updates checksums incrementally: a partial one stays wrong.
    out = lab.run(role, [lab.python, "-c", "from pyroute2.ethtool import Ethtool; "
                         "f = Ethtool().get_features('eth0').features; "
                         "print(any(f[k].enable for k in ('tx-checksum-ip-generic', "
                         "'tx-checksum-ipv4', 'tx-checksum-ipv6')))"]).stdout
    assert out.strip() == "False"
