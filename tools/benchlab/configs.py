"""Benchmark configurations, derived from the lab's own (pyxlb/lab/configs/):
one file that both pyxlb and HAProxy run, with the web servers' port moved to
where the benchmark's nginx listens and the `global` section left out (it
names system paths, a chroot and a stats socket that HAProxy would contend
for with the system's instance)."""

from __future__ import annotations

import re

from pyxlb.lab.balancer import lab_config
from pyxlb.lab.topology import LabTopology

_SECTION_RE = re.compile(r"^[A-Za-z]")


def without_global(text: str) -> str:
    """`text` with its `global` section removed; sections start at column 0."""
    kept: list[str] = []
    in_global = False
    for line in text.splitlines(keepends=True):
        if _SECTION_RE.match(line):
            in_global = line.split()[0] == "global"
        if not in_global:
            kept.append(line)
    return "".join(kept)


def move_servers(text: str, addrs: tuple[str, ...], port: int) -> str:
    """`server` lines whose address is one of `addrs` point at `port` instead."""
    alternatives = "|".join(re.escape(a) for a in addrs)
    pattern = re.compile(rf"^(\s*server\s+\S+\s+)({alternatives}):\d+\b", re.MULTILINE)
    moved, count = pattern.subn(rf"\g<1>\g<2>:{port}", text)
    if not count:
        raise ValueError(f"no server line names any of {', '.join(addrs)}")
    return moved


def bench_config(name: str, web_port: int) -> str:
    """Lab config NAME for the benchmark: its web servers on `web_port`."""
    web = tuple(h.v4[0] for h in LabTopology().backends("web"))
    return move_servers(without_global(lab_config(name).read_text()), web, web_port)
