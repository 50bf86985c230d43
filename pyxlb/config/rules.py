"""The rule AST: `http-request`, `tcp-request connection`, `redirect` and `use_backend`.

Pure data for the l7 rule engine and the kernel-rule compiler. Each rule holds its
action and its Condition (None: always applies), in the order written. HAProxy runs
them in this order per proxy (HAPROXY-NOTES, "Request processing order"): tcp-request
connection rules, http-request rules (a named defaults section's first), stats,
redirect rules, then use_backend rules and default_backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyxlb.config.conditions import Condition, Fetch
from pyxlb.config.errors import Where

RedirectCode = Literal[301, 302, 303, 307, 308]


@dataclass(frozen=True, slots=True, kw_only=True)
class Allow:
    """Stop evaluating http-request rules and let the request through."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deny:
    """Answer with HAProxy's error page for `status` (403 unless `deny_status N`)."""

    status: int = 403


@dataclass(frozen=True, slots=True, kw_only=True)
class Tarpit:
    """Hold the request for `timeout tarpit`, then answer HAProxy's error page for
    `status` (500 unless `deny_status N`)."""

    status: int = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """Answer 401 asking for Basic credentials; `realm` None means the proxy's name."""

    realm: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackSc:
    """`track-scN KEY [table T]`: count this connection/request under KEY in table T.

    `table` is resolved: the proxy's own table when none was written.
    """

    counter: int  # 0, 1 or 2
    key: Fetch
    table: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetHeader:
    """`set-header` (replace) or `add-header` (append); `value` is a log-format string."""

    name: str
    value: str
    replace: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DelHeader:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceHeader:
    """Replace a whole header value matching `regex` (unanchored) by `replacement`."""

    name: str
    regex: str
    replacement: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPath:
    """`set-path`: the new path (a log-format string); the query string is kept."""

    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplacePath:
    """`replace-path` (path only) or `replace-uri` (the whole URI) by regex."""

    regex: str
    replacement: str
    whole_uri: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """`redirect location|prefix|scheme TARGET [code N] [options]`, also as an action."""

    kind: Literal["location", "prefix", "scheme"]
    target: str
    code: RedirectCode = 302
    drop_query: bool = False
    append_slash: bool = False
    set_cookie: str | None = None  # NAME[=VALUE]
    clear_cookie: str | None = None  # NAME[=]


@dataclass(frozen=True, slots=True, kw_only=True)
class UseService:
    """`use-service NAME`: a service built into the proxy answers the request
    (HAProxy 2.6's `prometheus-exporter`, the one pyxlb has)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    """tcp-request connection: accept the connection, stop evaluating."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """tcp-request connection: close the connection at once, stop evaluating.
    `reject` closes it with a RST; `silent-drop` (silent) answers nothing."""

    silent: bool = False


HttpAction = (Allow | Deny | Tarpit | Auth | TrackSc | SetHeader | DelHeader | ReplaceHeader
              | SetPath | ReplacePath | Redirect | UseService)
TcpAction = Accept | Reject | TrackSc

# Actions after which no other http-request rule runs.
FINAL_HTTP_ACTIONS = (Allow, Deny, Tarpit, Auth, Redirect, UseService)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequestRule:
    """`http-request ACTION ... [if|unless COND]`.

    `inherited` marks the rules of the named defaults section the proxy inherits
    from: they come first and run as one list with the proxy's own (an `allow` there
    also skips the proxy's rules, as in HAProxy).
    """

    action: HttpAction
    condition: Condition | None = None
    inherited: bool = False
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpRequestRule:
    """`tcp-request connection ACTION ... [if|unless COND]`; `inherited` as above."""

    action: TcpAction
    condition: Condition | None = None
    inherited: bool = False
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectRule:
    """A `redirect` statement."""

    redirect: Redirect
    condition: Condition | None = None
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class UseBackendRule:
    """`use_backend NAME [if|unless COND]`; the name is checked to be a backend."""

    backend: str
    condition: Condition | None = None
    where: Where
