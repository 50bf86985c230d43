"""Compiles a frontend's `tcp-request connection` rules into what XDP enforces.

HAProxy evaluates those rules in order, per new connection, and the first
accept or reject is final. The kernel can do the common shapes exactly:

    tcp-request connection track-sc0 src              -> count SYNs per source
    tcp-request connection accept if { src NETS }     -> src_rules: accept
    tcp-request connection reject if { src NETS }     -> src_rules: a RST
    tcp-request connection silent-drop if { src NETS }-> src_rules: dropped
    tcp-request connection reject if { sc0_conn_rate gt N } || { src_get_gpc0 gt 0 }
                                                      -> thresholds in dp_params, for
                                                         the tracking frontend's SYNs

A rejected SYN is answered with a RST for `reject` (HAProxy closes the
accepted socket without lingering: one RST) and dropped for `silent-drop`.

The frontends with such rules are the tracked ones, numbered in config order:
XDP runs the rules only on the SYNs for their binds (`tracked_ports_only`),
so a SYN to any other port (SSH, a layer-4 service, another frontend) is
never counted nor rejected. The src rules are the frontend's own: an accept
in one frontend exempts nobody from another's rejects. The rules' order is
kept: pyxlb.datapath.src_rules folds it into one lookup per SYN, and the
SYN is counted first where the deciding rule follows the track-sc0. The
global block and allow lists of the CLI are another matter (every packet).

Anything else raises NotCompilable naming the rule's file:line, so `pyxlb up`
refuses it rather than enforce something else.

The kernel-tier (`mode tcp`) proxies become layer-4 services too
(`kernel_services`): one per bind and address family, balanced over the
backend's servers in the state health checks give them, backups taking new
flows only while no active server is up (the first one, or all of them with
`option allbackups`), as in HAProxy. Pure: config in, plan out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from pyxlb.config.conditions import Condition, IntRange, Match
from pyxlb.config.fetches import counter_ref
from pyxlb.config.model import Backend, Config, Frontend, Server, StickTable
from pyxlb.config.rules import Accept, Reject, TcpRequestRule, TrackSc
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.ports import TRACKED_FRONTENDS_MAX
from pyxlb.datapath.ports import Bind as TrackedBind
from pyxlb.datapath.services import BY_LOAD, CANDIDATES_MAX, Service, Timeouts
from pyxlb.datapath.services import Backend as L4Backend
from pyxlb.datapath.src_rules import SrcRule

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

    params: DpParams = field(default_factory=lambda: DpParams(tracked_ports_only=True))
    table: StickTable | None = None
    src_rules: list[SrcRule] = field(default_factory=list)  # each frontend's in order
    tracked: list[TrackedBind] = field(default_factory=list)  # the `ports`/`listeners` binds


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


def _tracked_binds(frontend: Frontend, number: int,
                   taken: list[TrackedBind]) -> list[TrackedBind]:
    first = frontend.tcp_request[0]
    if number >= TRACKED_FRONTENDS_MAX:
        raise NotCompilable(first, f"at most {TRACKED_FRONTENDS_MAX} frontends may have "
                            "tcp-request connection rules")
    binds = []
    for bind in frontend.binds:
        if bind.proto != "tcp":
            raise NotCompilable(first, f"bind {bind.where}: tcp-request "
                                "connection rules act on TCP connections, not on udp@ binds")
        if bind.host is not None:
            try:
                ipaddress.ip_address(bind.host)
            except ValueError:
                raise NotCompilable(first, f"bind {bind.host}:{bind.port} "
                                    f"({bind.where}) is not an IP address") from None
        tracked = TrackedBind(bind.host, bind.port, frontend=number)
        where = None if tracked.wildcard else ipaddress.ip_address(bind.host)
        if any(t.port == bind.port and (None if t.wildcard else ipaddress.ip_address(t.addr))
               == where for t in taken):
            raise NotCompilable(first, f"bind {bind.where}: another frontend with tcp-request "
                                "connection rules binds the same address and port")
        binds.append(tracked)
    return binds


def compile_frontend(frontend: Frontend, plan: KernelPlan, number: int = 0) -> None:
    """Adds what `frontend`'s tcp-request connection rules ask of the kernel;
    `number` is the frontend's among the tracked ones."""
    if frontend.tcp_request:
        plan.tracked.extend(_tracked_binds(frontend, number, plan.tracked))
    thresholds: dict[str, int] = {}
    tracking = counter_reject = silent = False
    for rule in frontend.tcp_request:
        action = rule.action
        if isinstance(action, TrackSc):
            if rule.condition or action.key.name != "src" or action.counter != 0:
                raise NotCompilable(rule, "only an unconditional 'track-sc0 src' is compiled")
            if frontend.stick_table is None:
                raise NotCompilable(rule, "the frontend has no stick-table of its own")
            plan.table, tracking = frontend.stick_table, True
            continue
        if rule.condition is None:
            raise NotCompilable(rule, "an unconditional accept/reject is not compiled")
        matches = _single_matches(rule, rule.condition)
        if isinstance(action, Accept):
            # XDP decides src rules before the counter ones.
            if counter_reject:
                raise NotCompilable(rule, "an accept after a counter reject is not compiled")
            nets = tuple(net for match in matches for net in _networks(rule, match))
            plan.src_rules.append(SrcRule(number, nets, "accept", tracking))
            continue
        assert isinstance(action, Reject)
        if counter_reject and action.silent != silent:
            raise NotCompilable(rule, "'reject' (a RST) and 'silent-drop' (nothing) after a "
                                "counter reject are not compiled: use the same one")
        nets = tuple(net for match in matches if match.fetch.name == "src"
                     for net in _networks(rule, match))
        if nets:
            plan.src_rules.append(SrcRule(number, nets, "silent_drop" if action.silent
                                          else "reject", tracking))
        for match in matches:
            if match.fetch.name != "src":
                name, value = _threshold(rule, match)
                thresholds[name] = min(value, thresholds.get(name, value))
                counter_reject, silent = True, action.silent
    if thresholds and not tracking:
        raise NotCompilable(frontend.tcp_request[-1], "counters are read but the frontend "
                            "does not track them ('tcp-request connection track-sc0 src')")
    if tracking:
        plan.params = DpParams.for_stick_table(plan.table, count_syns=True,
                                               tracked_ports_only=True, track_frontend=number,
                                               reject_with_rst=counter_reject and not silent,
                                               **thresholds)


