"""The benchmark's moving parts in the lab, each doing its job for real: nginx
backends, HAProxy on a derived config, wrk, the flooder and the CPU meter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchlab.configs import bench_config
from benchlab.cpu import CpuMeter
from benchlab.haproxy import HaproxyInLab
from benchlab.nginx import SMALL, SMALL_SIZE, NginxBackends
from benchlab.wrk import run_wrk, wrk_argv

PORT = 8000
FLOOD = Path(__file__).resolve().parents[3] / "tools" / "benchlab" / "flood.py"


@pytest.fixture(scope="module")
def nginx(lab, tmp_path_factory):
    backends = NginxBackends(lab, ["web1", "web2"], PORT, tmp_path_factory.mktemp("nginx"))
    backends.start()
    yield backends
    backends.stop()


def curl(lab, url: str) -> list[str]:
    return lab.run("client", ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                              "%{http_code} %{size_download}", url], check=False).stdout.split()


def test_each_nginx_serves_the_small_file_from_its_own_namespace(lab, nginx):
    for role, url in zip(nginx.roles, nginx.urls(SMALL), strict=True):
        assert lab.topo.addr(role) in url
        assert curl(lab, url) == ["200", str(SMALL_SIZE)]
    body = lab.run("client", ["curl", "-s", "-m", "3", nginx.urls(SMALL)[1]]).stdout
    assert body.startswith("served by web2\n")


def test_wrk_against_nginx_counts_requests_and_the_meter_sees_nginx_work(lab, nginx):
    meter = CpuMeter([p.pid for p in nginx.procs])
    meter.start()
    res = run_wrk(lab, wrk_argv(nginx.urls(SMALL)[0], 1, 4), 1)
    used = meter.stop()
    assert res.requests > 0 and res.errors == 0
    assert res.bytes_per_s > res.rps * SMALL_SIZE  # the body and the headers
    assert used.process_s > 0


def test_haproxy_on_the_derived_basic_config_balances_over_nginx(lab, nginx, tmp_path):
    config = tmp_path / "basic.cfg"
    config.write_text(bench_config("basic", PORT))
    hap = HaproxyInLab(lab, config, [80])
    hap.start()
    try:
        assert curl(lab, f"http://{lab.topo.addr('lb')}/{SMALL}") == ["200", str(SMALL_SIZE)]
    finally:
        hap.stop()
    assert curl(lab, f"http://{lab.topo.addr('lb')}/{SMALL}")[0] == "000"


def flood(lab, host: str, port: int) -> dict[str, float]:
    source = lab.topo.client_addrs[1]
    out = lab.run("client", [lab.python, str(FLOOD), source, host, str(port),
                             "--seconds", "0.5", "--rate", "200"]).stdout
    return json.loads(out)


def test_the_flooder_counts_what_became_of_its_attempts(lab):
    tcp1 = lab.topo.addr("tcp1")
    open_port = flood(lab, tcp1, lab.topo.port("tcp1"))
    assert open_port["attempts"] > 0
    assert open_port["established"] == open_port["attempts"]
    closed_port = flood(lab, tcp1, lab.topo.port("tcp1") + 1)
    assert closed_port["refused"] == closed_port["attempts"] > 0
    assert closed_port["established"] == 0


def test_the_flooder_says_what_is_wrong_with_its_arguments(lab):
    res = lab.run("client", [lab.python, str(FLOOD), "10.111.0.11", "h", "80"], check=False)
    assert res.returncode == 2 and "--seconds" in res.stderr
