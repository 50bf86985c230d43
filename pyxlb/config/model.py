"""The typed configuration model that the rest of pyxlb reads.

Objects are frozen once the parser has built them; every one that comes from a
statement carries `where`, the file:line (and column) it came from, so later
stages (health checks, the datapath loader, `pyxlb check`) can name the place.
Values are already resolved: times in milliseconds, defaults sections applied,
`log global` expanded, options that do not apply to a proxy dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyxlb.config.errors import ConfigError, Where

Mode = Literal["http", "tcp"]

# HAProxy's server defaults (C§5.2).
DEFAULT_INTER_MS = 2000
DEFAULT_RISE = 2
DEFAULT_FALL = 3
DEFAULT_WEIGHT = 1
# HAProxy's default for `stats timeout`.
DEFAULT_STATS_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """`timeout ...` values in milliseconds; None when not set (HAProxy's own fallbacks,
    e.g. queue -> connect, are for the consumer to apply)."""

    connect: int | None = None
    client: int | None = None
    server: int | None = None
    tunnel: int | None = None
    http_keep_alive: int | None = None
    http_request: int | None = None
    queue: int | None = None
    tarpit: int | None = None
    check: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogTarget:
    """`log TARGET FACILITY [MAX [MIN]]`: where to send syslog messages.

    `target` is the socket path for kind "unix", "host:port" ("[v6]:port") for "udp".
    """

    kind: Literal["unix", "udp"]
    target: str
    host: str | None = None
    port: int | None = None
    facility: str
    max_level: str = "debug"
    min_level: str = "emerg"
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsSocket:
    """The runtime API socket: `stats socket PATH [mode OCTAL] [level LEVEL]`."""

    path: str
    mode: int | None = None  # None: as the umask leaves it
    level: str = "operator"
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Global:
    """The process-wide settings of all `global` sections."""

    logs: list[LogTarget] = field(default_factory=list)
    stats_socket: StatsSocket | None = None
    stats_timeout_ms: int = DEFAULT_STATS_TIMEOUT_MS
    maxconn: int | None = None
    chroot: str | None = None
    user: str | None = None
    group: str | None = None
    daemon: bool = False
    where: Where | None = None  # the first global section; None when there is none


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind:
    """A listening address. `host` None means every address (`*:80`, `:80`)."""

    host: str | None
    port: int
    ssl: bool = False
    crt: str | None = None
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    """A `server` line. `port` None means the port the client connected to."""

    name: str
    host: str
    port: int | None
    check: bool = False
    weight: int = DEFAULT_WEIGHT
    backup: bool = False
    inter_ms: int = DEFAULT_INTER_MS
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    maxconn: int = 0  # 0: no limit, as in HAProxy
    cookie: str | None = None
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """A `defaults` section as written; proxies after it start from these values."""

    name: str | None
    mode: Mode
    options: frozenset[str]
    timeouts: Timeouts
    logs: list[LogTarget]
    balance: str
    maxconn: int | None
    default_backend: str | None
    stats_uri: str | None
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontend:
    """What accepts connections: a `frontend`, or the front half of a `listen`.

    Only the options and timeouts that apply to a frontend are kept.
    """

    name: str
    mode: Mode
    binds: list[Bind]
    default_backend: str | None
    stats_uri: str | None
    options: frozenset[str]
    timeouts: Timeouts
    maxconn: int | None
    logs: list[LogTarget]
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """Where connections go: a `backend`, or the back half of a `listen`.

    `logs` receive the server state changes. Only the options and timeouts that
    apply to a backend are kept.
    """

    name: str
    mode: Mode
    balance: str = "roundrobin"
    servers: list[Server]
    options: frozenset[str]
    timeouts: Timeouts
    logs: list[LogTarget]
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A whole configuration: what `load_config` and `parse_text` return."""

    global_: Global
    defaults: list[Defaults]
    frontends: dict[str, Frontend]
    backends: dict[str, Backend]
    userlists: dict[str, object]
    files: list[str]
    warnings: list[ConfigError]
