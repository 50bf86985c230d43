"""What a valid configuration asks for that this build of pyxlb does not serve yet.

`pyxlb check` accepts the whole language; `pyxlb up` must not pretend. Anything
whose absence would let traffic through that the config forbids, or send it
somewhere else (rules, routing, `mode tcp` that the kernel
tier cannot take), stops
the start; anything that only changes how well pyxlb serves (logs) is a warning.
Pure: reads the model, returns messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyxlb.config import Config
from pyxlb.config.fetches import counter_ref
from pyxlb.config.rules import TrackSc
from pyxlb.kernel_rules import L4_ALGORITHMS


@dataclass(frozen=True)
class Unserved:
    where: object
    what: str
    fatal: bool

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _uses_stick_table(rule: object) -> bool:
    """A track-sc action, or a condition reading or changing a stick counter."""
    if isinstance(getattr(rule, "action", None), TrackSc):
        return True
    condition = getattr(rule, "condition", None)
    if condition is None:
        return False
    return any(counter_ref(match.fetch.name) is not None
               for acl in condition.acls() for match in acl.matches)


def unserved(config: Config) -> list[Unserved]:
    found: list[Unserved] = []

    def add(where: object, what: str, fatal: bool) -> None:
        found.append(Unserved(where, what, fatal))

    for fe in config.frontends.values():
        if fe.tier == "kernel":
            # Layer-4 services: pyxlb.kernel_rules.kernel_services.
            if fe.logs:
                add(fe.where, f"frontend {fe.name}: its connections are not logged: the "
                    "kernel tier forwards them without a socket, and its flow table "
                    "keeps no accept date, timers nor byte counts for a tcplog line", False)
            for rule in fe.use_backends:
                add(rule.where, f"frontend {fe.name}: 'use_backend' rules are not enforced "
                    "in the kernel yet", True)
            if fe.default_backend is None:
                add(fe.where, f"frontend {fe.name}: a layer-4 service needs a "
                    "default_backend", True)
            continue
        for bind in fe.binds:
            if bind.proto == "udp":
                add(bind.where, f"frontend {fe.name}: udp@ binds are served by the kernel "
                    "tier only, which this frontend does not fit (mode tcp, kernel rules, "
                    "a backend the kernel can balance)", True)
        if fe.mode != "http":
            why = ("mode tcp is served by the kernel tier only, which this frontend "
                   "does not fit (TLS, layer-7 rules, or a backend the kernel cannot "
                   "balance)" if fe.mode == "tcp" else f"mode {fe.mode} is not served yet")
            add(fe.where, f"frontend {fe.name}: {why}", True)
            continue
        # tcp-request connection rules go to the kernel and stick counters in
        # http rules to the kernel's table (kernel_rules.py), which refuses the
        # shapes it cannot serve; the rest of the http rules run in l7/rules.
    for be in config.backends.values():
        if be.tier == "kernel" and be.balance not in L4_ALGORITHMS:
            add(be.where, f"backend {be.name}: 'balance {be.balance}' is not served in the "
                f"kernel yet (want {' or '.join(L4_ALGORITHMS)})", True)
        for rule in [*be.http_request, *be.redirects]:
            if _uses_stick_table(rule):
                add(rule.where, f"backend {be.name}: stick-table counters in http rules are "
                    "not served yet", True)
        if be.forward == "dsr" and be.tier != "kernel":
            add(be.where, f"backend {be.name}: 'pyxlb-forward dsr' is for layer-4 services "
                "served by the kernel tier (mode tcp, a kernel balance)", True)
    return found
