"""A namespace's protocol counters (/proc/net/snmp and /proc/net/netstat), and what
they say about a run's TCP: segments sent again, and segments that came out of
order (a hop that forwards on two CPUs at once can reorder a stream)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyxlb.lab.lab import Lab

FILES = ("/proc/net/snmp", "/proc/net/netstat")
RETRANSMITTED = "Tcp.RetransSegs"
OUT_OF_ORDER = "TcpExt.TCPOFOQueue"  # segments a receiver queued for a gap before them


def proc_net_counters(text: str) -> dict[str, int]:
    """/proc/net/snmp or /proc/net/netstat as {"Ip.ForwDatagrams": n, ...}: each
    group is a line of names followed by a line of values, both led by "Group:"."""
    counters: dict[str, int] = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        group, _, names_rest = names.partition(":")
        vgroup, _, values_rest = values.partition(":")
        if group != vgroup:
            raise ValueError(f"proc/net counters: {group!r} names are followed by "
                             f"{vgroup!r} values")
        fields, numbers = names_rest.split(), values_rest.split()
        if len(fields) != len(numbers):
            raise ValueError(f"proc/net counters: {group} has {len(fields)} names "
                             f"but {len(numbers)} values")
        counters.update((f"{group}.{f}", int(n)) for f, n in zip(fields, numbers, strict=True))
    return counters


def read_counters(lab: Lab, role: str) -> dict[str, int]:
    """The counters of `role`'s namespace, both files."""
    return proc_net_counters(lab.run(role, ["cat", *FILES]).stdout)


def tcp_counters(lab: Lab, roles: Sequence[str]) -> dict[str, int]:
    """Retransmitted and out-of-order segments, summed over `roles`' namespaces."""
    total = dict.fromkeys((RETRANSMITTED, OUT_OF_ORDER), 0)
    for role in roles:
        c = read_counters(lab, role)
        for key in total:
            total[key] += c[key]
    return total


def tcp_note(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    return (f"TCP: {after[RETRANSMITTED] - before[RETRANSMITTED]} segments retransmitted, "
            f"{after[OUT_OF_ORDER] - before[OUT_OF_ORDER]} queued out of order")
