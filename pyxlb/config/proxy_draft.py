"""A proxy or defaults section while it is being read, and the registry of proxy keywords.

The keyword handlers (proxy_section, balancing, actions, stats_page, checks,
stick_table) fill a ProxyDraft; proxy_section turns it into the model at the end.
As in HAProxy, a proxy starts as a copy of the defaults section it inherits from.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pyxlb.config.acl import AclScope, ConditionDraft, PatternReader, PendingRule
from pyxlb.config.errors import Where
from pyxlb.config.keywords import Kind, Registry
from pyxlb.config.model import (
    DEFAULT_RETRIES,
    DEFAULT_STATS_REALM,
    BalanceParams,
    Bind,
    Cookie,
    HttpCheck,
    HttpCheckExpect,
    HttpReuse,
    LogTarget,
    Mode,
    Server,
    StatsUser,
    StickTable,
)


@dataclass
class StatsDraft:
    """The `stats` statements of a section; any of them enables the page."""

    where: Where  # the first stats statement
    keyword: str  # and its keyword, for messages
    realm: str = DEFAULT_STATS_REALM
    auth: list[StatsUser] = field(default_factory=list)
    hide_version: bool = False
    refresh_ms: int | None = None
    admin: list[ConditionDraft] = field(default_factory=list)


@dataclass
class ProxyDraft:
    """A proxy or defaults section while it is being read."""

    kind: Kind
    name: str | None
    where: Where
    reader: PatternReader
    mode: Mode = "tcp"
    options: dict[str, Where] = field(default_factory=dict)  # enabled, and where
    timeouts: dict[str, int] = field(default_factory=dict)  # HAProxy name -> ms
    # "global" (from `log global`) stands for the global section's targets, expanded
    # once every global section has been read.
    logs: list[LogTarget | Literal["global"]] = field(default_factory=list)
    balance: str = "roundrobin"
    balance_params: BalanceParams = BalanceParams()
    hash_type: Literal["map-based", "consistent"] = "map-based"
    forward: Literal["nat", "dsr"] = "nat"
    maxconn: int | None = None
    backlog: int | None = None
    retries: int = DEFAULT_RETRIES
    http_reuse: HttpReuse = "safe"
    default_backend: str | None = None
    stats_uri: str | None = None
    stats: StatsDraft | None = None
    cookie: Cookie | None = None
    httpchk: HttpCheck | None = None
    http_check_expects: list[HttpCheckExpect] = field(default_factory=list)
    # Server options from `default-server` lines, applied to later `server` lines.
    default_server: dict[str, Any] = field(default_factory=dict)
    # Where settings that are checked after parsing were made (perhaps in a defaults).
    origins: dict[str, Where] = field(default_factory=dict)
    binds: list[Bind] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    stick_table: StickTable | None = None
    tcp_request: list[PendingRule] = field(default_factory=list)
    http_request: list[PendingRule] = field(default_factory=list)
    redirects: list[PendingRule] = field(default_factory=list)
    use_backends: list[PendingRule] = field(default_factory=list)
    # The defaults section this one inherits from, whose rules run first.
    parent: ProxyDraft | None = None
    scope: AclScope = field(init=False)

    def __post_init__(self) -> None:
        self.scope = AclScope(self.name or "", self.reader)

    @property
    def label(self) -> str:
        if self.kind is Kind.DEFAULTS and self.name is None:
            return "the defaults section"
        return f"{self.kind.value} '{self.name}'"

    @property
    def anonymous_defaults(self) -> bool:
        return self.kind is Kind.DEFAULTS and not self.name

    @property
    def has_rules(self) -> bool:
        return bool(self.tcp_request or self.http_request)

    def inherit(self, defaults: ProxyDraft) -> None:
        """Start from a defaults section's settings, as HAProxy copies them."""
        for name in ("mode", "options", "timeouts", "logs", "balance", "balance_params",
                     "hash_type", "forward", "maxconn", "backlog", "retries", "http_reuse",
                     "default_backend",
                     "stats_uri", "stats", "cookie", "httpchk", "http_check_expects",
                     "default_server", "origins"):
            setattr(self, name, copy.copy(getattr(defaults, name)))
        if self.stats is not None:
            self.stats = dataclasses.replace(self.stats, auth=list(self.stats.auth))
        self.parent = defaults


PROXY: Registry[ProxyDraft] = Registry("a defaults, frontend, backend or listen section")