def _stick_rules(frontend: Frontend) -> list:
    """The frontend's http rules that track or read stick counters."""
    found = []
    for rule in [*frontend.http_request, *frontend.redirects, *frontend.use_backends]:
        action = getattr(rule, "action", None)
        condition = getattr(rule, "condition", None)
        reads = condition is not None and any(
            counter_ref(m.fetch.name) is not None for acl in condition.acls() for m in acl.matches)
        if isinstance(action, TrackSc) or reads:
            found.append(rule)
    return found


# What a src_track entry holds (bpf/structs.h), so what an l7 table may store.
SRC_TRACK_STORE = frozenset({"conn_cnt", "conn_cur", "conn_rate", "http_req_cnt",
                             "http_req_rate", "http_err_cnt", "http_err_rate", "gpc0",
                             "gpc0_rate"})


def http_stick_table(frontend: Frontend) -> StickTable | None:
    """The table the l7 tier counts the frontend's requests into and reads
    (`http-request track-sc0 src`, `sc0_*`/`src_*` fetches): the frontend's
    own, kept in the kernel's src_track. None when its http rules use no
    stick counter. Other shapes raise NotCompilable at their rule."""
    rules = _stick_rules(frontend)
    if not rules:
        return None
    table = frontend.stick_table
    if table is None:
        raise NotCompilable(rules[0], "stick counters in http rules need the frontend's "
                            "own stick-table")
    if table.type not in ("ip", "ipv6") or not {i.name for i in table.store} <= SRC_TRACK_STORE:
        raise NotCompilable(rules[0], "the stick-table must be 'type ip' or 'ipv6' and store "
                            f"only {', '.join(sorted(SRC_TRACK_STORE))} (the kernel keeps it)")
    for rule in rules:
        action = getattr(rule, "action", None)
        if isinstance(action, TrackSc) and (action.counter != 0 or action.key.name != "src"
                                            or action.table != frontend.name):
            raise NotCompilable(rule, "only 'track-sc0 src' in the frontend's own table is "
                                "served in http rules")
        for acl in rule.condition.acls() if rule.condition is not None else ():
            for match in acl.matches:
                ref = counter_ref(match.fetch.name)
                if ref is None:
                    continue
                if ref.source not in ("sc0", "src") or (
                        match.fetch.args and match.fetch.args[0] != frontend.name):
                    raise NotCompilable(rule, f"'{match.fetch.name}' reads another counter "
                                        "or table than sc0/src of the frontend's own")
    return table


