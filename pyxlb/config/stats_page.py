"""The statistics page: `stats enable|uri|realm|auth|hide-version|refresh|admin`.

Any of them enables the page (at `/haproxy?stats` unless `stats uri` says otherwise),
in a frontend or listen with `mode http`. In a defaults section they apply to every
proxy after it, as in HAProxy.
"""

from __future__ import annotations

from pyxlb.config.acl import bad_condition_start, parse_condition
from pyxlb.config.conditions import Acl
from pyxlb.config.errors import ConfigError
from pyxlb.config.keywords import Cap, Kind, Statement
from pyxlb.config.model import DEFAULT_STATS_URI, Stats, StatsUser
from pyxlb.config.proxy_draft import PROXY, ProxyDraft, StatsDraft
from pyxlb.config.values import parse_time_ms


def _stats(st: Statement, p: ProxyDraft) -> StatsDraft:
    if p.stats is None:
        p.stats = StatsDraft(st.where, st.keyword)
    return p.stats


@PROXY.keyword("stats enable", args=0, caps=Cap.FE, misplaced="unsupported")
def _enable(st: Statement, p: ProxyDraft) -> None:
    _stats(st, p)


@PROXY.keyword("stats uri", "<uri prefix>", args=1, caps=Cap.FE, misplaced="unsupported")
def _uri(st: Statement, p: ProxyDraft) -> None:
    _stats(st, p)
    p.stats_uri = st.text(st.args[0])


@PROXY.keyword("stats realm", "<realm>", args=1, caps=Cap.FE, misplaced="unsupported")
def _realm(st: Statement, p: ProxyDraft) -> None:
    _stats(st, p).realm = st.text(st.args[0])


@PROXY.keyword("stats auth", "<user>:<password>", args=1, caps=Cap.FE, misplaced="unsupported")
def _auth(st: Statement, p: ProxyDraft) -> None:
    user, colon, password = st.args[0].text.partition(":")
    if not colon or not user:
        raise st.error(f"'stats auth' expects <user>:<password>, not '{st.args[0].text}'",
                       st.args[0])
    _stats(st, p).auth.append(StatsUser(user=user, password=password))


@PROXY.keyword("stats hide-version", args=0, caps=Cap.FE, misplaced="unsupported")
def _hide_version(st: Statement, p: ProxyDraft) -> None:
    _stats(st, p).hide_version = True


@PROXY.keyword("stats refresh", "<time>", args=1, caps=Cap.FE, misplaced="unsupported")
def _refresh(st: Statement, p: ProxyDraft) -> None:
    _stats(st, p).refresh_ms = st.parse(st.args[0], parse_time_ms)


@PROXY.keyword("stats admin", "if|unless <condition>", args=(1, None), caps=Cap.FE,
               misplaced="unsupported")
def _admin(st: Statement, p: ProxyDraft) -> None:
    if p.kind is Kind.DEFAULTS:
        raise st.error("'stats admin' is not allowed in a defaults section")
    if st.args[0].text not in ("if", "unless"):
        raise bad_condition_start(st, "stats admin", st.args[0])
    _stats(st, p).admin.append(parse_condition(st, st.args, p.scope))


def build_stats(p: ProxyDraft, frozen: dict[int, Acl],
                warnings: list[ConfigError]) -> Stats | None:
    """The frontend's stats page, or None when it has none (or is not `mode http`)."""
    draft = p.stats
    if draft is None:
        return None
    if p.mode != "http":
        warnings.append(ConfigError(f"'{draft.keyword}' ignored for {p.label} as it requires "
                                    "'mode http'", draft.where))
        return None
    admin = tuple(p.scope.freeze(cond, frozen) for cond in draft.admin)
    return Stats(uri=p.stats_uri or DEFAULT_STATS_URI, realm=draft.realm,
                 auth=tuple(draft.auth), hide_version=draft.hide_version,
                 refresh_ms=draft.refresh_ms, admin=admin, where=draft.where)  # type: ignore[arg-type]
