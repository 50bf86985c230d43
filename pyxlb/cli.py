"""The `pyxlb` command line.

Examples:
    pyxlb up iface eth0 -f /etc/haproxy/haproxy.cfg
    pyxlb up --netns pxl-lb iface eth0 -f lab.cfg   # lab: enter only the netns
    pyxlb maps list
    pyxlb maps show src_stats --json
    pyxlb down
"""

from __future__ import annotations

import sys

import click

from pyxlb.lab.cli import lab
from pyxlb.lab.demo import demo

DEFAULT_CONFIG = "/etc/haproxy/haproxy.cfg"


def _fail(message: str) -> None:
    click.echo(f"pyxlb: {message}", err=True)
    sys.exit(1)


def _load_config(paths: tuple[str, ...]):
    from pyxlb.config import ConfigError, load_config

    try:
        return load_config(list(paths))
    except ConfigError as exc:
        _fail(f"invalid configuration:\n{exc}")
    except OSError as exc:
        _fail(f"cannot read configuration: {exc.filename}: {exc.strerror}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pyxlb: a HAProxy-compatible load balancer with an XDP fast path."""


@main.command()
@click.argument("word", type=click.Choice(["iface"]), metavar="iface")
@click.argument("iface")
@click.option("-f", "config_paths", multiple=True, default=[DEFAULT_CONFIG], show_default=True,
              type=click.Path(dir_okay=True), help="HAProxy-syntax configuration (repeatable).")
@click.option("--netns", help="Run inside this network namespace (entering only its "
              "network namespace, so pinned maps stay visible to `pyxlb maps`).")
@click.option("--xdp-mode", type=click.Choice(["auto", "native", "generic"]), default="auto",
              show_default=True, help="native (driver) XDP, generic (skb) XDP, or native "
              "falling back to generic.")
@click.option("--hook", type=click.Choice(["auto", "xdp", "tc"]), default="auto",
              show_default=True, help="Where the datapath runs: XDP, TC ingress (for "
              "interfaces where XDP cannot attach), or XDP falling back to TC.")
def up(word: str, iface: str, config_paths: tuple[str, ...], netns: str | None,
       xdp_mode: str, hook: str) -> None:
    """Load the datapath on IFACE and serve the configuration, in the foreground.

    \b
    Example:  pyxlb up iface eth0 -f /etc/haproxy/haproxy.cfg
    Stop with Ctrl-C, SIGTERM or `pyxlb down`; the XDP program is detached
    and its pins removed.
    """
    from pyxlb.daemon import StartError, run_up
    from pyxlb.netns import NetnsError, enter_netns

    config = _load_config(config_paths)
    try:
        if netns:
            enter_netns(netns)
        run_up(config, iface, netns, xdp_mode, config_paths, hook)
    except (StartError, NetnsError) as exc:
        _fail(str(exc))


@main.command()
@click.option("-i", "--instance", help="Instance name (IFACE or IFACE@NETNS); "
              "default: the only one running.")
def down(instance: str | None) -> None:
    """Stop an instance: detach its XDP program and remove its pins."""
    from pyxlb.daemon import stop_instance
    from pyxlb.datapath.instance import InstanceError, select_instance

    try:
        target = select_instance(instance)
    except InstanceError as exc:
        _fail(str(exc))
    was_running = stop_instance(target)
    click.echo(f"pyxlb: {target.name} {'stopped' if was_running else 'cleaned up'}")


@main.command()
def status() -> None:
    """List instances, their daemons and hooks (XDP mode, or TC ingress)."""
    from pyxlb.datapath.instance import instances
    from pyxlb.datapath.loader import Attached
    from pyxlb.maps_view import format_table

    rows = []
    for inst in instances():
        state = inst.state() or {}
        pid = inst.daemon_pid()
        rows.append({
            "instance": inst.name,
            "daemon": f"pid {pid}" if pid else "not running",
            "hook": str(Attached(state["hook"], state.get("xdp_mode")))
                    if state.get("hook") else "-",
            "pins": str(inst.pin_dir) if inst.pin_dir.exists() else "-",
        })
    click.echo(format_table(rows) if rows else "no pyxlb instance")


@main.command()
@click.option("-f", "config_paths", multiple=True, required=True,
              type=click.Path(dir_okay=True), help="Configuration file or directory "
              "(repeatable, read in order).")
def check(config_paths: tuple[str, ...]) -> None:
    """Check a configuration like `haproxy -c`: exit 0 when valid, 1 otherwise.

    \b
    Example:  pyxlb check -f /etc/haproxy/haproxy.cfg
    Every error ([ALERT]) and warning ([WARNING]) names its file:line:column.
    """
    from pyxlb.config import ConfigError, ConfigErrors, load_config

    try:
        config = load_config(list(config_paths))
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        _report(config_paths, exc.warnings, errors)
        click.echo("[ALERT] Fatal errors found in configuration.", err=True)
        sys.exit(1)
    _report(config_paths, config.warnings, [])
    if config.warnings:
        click.echo("Warnings were found.", err=True)
    click.echo("Configuration file is valid")


def _report(paths: tuple[str, ...], warnings: list, errors: list) -> None:
    """Warnings and errors in the order of the places they name, as HAProxy reads them."""
    order = {path: i for i, path in enumerate(paths)}

    def place(item: tuple[str, object]) -> tuple[int, str, int, int]:
        where = item[1].where  # type: ignore[attr-defined]
        if where is None:
            return (-1, "", 0, 0)
        return (order.get(where.file, len(order)), where.file, where.line, where.col or 0)

    tagged = [("[WARNING]", w) for w in warnings] + [("[ALERT]", e) for e in errors]
    for tag, item in sorted(tagged, key=place):
        click.echo(f"{tag} {item}", err=True)


@main.group()
def maps() -> None:
    """Inspect a running instance's BPF maps (from any shell)."""


_instance_option = click.option("-i", "--instance", help="IFACE or IFACE@NETNS; default: "
                                "the only one running.")


@maps.command("list")
@_instance_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def maps_list(instance: str | None, as_json: bool) -> None:
    """Name, type, sizes and entry count of every map."""
    import json

    from pyxlb.datapath.instance import InstanceError, select_instance
    from pyxlb.maps_view import format_table, list_maps

    try:
        rows = list_maps(select_instance(instance))
    except InstanceError as exc:
        _fail(str(exc))
    click.echo(json.dumps(rows, indent=1) if as_json else format_table(rows))


@maps.command("show")
@click.argument("name")
@_instance_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--addr", help="Only the entry for this source address.")
def maps_show(name: str, instance: str | None, as_json: bool, addr: str | None) -> None:
    """Decoded entries of map NAME (addresses as text, ages in seconds).

    \b
    Example:  pyxlb maps show src_stats --addr 10.111.0.10
    """
    from pyxlb.datapath.instance import InstanceError, select_instance
    from pyxlb.maps_view import format_entries, map_entries

    try:
        entries = map_entries(select_instance(instance), name, addr)
    except InstanceError as exc:
        _fail(str(exc))
    click.echo(format_entries(entries, as_json))


@maps.command("dump")
@_instance_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def maps_dump(instance: str | None, as_json: bool) -> None:
    """Every map's decoded entries."""
    import json

    from pyxlb.datapath.instance import InstanceError, select_instance
    from pyxlb.maps_view import format_entries, map_entries

    try:
        target = select_instance(instance)
        dump = {name: map_entries(target, name) for name in sorted(target.layouts())}
    except InstanceError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(dump, indent=1))
        return
    for name, entries in dump.items():
        click.secho(f"== {name} ({len(entries)} entries)", bold=True)
        click.echo(format_entries(entries, as_json=False))


