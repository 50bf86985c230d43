"""`pyxlb lab up|down|status`: the lab from the command line (click group `lab`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import click

from pyxlb.lab.lab import Lab, LabError, LabStatus
from pyxlb.lab.topology import DEFAULT_PREFIX, MAX_PREFIX_LEN, check_prefix


def _prefix_option(f: Callable[..., Any]) -> Callable[..., Any]:
    def validate(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            return check_prefix(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return click.option(
        "--prefix", "-p", default=DEFAULT_PREFIX, show_default=True, callback=validate,
        help=f"name prefix of the lab's namespaces (up to {MAX_PREFIX_LEN} of [a-z0-9])",
    )(f)


def _lab(prefix: str) -> Lab:
    if os.geteuid() != 0:
        raise click.ClickException("the lab makes network namespaces: run it as root")
    return Lab(prefix)


def _span(addrs: Sequence[str]) -> str:
    """10.111.0.10 .. 10.111.0.13 -> "10.111.0.10-13"."""
    if not addrs:
        return "-"
    if len(addrs) == 1:
        return addrs[0]
    sep = ":" if ":" in addrs[0] else "."
    return f"{addrs[0]}-{addrs[-1].rsplit(sep, 1)[1]}"


def format_status(lab: Lab, st: LabStatus) -> str:
    state = "up" if st.up else "down" if st.absent else "partial (run 'pyxlb lab up' or 'down')"
    servers = {s.role: s for s in st.servers}
    rows = [("ROLE", "NAMESPACE", "IPV4", "IPV6", "SERVER", "PID", "STATE")]
    ns = lab.topo.switch_ns
    rows.append(("sw", ns, "-", "-", f"bridge {lab.topo.bridge}", "-",
                 "ok" if st.namespaces[ns] else "missing"))
    for role, host in lab.topo.hosts.items():
        row = (role, host.ns, _span(host.v4), _span(host.v6))
        if not st.namespaces[host.ns]:
            rows.append((*row, host.server or "-", "-", "missing"))
        elif role in servers:
            s = servers[role]
            rows.append((*row, f"{s.kind}:{s.port}", str(s.pid or "-"),
                         "running" if s.alive else "dead"))
        else:
            rows.append((*row, "-", "-", "ok"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join([f"lab {st.prefix}: {state}", *lines])


@click.group()
def lab() -> None:
    """Network-namespace lab: clients, balancer and backends on one bridge.

    \b
    Examples:
      pyxlb lab up                  # build lab "pxl" and start its servers
      pyxlb lab status              # namespaces, addresses, server pids
      ip netns exec pxl-client curl http://10.111.0.21/
      pyxlb lab down                # remove it all, also after a crash
      pyxlb lab up -p demo          # a second lab beside the first
    """


@lab.command()
@_prefix_option
def up(prefix: str) -> None:
    """Build the lab (does nothing if it is already up)."""
    lb = _lab(prefix)
    t0 = time.monotonic()
    try:
        built = lb.up()
    except LabError as e:
        raise click.ClickException(str(e)) from None
    if built:
        click.echo(f"lab {prefix}: built in {time.monotonic() - t0:.2f}s")
    else:
        click.echo(f"lab {prefix}: already up")
    click.echo(format_status(lb, lb.status()))


@lab.command()
@_prefix_option
def down(prefix: str) -> None:
    """Stop every process in the lab's namespaces and delete them."""
    t0 = time.monotonic()
    try:
        report = _lab(prefix).down()
    except LabError as e:
        raise click.ClickException(str(e)) from None
    if not report.namespaces:
        click.echo(f"lab {prefix}: nothing to remove")
        return
    click.echo(f"lab {prefix}: deleted {len(report.namespaces)} namespaces, stopped "
               f"{len(report.pids)} processes in {time.monotonic() - t0:.2f}s")
    if report.survivors:
        click.echo(f"lab {prefix}: still running after SIGKILL: "
                   f"{' '.join(map(str, report.survivors))}", err=True)


@lab.command()
@_prefix_option
def status(prefix: str) -> None:
    """Show the lab's namespaces, addresses and servers."""
    lb = _lab(prefix)
    click.echo(format_status(lb, lb.status()))


if __name__ == "__main__":
    lab()
