"""Server state as the runtime API and the health checks set it, told to both
tiers the same way.

Health (UP, DOWN, MAINT) lives in the `HealthMonitor`; the runtime API adds
drain and weights. A server takes new traffic when its health is UP, it is not
drained and its weight is not 0 (HAProxy's srv_currently_usable). Every change,
from a check or a command, ends in `apply()`: the l7 pools, the stats text and,
for kernel-tier backends, the layer-4 services (their tables rebuilt and
swapped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pyxlb.health.state import ServerState, check_cells
from pyxlb.log.format import QueueFigures
from pyxlb.runtime.commands import CommandError

if TYPE_CHECKING:
    from pyxlb.config.model import Config
    from pyxlb.health.checker import HealthMonitor
    from pyxlb.l4_services import L4Services
    from pyxlb.l7.upstream import Upstreams


class ServerAdmin:
    def __init__(self, config: Config, monitor: HealthMonitor, upstreams: Upstreams,
                 l4: L4Services | None = None,
                 on_drain: Callable[[str, str, bool, QueueFigures], None] | None = None
                 ) -> None:
        """`on_drain(backend, server, drained, figures)`: a server entered or left
        drain (figures taken after the change)."""
        self.monitor = monitor
        self.on_drain = on_drain
        self.upstreams = upstreams
        self.l4 = l4
        self.drained: set[tuple[str, str]] = set()
        self.initial = {(be.name, s.name): s.weight
                        for be in config.backends.values() for s in be.servers}
        self.weights = dict(self.initial)

    def start(self) -> None:
        """Tells both tiers every server's starting state: `UP` for checked
        servers until their checks say otherwise, MAINT for `disabled` ones."""
        for backend, server in self.initial:
            self.apply(backend, server)

    def health_up(self, backend: str, server: str) -> bool:
        return self.monitor.state(backend, server).server_state is ServerState.UP

    def usable(self, backend: str, server: str) -> bool:
        key = (backend, server)
        return (self.health_up(backend, server) and key not in self.drained
                and self.weights[key] > 0)

    def weight(self, backend: str, server: str) -> int:
        return self.weights[(backend, server)]

    def status(self, backend: str, server: str) -> str:
        """The stats text: the health's, `DRAIN` in place of `UP` (`DRAIN 1/3`) or
        of `no check` for a drained server that is up (stats.c's srv_hlt_st)."""
        text = self.monitor.status_text(backend, server)
        if (backend, server) in self.drained and self.health_up(backend, server):
            return "DRAIN" + text[2:] if text.startswith("UP") else "DRAIN"
        return text

    def check_cells(self, backend: str, server: str) -> dict[str, object]:
        return check_cells(self.monitor.state(backend, server),
                           self.monitor.params(backend, server))

    def apply(self, backend: str, server: str) -> int:
        """Tells both tiers what `backend/server` may take now; returns how many
        queued requests that moved (Upstreams.set_server_state)."""
        moved = self.upstreams.set_server_state(
            backend, server, self.usable(backend, server), self.status(backend, server),
            self.check_cells(backend, server))
        if self.l4 is not None and backend in self.l4.backends:
            self.l4.update(self.usable, self.weight)
        return moved

    def figures(self, backend: str, server: str, moved: int) -> QueueFigures:
        """What the log of a change counts: the server's sessions and queue now
        (this process's: with workers, each has its own), and `moved`."""
        sessions, queued = self.upstreams.queue_figures(backend, server)
        return QueueFigures(sessions, moved, queued)

    def show_status(self, backend: str, server: str) -> None:
        """A check ended or traffic was observed without a change of state."""
        self.upstreams.set_server_status(backend, server, self.status(backend, server),
                                         self.check_cells(backend, server))

    # the runtime API's changes

    def set_state(self, backend: str, server: str, state: str) -> None:
        key = (backend, server)
        drain_moved = False
        if state in ("ready", "drain"):
            was_drained = key in self.drained
            if state == "drain":
                self.drained.add(key)
            else:
                self.drained.discard(key)
            self.monitor.set_maint(backend, server, False)
            drain_moved = was_drained != (state == "drain")
        elif state == "maint":
            self.monitor.set_maint(backend, server, True)
        elif state == "enable":
            self.monitor.set_maint(backend, server, False)
        else:
            raise ValueError(f"unknown server state {state!r}")
        moved = self.apply(backend, server)
        if drain_moved and self.on_drain is not None:
            self.on_drain(backend, server, state == "drain",
                          self.figures(backend, server, moved))

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        try:
            self.upstreams.set_weight(backend, server, weight)
        except ValueError as exc:
            raise CommandError(f"{exc}\n") from None
        self.weights[(backend, server)] = weight
        self.apply(backend, server)

    def initial_weight(self, backend: str, server: str) -> int:
        return self.initial[(backend, server)]