def compile_config(config: Config) -> KernelPlan:
    """The kernel plan for every frontend of `config` (one table per instance:
    the one tcp-request rules count connections in, or http rules requests)."""
    plan = KernelPlan()
    number = 0
    for frontend in config.frontends.values():
        table_before = plan.table
        compile_frontend(frontend, plan, number)
        number += bool(frontend.tcp_request)
        if table_before is not None and plan.table is not table_before:
            raise NotCompilable(frontend.tcp_request[0], "only one frontend per instance "
                                "may track connections in the kernel")
        table = http_stick_table(frontend) if frontend.tier == "l7" else None
        if table is None or table is plan.table:
            continue
        if plan.table is not None:
            raise NotCompilable(_stick_rules(frontend)[0], "only one stick-table per "
                                "instance is kept in the kernel")
        plan.table = table
        plan.params = DpParams.for_stick_table(table, tracked_ports_only=True)
    plan.params = plan.params.replace(src_rules=bool(plan.src_rules))
    return plan


# `balance` -> the datapath's algorithm (pyxlb.datapath.services.ALGORITHMS).
L4_ALGORITHMS = {"roundrobin": "roundrobin", "source": "maglev", "leastconn": "leastconn",
                 "first": "first"}


class NotServable(Exception):
    """A kernel-tier proxy that cannot become a layer-4 service; names the place."""


def kernel_frontends(config: Config) -> list[Frontend]:
    return [fe for fe in config.frontends.values() if fe.tier == "kernel"]


def kernel_backends(config: Config) -> list[Backend]:
    """The backends the layer-4 services send to."""
    names = {fe.default_backend for fe in kernel_frontends(config)}
    return [be for be in config.backends.values() if be.name in names]


def l4_server_states(backend: Backend, up: Callable[[Server], bool]) -> list[str]:
    """Each server's state for new flows ("up" or "down"), as HAProxy picks
    servers: the active ones that are up; while none is, the first backup
    that is up, or every backup that is up with `option allbackups`."""
    active_up = any(up(s) for s in backend.servers if not s.backup)
    all_backups = "allbackups" in backend.options
    states, backup_taken = [], False
    for server in backend.servers:
        if not up(server):
            states.append("down")
        elif not server.backup:
            states.append("up")
        elif active_up or (backup_taken and not all_backups):
            states.append("down")
        else:
            states.append("up")
            backup_taken = True
    return states


