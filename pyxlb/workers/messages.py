"""What the daemon and its workers tell each other (pyxlb.workers.channel
carries them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# -- daemon to worker


@dataclass(frozen=True)
class Start:
    """Serve `config`'s layer-7 frontends; the kernel maps are the instance's.
    `index` of `count` processes serving layer 7 (the daemon is 0)."""

    config: Any  # pyxlb.config.Config
    iface: str
    netns: str | None
    index: int
    count: int


@dataclass(frozen=True)
class ServerState:
    """What the daemon's ServerAdmin told its own pools (Upstreams' calls)."""

    backend: str
    server: str
    up: bool
    status: str
    check: Mapping[str, object] | None = None


@dataclass(frozen=True)
class ServerStatus:
    backend: str
    server: str
    text: str
    check: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Weight:
    backend: str
    server: str
    weight: int


@dataclass(frozen=True)
class Report:
    """Send your counters (answer: Counters with the same id)."""

    id: int


@dataclass(frozen=True)
class Collected:
    """Every process's counters added up (answer to Collect)."""

    id: int
    values: list[int]


@dataclass(frozen=True)
class Stop:
    """Close the listeners and finish."""


# -- worker to daemon


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class Failed:
    """The worker could not start; `message` says why (file:line where it can)."""

    message: str


@dataclass(frozen=True)
class Observed:
    """A request's outcome for `observe layer4|layer7`."""

    backend: str
    server: str
    analyze: Any  # pyxlb.health.state.Analyze


@dataclass(frozen=True)
class Control:
    """A `stats admin` form's change, for the daemon's ServerAdmin.set_state."""

    backend: str
    server: str
    state: str  # "ready", "drain" or "maint"


@dataclass(frozen=True)
class Collect:
    """The worker shows stats: it wants every process's counters added up."""

    id: int


@dataclass(frozen=True)
class Counters:
    id: int
    values: list[int]
