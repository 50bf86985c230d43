"""Where a running pyxlb instance keeps its pinned BPF objects and its state.

An instance is one interface in one network namespace. Its pins live under
/sys/fs/bpf/pyxlb/<name>/ and its state (map layouts, daemon pid) under
/run/pyxlb/instances/<name>/, where <name> is `IFACE` in the root namespace
and `IFACE@NETNS` elsewhere, so same-named interfaces in two namespaces never
share maps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyxlb.datapath.layout import MapLayout, load_layouts

PIN_ROOT = Path("/sys/fs/bpf/pyxlb")
RUN_ROOT = Path("/run/pyxlb/instances")


class InstanceError(Exception):
    """No such instance, or no way to tell which one was meant."""


@dataclass(frozen=True)
class Instance:
    iface: str
    netns: str | None = None

    @property
    def name(self) -> str:
        return f"{self.iface}@{self.netns}" if self.netns else self.iface

    @classmethod
    def from_name(cls, name: str) -> Instance:
        iface, _, netns = name.partition("@")
        return cls(iface, netns or None)

    @property
    def pin_dir(self) -> Path:
        return PIN_ROOT / self.name

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    @property
    def layout_path(self) -> Path:
        return self.run_dir / "layout.json"

    @property
    def state_path(self) -> Path:
        return self.run_dir / "daemon.json"

    def layouts(self) -> dict[str, MapLayout]:
        try:
            return load_layouts(self.layout_path)
        except FileNotFoundError:
            raise InstanceError(
                f"instance {self.name} has no map layouts ({self.layout_path}): "
                "is `pyxlb up` running for it?") from None

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_state(self, state: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_path)

    def daemon_pid(self) -> int | None:
        """The pid of the `pyxlb up` serving this instance, if it still runs."""
        state = self.state()
        if not state:
            return None
        pid = int(state["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


def instances() -> list[Instance]:
    """Every instance that has pins or state on this machine."""
    names: set[str] = set()
    for root in (PIN_ROOT, RUN_ROOT):
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if p.is_dir())
    return [Instance.from_name(n) for n in sorted(names)]


def select_instance(name: str | None) -> Instance:
    """The instance called `name`, or the only one there is."""
    found = instances()
    if name:
        for instance in found:
            if instance.name == name:
                return instance
        raise InstanceError(f"no pyxlb instance named {name!r} "
                            f"(running: {', '.join(i.name for i in found) or 'none'})")
    if not found:
        raise InstanceError("no pyxlb instance is running (start one with `pyxlb up`)")
    if len(found) > 1:
        raise InstanceError("several instances are running; pick one with --instance: "
                            + ", ".join(i.name for i in found))
    return found[0]
