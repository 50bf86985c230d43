"""The benchmark's configs: the lab's files, servers moved to nginx's port, no
`global`; both pyxlb and HAProxy accept them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from benchlab.configs import bench_config, move_servers, without_global

from pyxlb.config import load_config

TEXT = """\
# a comment
global
    log /dev/log local0
    chroot /var/lib/haproxy

defaults
    mode http
backend b
    server web1 10.111.0.21:80 check
    server other 10.111.0.210:80
    server ws1 10.111.0.31:80
"""


def test_the_global_section_goes_and_the_rest_stays():
    out = without_global(TEXT)
    assert "global" not in out and "chroot" not in out
    assert out.startswith("# a comment\ndefaults\n    mode http\n")
    assert "server ws1 10.111.0.31:80" in out


def test_only_the_named_servers_move_and_their_options_stay():
    out = move_servers(TEXT, ("10.111.0.21",), 8000)
    assert "server web1 10.111.0.21:8000 check" in out
    assert "server other 10.111.0.210:80" in out  # a longer address is another server
    assert "server ws1 10.111.0.31:80" in out


def test_naming_no_server_in_the_file_is_an_error():
    with pytest.raises(ValueError, match="10.111.0.99"):
        move_servers(TEXT, ("10.111.0.99",), 8000)


@pytest.mark.parametrize("name", ["basic", "tcp-nat", "conn-rate-limit"])
def test_pyxlb_and_haproxy_both_accept_the_bench_configs(name, tmp_path):
    path = tmp_path / f"{name}.cfg"
    path.write_text(bench_config(name, 8000))
    text = path.read_text()
    assert "10.111.0.21:8000" in text and "10.111.0.22:8000" in text
    assert "\nglobal" not in text
    load_config([str(path)])
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    res = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
