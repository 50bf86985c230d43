"""`pyxlb lab demo`: the lab, pyxlb balancing and blocking in it, and what
the kernel saw.

Everything happens inside the lab's namespaces; nothing is attached to this
machine's own interfaces. The lab is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import json

import click

from pyxlb.datapath.loader import Attached
from pyxlb.lab.balancer import LabBalancer, lab_config
from pyxlb.lab.lab import Lab

DEMO_PREFIX = "pxd"


def _step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


def _curl(lab: Lab, url: str, source: str | None = None) -> str:
    argv = ["curl", "-s", "-o", "/dev/null", "-m", "2",
            "-w", "%{http_code} %header{x-server}"]
    if source:
        argv += ["--interface", source]
    return lab.run("client", [*argv, url], check=False).stdout.strip()


def run_demo(requests: int = 10) -> None:
    lab = Lab(DEMO_PREFIX)
    topo = lab.topo
    vip = topo.addr("lb")
    config = lab_config("basic")
    _step(f"lab {DEMO_PREFIX}: client {', '.join(topo.client_addrs)}, balancer {vip}, "
          f"web1 {topo.addr('web1')}, web2 {topo.addr('web2')}")
    lab.up()
    try:
        balancer = LabBalancer(lab, config)
        _step(f"pyxlb up --netns {topo.ns('lb')} iface eth0 -f {config}")
        with balancer:
            state = balancer.instance.state() or {}
            attached = Attached(state.get("hook") or "xdp", state.get("xdp_mode"))
            click.echo(f"attached at {attached}; maps pinned under {balancer.instance.pin_dir}")

            _step(f"{requests} requests from the client to http://{vip}/ (round-robin)")
            for i in range(1, requests + 1):
                source = topo.client_addrs[(i - 1) % len(topo.client_addrs)]
                click.echo(f"  {i:2d}. from {source:12s} -> {_curl(lab, f'http://{vip}/', source)}")

            _step("what the XDP program counted per source: pyxlb maps show src_stats")
            click.echo(balancer.cli("maps", "show", "src_stats", "-i",
                                    balancer.instance.name).stdout.rstrip())

            _step("the stats page: GET /haproxy?stats;csv (name, server, requests, status)")
            csv = lab.run("client", ["curl", "-s", f"http://{vip}/haproxy?stats;csv"]).stdout
            header, *rows = csv.splitlines()
            columns = header.lstrip("# ").split(",")
            for row in rows:
                cells = dict(zip(columns, row.split(","), strict=False))
                click.echo(f"  {cells['pxname']:12s} {cells['svname']:10s} "
                           f"stot={cells['stot']:4s} {cells['status']}")

            blocked = topo.client_addrs[-1]
            _step(f"block one client in the kernel: pyxlb block add {blocked}")
            click.echo(balancer.cli("block", "add", blocked, "-i",
                                    balancer.instance.name).stdout.rstrip())
            for source in topo.client_addrs:
                answer = _curl(lab, f"http://{vip}/", source)
                verdict = "dropped by XDP (no answer)" if answer.startswith("000") else answer
                click.echo(f"  from {source:12s} -> {verdict}")
            dropped = balancer.cli("maps", "show", "dp_counters", "--json", "-i",
                                   balancer.instance.name).stdout
            click.echo(f"  packets dropped so far: "
                       f"{json.loads(dropped)[0]['value']['blocked']}")
            balancer.cli("block", "del", blocked, "-i", balancer.instance.name)
            click.echo(f"pyxlb block del {blocked} -> {_curl(lab, f'http://{vip}/', blocked)}")

            _step("pyxlb down")
        click.echo(f"stopped; {balancer.instance.pin_dir} exists: "
                   f"{balancer.instance.pin_dir.exists()}")
    finally:
        _step(f"pyxlb lab down --prefix {DEMO_PREFIX}")
        lab.down()
        click.echo("lab removed")


@click.command()
@click.option("-n", "--requests", default=10, show_default=True, help="Requests to send.")
def demo(requests: int) -> None:
    """Build the lab, balance HTTP through pyxlb, show its maps and stats."""
    run_demo(requests)
