"""What a valid configuration asks for that this build of pyxlb does not serve yet.

`pyxlb check` accepts the whole language; `pyxlb up` must not pretend. Anything
whose absence would let traffic through that the config forbids, or send it
somewhere else (rules, routing, TLS, protected stats, layer-4 services), stops
the start; anything that only changes how well pyxlb serves (logs, the stats
socket) is a warning. Pure: reads the model, returns messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyxlb.config import Config


@dataclass(frozen=True)
class Unserved:
    where: object
    what: str
    fatal: bool

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def unserved(config: Config) -> list[Unserved]:
    found: list[Unserved] = []

    def add(where: object, what: str, fatal: bool) -> None:
        found.append(Unserved(where, what, fatal))

    for fe in config.frontends.values():
        if fe.tier == "kernel" or fe.mode != "http":
            add(fe.where, f"frontend {fe.name}: mode {fe.mode} services are not served yet",
                True)
            continue
        # tcp-request connection rules go to the kernel (kernel_rules.py),
        # which refuses the shapes it cannot compile.
        for rules, kind in ((fe.http_request, "http-request"), (fe.redirects, "redirect"),
                            (fe.use_backends, "use_backend")):
            for rule in rules:
                add(rule.where, f"frontend {fe.name}: '{kind}' rules are not enforced yet",
                    True)
        for bind in fe.binds:
            if bind.ssl:
                add(bind.where, f"frontend {fe.name}: TLS binds are not served yet", True)
        if fe.stats and fe.stats.auth:
            add(fe.stats.where, f"frontend {fe.name}: 'stats auth' is not enforced yet", True)
    for be in config.backends.values():
        for rule in [*be.http_request, *be.redirects]:
            add(rule.where, f"backend {be.name}: rules are not enforced yet", True)
        if be.cookie:
            add(be.where, f"backend {be.name}: cookie persistence is not served yet", False)
    if config.global_.logs:
        add(config.global_.logs[0].where, "global: logging is not sent yet", False)
    if config.global_.stats_socket:
        add(config.global_.stats_socket.where, "global: the stats socket is not served yet",
            False)
    return found
