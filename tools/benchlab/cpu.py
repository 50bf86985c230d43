"""CPU seconds a balancer spends during a run: its processes' user+system time
(psutil), and the softirq time of the whole machine from /proc/stat.

Namespaces have no CPUs of their own: softirq time is every namespace's packet
processing (client, bridge, balancer, servers), XDP included, since XDP runs in
the receiving CPU's softirq. The balancer's share is what a run spends beyond the
no-balancer run for the same work, so the table compares softirq per request."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SOFTIRQ_FIELD = 7  # "cpu user nice system idle iowait irq softirq ..."


def softirq_seconds(stat_text: str) -> float:
    """Softirq seconds of all CPUs, from the text of /proc/stat."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return int(fields[_SOFTIRQ_FIELD]) / _CLK_TCK
    raise ValueError("/proc/stat has no aggregate 'cpu' line")


def _read_softirq() -> float:
    with open("/proc/stat") as f:
        return softirq_seconds(f.read())


def tree_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user+system seconds of each live process in `pids` and its descendants."""
    seen: dict[int, float] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seen[p.pid] = t.user + t.system
    return seen


@dataclass
class CpuUse:
    process_s: float  # the balancer's processes
    softirq_s: float  # the whole machine's


class CpuMeter:
    """Snapshots around a run: `start()`, then `stop()` gives the CpuUse between."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._procs: dict[int, float] = {}
        self._softirq = 0.0

    def start(self) -> None:
        self._procs = tree_cpu_seconds(self.pids)
        self._softirq = _read_softirq()

    def stop(self) -> CpuUse:
        after = tree_cpu_seconds(self.pids)
        # A process born during the run counts from zero.
        used = sum(t - self._procs.get(pid, 0.0) for pid, t in after.items())
        return CpuUse(max(0.0, used), _read_softirq() - self._softirq)