def _address(text: str, where: object, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise NotServable(f"{where}: {what} {text!r} is not an IP address (layer-4 "
                          "services need addresses, not names)") from None


def flow_timeouts(frontend: Frontend, backend: Backend) -> Timeouts:
    """How long the kernel keeps a service's idle flows, from the proxy's
    timeouts as HAProxy applies them to a `mode tcp` session: `timeout
    tunnel` when set, else the first of client and server inactivity to
    expire; closing flows never outlive that; an unanswered SYN is given up
    after `timeout connect`. Unset ones keep the datapath's defaults."""
    base = Timeouts()
    limits = [ms for ms in (frontend.timeouts.client, backend.timeouts.server) if ms]
    idle_ms = backend.timeouts.tunnel or (min(limits) if limits else None)
    idle = idle_ms / 1000 if idle_ms else base.tcp
    connect_ms = backend.timeouts.connect
    return Timeouts(tcp=idle, tcp_closing=min(base.tcp_closing, idle),
                    tcp_closed=min(base.tcp_closed, idle), udp=idle,
                    connect=connect_ms / 1000 if connect_ms else base.connect)


def kernel_services(config: Config, addresses: Mapping[int, str],
                    up: Callable[[str, Server], bool],
                    weight: Callable[[str, Server], int] | None = None) -> list[Service]:
    """The layer-4 services of `config`'s kernel-tier frontends. `addresses`
    is the balancer's address on the served interface per IP version: the VIP
    of a `bind *:PORT` and every service's NAT source address. `up(backend,
    server)` says whether health checks have the server up; `weight(backend,
    server)` is its weight when the runtime API changed it (0 counts as not up)."""
    found: list[Service] = []
    for fe in kernel_frontends(config):
        if fe.default_backend is None:
            raise NotServable(f"{fe.where}: frontend {fe.name}: a layer-4 service needs "
                              "a default_backend")
        backend = config.backends[fe.default_backend]
        algorithm = L4_ALGORITHMS.get(backend.balance)
        if algorithm is None:
            raise NotServable(f"{backend.where}: backend {backend.name}: 'balance "
                              f"{backend.balance}' is not served in the kernel yet (want "
                              f"{' or '.join(L4_ALGORITHMS)})")
        if algorithm in BY_LOAD and len(backend.servers) > CANDIDATES_MAX:
            raise NotServable(f"{backend.where}: backend {backend.name}: 'balance "
                              f"{backend.balance}' compares at most {CANDIDATES_MAX} servers "
                              "in the kernel")
        states = l4_server_states(backend, lambda s, b=backend.name: up(b, s))
        for bind in fe.binds:
            if bind.host is None:
                vips = sorted(addresses.items())
            else:
                vip = _address(bind.host, bind.where, "bind address")
                vips = [(vip.version, str(vip))]
            for version, vip in vips:
                servers = []
                for server, state in zip(backend.servers, states, strict=True):
                    addr = _address(server.host, server.where, f"server {server.name}")
                    if addr.version != version:
                        continue
                    port = server.port or bind.port
                    if backend.forward == "dsr" and port != bind.port:
                        raise NotServable(f"{server.where}: server {server.name}: with "
                                          "'pyxlb-forward dsr' a server must listen on the "
                                          f"bind's port {bind.port} (direct server return "
                                          "leaves ports as they are)")
                    # A weight of 0 takes the server out through `up`; the table
                    # still needs a positive one.
                    w = server.weight if weight is None else weight(backend.name, server)
                    servers.append(L4Backend(str(addr), port, w or server.weight, state,
                                             server.maxconn))
                if servers or bind.host is not None:
                    snat = addresses.get(version)
                    if snat is None:
                        raise NotServable(f"{bind.where}: frontend {fe.name}: the interface "
                                          f"has no IPv{version} address to NAT from")
                    found.append(Service(vip, bind.port, snat, tuple(servers),
                                         proto=bind.proto, algorithm=algorithm,
                                         forward=backend.forward,
                                         timeouts=flow_timeouts(fe, backend)))
    return found


def layer4_observed(config: Config, addresses: Mapping[int, str]
                    ) -> dict[tuple[tuple[str, int, str], str, int], tuple[str, str]]:
    """The servers with `observe layer4` among the layer-4 services', keyed as
    pyxlb.datapath.services keys a service's backend ((VIP, port, protocol),
    address, port): their (backend, server) names. `addresses` as for
    kernel_services."""
    found = {}
    for fe in kernel_frontends(config):
        backend = config.backends.get(fe.default_backend or "")
        if backend is None:
            continue
        for bind in fe.binds:
            vips = (addresses.values() if bind.host is None
                    else [str(ipaddress.ip_address(bind.host))])
            for vip in vips:
                for server in backend.servers:
                    if server.observe != "layer4":
                        continue
                    addr = str(ipaddress.ip_address(server.host))
                    found[((vip, bind.port, bind.proto), addr, server.port or bind.port)] = (
                        backend.name, server.name)
    return found
