"""Which tier serves each proxy: the XDP layer-4 fast path ("kernel") or asyncio ("l7").

The kernel serves `mode tcp` proxies whose every rule uses only what it knows: the
client's address and address lists, per-source connection rates and the gpc0 flag
(DESIGN.md). So a frontend is "kernel" when it is `mode tcp` without TLS, its
`tcp-request connection` rules accept, reject or track `src` in kernel-countable
tables, every condition it evaluates uses kernel fetches only, and every backend it
can send to is "kernel" too; a backend is "kernel" when it is `mode tcp`, balances
with an algorithm the kernel has, and every frontend that sends to it is "kernel".
Everything else is "l7".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from pyxlb.config.conditions import Condition
from pyxlb.config.fetches import FETCHES, KERNEL_STORE_TYPES, counter_ref
from pyxlb.config.model import Backend, Frontend, StickTable
from pyxlb.config.rules import Accept, Reject, TrackSc

KERNEL_ALGORITHMS = frozenset({"roundrobin", "leastconn", "first", "source"})


def kernel_table(table: StickTable | None) -> bool:
    """Whether the kernel can keep this table: per-address keys, kernel-counted data."""
    return table is None or (table.type in ("ip", "ipv6")
                             and all(item.name in KERNEL_STORE_TYPES for item in table.store))


def _kernel_condition(cond: Condition | None, tables: Mapping[str, StickTable]) -> bool:
    if cond is None:
        return True
    for acl in cond.acls():
        for match in acl.matches:
            fetch = match.fetch
            if not FETCHES[fetch.name].kernel:
                return False
            ref = counter_ref(fetch.name)
            if ref is not None and fetch.args and not kernel_table(tables.get(fetch.args[0])):
                return False
    return True


def _kernel_frontend(front: Frontend, tables: Mapping[str, StickTable]) -> bool:
    if front.mode != "tcp" or any(bind.ssl for bind in front.binds):
        return False
    if not kernel_table(front.stick_table):
        return False
    for rule in front.tcp_request:
        action = rule.action
        if isinstance(action, TrackSc):
            if action.key.name != "src" or not kernel_table(tables.get(action.table)):
                return False
        elif not isinstance(action, Accept | Reject):
            return False
        if not _kernel_condition(rule.condition, tables):
            return False
    return all(_kernel_condition(rule.condition, tables) for rule in front.use_backends)


def _kernel_backend(back: Backend) -> bool:
    return back.mode == "tcp" and back.balance in KERNEL_ALGORITHMS


def assign_tiers(frontends: Mapping[str, Frontend], backends: Mapping[str, Backend]
                 ) -> tuple[dict[str, Frontend], dict[str, Backend]]:
    """The frontends and backends with their `tier` set."""
    tables = {p.name: p.stick_table for p in _proxies(frontends, backends)
              if p.stick_table is not None}
    kernel_fe = {name: _kernel_frontend(f, tables) for name, f in frontends.items()}
    kernel_be = {name: _kernel_backend(b) for name, b in backends.items()}
    senders: dict[str, list[str]] = {name: [] for name in backends}
    for name, front in frontends.items():
        for target in front.backends_used():
            senders.setdefault(target, []).append(name)
    changed = True
    while changed:
        changed = False
        for name, front in frontends.items():
            if kernel_fe[name] and not all(kernel_be.get(t, False)
                                           for t in front.backends_used()):
                kernel_fe[name] = False
                changed = True
        for name in backends:
            if kernel_be[name] and not all(kernel_fe[s] for s in senders[name]):
                kernel_be[name] = False
                changed = True
    return ({name: dataclasses.replace(f, tier="kernel" if kernel_fe[name] else "l7")
             for name, f in frontends.items()},
            {name: dataclasses.replace(b, tier="kernel" if kernel_be[name] else "l7")
             for name, b in backends.items()})


def _proxies(frontends: Mapping[str, Frontend],
             backends: Mapping[str, Backend]) -> Iterable[Frontend | Backend]:
    yield from frontends.values()
    yield from backends.values()