@maps.command("watch")
@click.argument("name")
@_instance_option
@click.option("--addr", help="Only the entry for this source address.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between reads.")
@click.option("--count", default=0, help="Stop after this many reads (0: until Ctrl-C).")
def maps_watch(name: str, instance: str | None, addr: str | None, interval: float,
               count: int) -> None:
    """Re-read map NAME every interval, with per-second rates of growing counters.

    \b
    Example:  pyxlb maps watch src_stats --addr 10.111.0.10
    """
    import time

    from pyxlb.datapath.instance import InstanceError, select_instance
    from pyxlb.maps_view import format_entries, map_entries, with_rates

    try:
        target = select_instance(instance)
        previous, last = map_entries(target, name, addr), time.monotonic()
        reads = 0
        while count == 0 or reads < count:
            time.sleep(interval)
            current, now = map_entries(target, name, addr), time.monotonic()
            click.echo(time.strftime("-- %H:%M:%S"))
            click.echo(format_entries(with_rates(previous, current, now - last), False))
            previous, last, reads = current, now, reads + 1
    except InstanceError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _cidr_map(list_name: str, instance: str | None):
    from pyxlb.datapath.cidr_lists import MAP_NAMES
    from pyxlb.datapath.instance import InstanceError, select_instance
    from pyxlb.maps_view import open_map

    try:
        return open_map(select_instance(instance), MAP_NAMES[list_name])
    except InstanceError as exc:
        _fail(str(exc))


