"""The typed configuration model that the rest of pyxlb reads.

Objects are frozen once the parser has built them; every one that comes from a
statement carries `where`, the file:line (and column) it came from, so later
stages (health checks, the datapath loader, `pyxlb check`) can name the place.
Values are already resolved: times in milliseconds, defaults sections and
`default-server` applied, `log global` expanded, options that do not apply to a
proxy dropped, names of backends, tables and userlists checked, and each proxy's
tier decided. ACLs, conditions and rules are in conditions.py and rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pyxlb.config.conditions import Acl, Condition
from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.rules import HttpRequestRule, RedirectRule, TcpRequestRule, UseBackendRule

Mode = Literal["http", "tcp"]
HttpReuse = Literal["never", "safe", "aggressive", "always"]
HTTP_REUSE_MODES: tuple[HttpReuse, ...] = ("never", "safe", "aggressive", "always")
# Who serves a proxy: the XDP layer-4 fast path, or the asyncio layer-7 tier (tiers.py).
Tier = Literal["kernel", "l7"]
Observe = Literal["none", "layer4", "layer7"]
OnError = Literal["fastinter", "fail-check", "sudden-death", "mark-down"]

# HAProxy's server defaults (C§5.2).
DEFAULT_INTER_MS = 2000
DEFAULT_RISE = 2
DEFAULT_FALL = 3
DEFAULT_WEIGHT = 1
DEFAULT_ERROR_LIMIT = 10
# HAProxy's default for `stats timeout`.
DEFAULT_STATS_TIMEOUT_MS = 10_000
DEFAULT_RETRIES = 3
DEFAULT_STATS_URI = "/haproxy?stats"
DEFAULT_STATS_REALM = "HAProxy Statistics"


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
    # Processes serving layer 7 (pyxlb.workers); None: one.
    nbthread: int | None = None
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
    # "udp" from a `udp@` address: only the kernel tier serves it.
    proto: Literal["tcp", "udp"] = "tcp"
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
    maxqueue: int = 0  # requests waiting in the server's own queue; 0: no limit
    cookie: str | None = None
    # Check intervals while the state changes (fastinter) and while DOWN (downinter);
    # None: `inter`.
    fastinter_ms: int | None = None
    downinter_ms: int | None = None
    observe: Observe = "none"
    error_limit: int = DEFAULT_ERROR_LIMIT
    on_error: OnError = "fail-check"
    disabled: bool = False  # starts in maintenance
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreItem:
    """One `store` data type of a stick table; `period_ms` for the rates."""

    name: str
    period_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StickTable:
    """`stick-table type T [len N] size N [expire T] [nopurge] [store D,...]`.

    Its name is its proxy's. `size` is in entries (`200k` = 204800).
    """

    type: Literal["ip", "ipv6", "integer", "string", "binary"]
    key_len: int | None = None  # string and binary keys
    size: int
    expire_ms: int | None = None
    nopurge: bool = False
    store: tuple[StoreItem, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Cookie:
    """`cookie NAME [insert|rewrite|prefix] [indirect] [nocache] ...`; mode None is
    passive: the cookie is read, never set."""

    name: str
    mode: Literal["insert", "rewrite", "prefix"] | None = None
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domains: tuple[str, ...] = ()
    maxidle_ms: int | None = None
    maxlife_ms: int | None = None
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceParams:
    """The arguments of `balance uri [whole] [len N] [depth N]` and `balance hdr(NAME)`."""

    whole: bool = False
    len: int | None = None
    depth: int | None = None
    header: str | None = None
    use_domain_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheckExpect:
    """`http-check expect [!] status|rstatus|string|rstring PATTERN`."""

    kind: Literal["status", "rstatus", "string", "rstring"]
    pattern: str
    negate: bool = False
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheck:
    """`option httpchk [METHOD] [URI] [VERSION]`, with its `http-check expect` rules: a
    check passes when every one does (none: when the status is 2xx or 3xx)."""

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    expects: tuple[HttpCheckExpect, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsUser:
    user: str
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """The statistics page (any of `stats enable|uri|realm|auth|...`)."""

    uri: str = DEFAULT_STATS_URI
    realm: str = DEFAULT_STATS_REALM
    auth: tuple[StatsUser, ...] = ()  # empty: no authentication
    hide_version: bool = False
    refresh_ms: int | None = None
    # `stats admin if|unless COND`: the requests allowed to change server states.
    admin: tuple[Condition, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A userlist user. `password` is a crypt(3) hash unless `insecure` (clear text)."""

    name: str
    password: str | None
    insecure: bool = False
    groups: tuple[str, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A userlist group; `users` has every member, from either side's declaration."""

    name: str
    users: tuple[str, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Userlist:
    """A `userlist` section, for `http_auth(NAME)` and `http_auth_group(NAME)`."""

    name: str
    users: dict[str, User]
    groups: dict[str, Group]
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
    backlog: int | None = None
    # `timeout tarpit`, else the `timeout connect` the frontend inherited (HAProxy's
    # fallback, which needs the connect timeout a frontend otherwise ignores).
    tarpit_timeout: int | None = None
    acls: dict[str, Acl] = field(default_factory=dict)
    tcp_request: list[TcpRequestRule] = field(default_factory=list)
    http_request: list[HttpRequestRule] = field(default_factory=list)
    redirects: list[RedirectRule] = field(default_factory=list)
    use_backends: list[UseBackendRule] = field(default_factory=list)
    stick_table: StickTable | None = None
    stats: Stats | None = None  # stats_uri is stats.uri
    tier: Tier = "l7"

    def backends_used(self) -> list[str]:
        """Every backend this frontend may send to: use_backend rules, then the default."""
        names = [rule.backend for rule in self.use_backends]
        if self.default_backend is not None:
            names.append(self.default_backend)
        return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """Where connections go: a `backend`, or the back half of a `listen`.

    `logs` receive the server state changes. Only the options and timeouts that
    apply to a backend are kept. A listen's rules are on both halves; as in HAProxy,
    the backend half runs them only when another frontend chose it.
    """

    name: str
    mode: Mode
    balance: str = "roundrobin"
    servers: list[Server]
    options: frozenset[str]
    timeouts: Timeouts
    logs: list[LogTarget]
    where: Where
    balance_params: BalanceParams = BalanceParams()
    hash_type: Literal["map-based", "consistent"] = "map-based"
    # pyxlb's own (`pyxlb-forward`): how the kernel tier sends a layer-4 flow on.
    forward: Literal["nat", "dsr"] = "nat"
    retries: int = DEFAULT_RETRIES
    # Which idle server connections a request may take (`http-reuse`).
    http_reuse: HttpReuse = "safe"
    cookie: Cookie | None = None
    httpchk: HttpCheck | None = None
    acls: dict[str, Acl] = field(default_factory=dict)
    http_request: list[HttpRequestRule] = field(default_factory=list)
    redirects: list[RedirectRule] = field(default_factory=list)
    stick_table: StickTable | None = None
    tier: Tier = "l7"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A whole configuration: what `load_config` and `parse_text` return."""

    global_: Global
    defaults: list[Defaults]
    frontends: dict[str, Frontend]
    backends: dict[str, Backend]
    userlists: dict[str, Userlist]
    files: list[str]
    warnings: list[ConfigError]
