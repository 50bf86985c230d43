"""Compiles a frontend's `tcp-request connection` rules into what XDP enforces.

HAProxy evaluates those rules in order, per new connection, and the first
accept or reject is final. The kernel can do the common shapes exactly:

    tcp-request connection track-sc0 src              -> count SYNs per source
    tcp-request connection accept if { src NETS }     -> allow list (before any reject)
    tcp-request connection reject if { src NETS }     -> block list
    tcp-request connection reject if { sc0_conn_rate gt N } || { src_get_gpc0 gt 0 }
                                                      -> thresholds in dp_params

Anything else raises NotCompilable naming the rule's file:line, so `pyxlb up`
refuses it rather than enforce something else. Pure: config in, plan out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from pyxlb.config.conditions import Condition, IntRange, Match
from pyxlb.config.fetches import counter_ref
from pyxlb.config.model import Config, Frontend, StickTable
from pyxlb.config.rules import Accept, Reject, TcpRequestRule, TrackSc
from pyxlb.datapath.params import DpParams

Network = IPv4Network | IPv6Network
# Counter data the kernel compares, and the DpParams threshold for each.
THRESHOLDS = {"conn_rate": "conn_rate_gt", "http_err_rate": "http_err_rate_gt",
              "gpc0": "gpc0_gt"}


class NotCompilable(Exception):
    def __init__(self, rule: TcpRequestRule, why: str) -> None:
        super().__init__(f"{rule.where}: this tcp-request connection rule cannot be "
                         f"enforced in the kernel yet: {why}")


@dataclass
class KernelPlan:
    """What XDP is told for one instance."""

    params: DpParams = field(default_factory=DpParams)
    table: StickTable | None = None
    allow: list[Network] = field(default_factory=list)
    block: list[Network] = field(default_factory=list)


def _single_matches(rule: TcpRequestRule, condition: Condition) -> list[Match]:
    """The matches of an `if A || B || ...` whose every alternative is one
    positive ACL."""
    if condition.polarity != "if":
        raise NotCompilable(rule, "'unless' conditions are not compiled")
    matches = []
    for terms in condition.alternatives:
        if len(terms) != 1 or terms[0].negate:
            raise NotCompilable(rule, "only ORs of single, non-negated ACLs are compiled")
        matches.extend(terms[0].acl.matches)
    return matches


def _networks(rule: TcpRequestRule, match: Match) -> list[Network]:
    nets = [p for p in match.patterns if isinstance(p, IPv4Network | IPv6Network)]
    if match.fetch.name != "src" or len(nets) != len(match.patterns) or not nets:
        raise NotCompilable(rule, f"'{match.criterion}' is not a source-address match")
    return nets


def _threshold(rule: TcpRequestRule, match: Match) -> tuple[str, int]:
    ref = counter_ref(match.fetch.name)
    if ref is None or ref.op != "get" or ref.data not in THRESHOLDS:
        raise NotCompilable(rule, f"'{match.criterion}' is not a counter the kernel keeps "
                            f"({', '.join(THRESHOLDS)})")
    ranges = [p for p in match.patterns if isinstance(p, IntRange)]
    if len(ranges) != 1 or ranges[0].high is not None or ranges[0].low is None:
        raise NotCompilable(rule, f"'{match.criterion}' must be compared with gt or ge")
    return THRESHOLDS[ref.data], ranges[0].low - 1


def compile_frontend(frontend: Frontend, plan: KernelPlan) -> None:
    """Adds what `frontend`'s tcp-request connection rules ask of the kernel."""
    thresholds: dict[str, int] = {}
    count_syns = plan.params.count_syns
    seen_reject = False
    for rule in frontend.tcp_request:
        action = rule.action
        if isinstance(action, TrackSc):
            if rule.condition or action.key.name != "src" or action.counter != 0:
                raise NotCompilable(rule, "only an unconditional 'track-sc0 src' is compiled")
            if frontend.stick_table is None:
                raise NotCompilable(rule, "the frontend has no stick-table of its own")
            count_syns, plan.table = True, frontend.stick_table
            continue
        if rule.condition is None:
            raise NotCompilable(rule, "an unconditional accept/reject is not compiled")
        matches = _single_matches(rule, rule.condition)
        if isinstance(action, Accept):
            if seen_reject:
                raise NotCompilable(rule, "an accept after a reject is not compiled")
            for match in matches:
                plan.allow.extend(_networks(rule, match))
            continue
        assert isinstance(action, Reject)
        seen_reject = True
        for match in matches:
            if match.fetch.name == "src":
                plan.block.extend(_networks(rule, match))
            else:
                name, value = _threshold(rule, match)
                thresholds[name] = min(value, thresholds.get(name, value))
    if thresholds and plan.table is None:
        raise NotCompilable(frontend.tcp_request[-1], "counters are read but nothing "
                            "tracks them ('tcp-request connection track-sc0 src')")
    if plan.table is not None:
        plan.params = DpParams.for_stick_table(plan.table, count_syns=count_syns,
                                               **thresholds)


def compile_config(config: Config) -> KernelPlan:
    """The kernel plan for every frontend of `config` (one table per instance)."""
    plan = KernelPlan()
    for frontend in config.frontends.values():
        table_before = plan.table
        compile_frontend(frontend, plan)
        if table_before is not None and plan.table is not table_before:
            raise NotCompilable(frontend.tcp_request[0], "only one frontend per instance "
                                "may track connections in the kernel")
    return plan