def _network(text: str):
    from pyxlb.datapath.cidr_lists import parse_network

    try:
        return parse_network(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDR[/LEN]") from None


def _duration_s(text: str | None) -> float | None:
    from pyxlb.config.values import BadValue, parse_time_ms

    if text is None:
        return None
    try:
        return parse_time_ms(text) / 1000
    except BadValue as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None


_LIST_HELP = {
    "block": ("Drop sources in the kernel: the running instance's block list.",
              "Drop every packet from ADDR[/LEN], from the next packet on.", "blocked"),
    "allow": ("Sources that no block applies to: the running instance's allow list.",
              "Exempt ADDR[/LEN] from every block, from the next packet on.", "allowed"),
}


def _cidr_list_group(list_name: str) -> click.Group:
    """`pyxlb block ...` and `pyxlb allow ...`: the same commands on two lists."""
    group_help, add_help, verb = _LIST_HELP[list_name]

    @click.group(list_name, help=group_help)
    def group() -> None:
        pass

    @group.command("add", help=f"{add_help}\n\n\b\nExamples:  pyxlb {list_name} add "
                   f"10.111.0.13\n           pyxlb {list_name} add 2001:db8::/32 --for 10m")
    @click.argument("network")
    @_instance_option
    @click.option("--for", "duration", help="Only this long (HAProxy time: 30s, 2m, 1h; "
                  "a bare number is milliseconds).")
    def add(network: str, instance: str | None, duration: str | None) -> None:
        from pyxlb.datapath import cidr_lists

        net, seconds = _network(network), _duration_s(duration)
        with _cidr_map(list_name, instance) as cidr_map:
            cidr_lists.add(cidr_map, net, seconds)
        click.echo(f"{verb} {net}" + (f" for {duration}" if duration else ""))

    @group.command("del", help=f"Remove ADDR[/LEN] from the {list_name} list.")
    @click.argument("network")
    @_instance_option
    def delete(network: str, instance: str | None) -> None:
        from pyxlb.datapath import cidr_lists

        net = _network(network)
        with _cidr_map(list_name, instance) as cidr_map:
            if not cidr_lists.delete(cidr_map, net):
                _fail(f"{net} is not on the {list_name} list")
        click.echo(f"removed {net} from the {list_name} list")

    @group.command("list", help="Networks on the list and how long each still has.")
    @_instance_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def list_(instance: str | None, as_json: bool) -> None:
        import json

        from pyxlb.datapath import cidr_lists
        from pyxlb.maps_view import format_table

        with _cidr_map(list_name, instance) as cidr_map:
            rows = cidr_lists.entries(cidr_map)
        if as_json:
            click.echo(json.dumps(rows, indent=1))
        elif not rows:
            click.echo(f"({list_name} list empty)")
        else:
            click.echo(format_table([{**r, "expires_in_s": r["expires_in_s"] or "never"}
                                     for r in rows]))

    return group


main.add_command(_cidr_list_group("block"))
main.add_command(_cidr_list_group("allow"))
lab.add_command(demo)
main.add_command(lab)

if __name__ == "__main__":
    main()
