"""The kernel tier's counters merged into the stats slots.

Layer-4 services (`mode tcp` proxies the datapath serves) have no sockets in
pyxlb, so their sessions are the datapath's new flows: per service for the
frontend (stot, conn_tot) and the backend, per backend entry for the server
(stot, lbtot). `merge()` reads what `pyxlb.datapath.services.stats()` returns
and sets the slots to those totals. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from pyxlb.stats.counters import StatsRegistry


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return str(ipaddress.ip_address(host.strip("[]"))), int(port)


def merge(registry: StatsRegistry, frontends: Iterable[Any], backends: dict[str, Any],
          services: Iterable[dict[str, Any]]) -> None:
    """`frontends`: the kernel-tier frontends of the config; `services`: the
    datapath's counters, one dict per service with its `backends`."""
    by_bind: dict[tuple[int, str], Any] = {}
    for fe in frontends:
        for bind in fe.binds:
            by_bind[(bind.port, getattr(bind, "proto", "tcp"))] = fe
    fe_flows: dict[str, int] = {}
    be_flows: dict[str, int] = {}
    server_flows: dict[tuple[str, str], int] = {}
    for service in services:
        address, _, proto = service["service"].rpartition("/")
        _, port = _split(address)
        fe = by_bind.get((port, proto))
        if fe is None or fe.default_backend not in backends:
            continue
        backend = backends[fe.default_backend]
        new_flows = service.get("new_flows", 0)
        fe_flows[fe.name] = fe_flows.get(fe.name, 0) + new_flows
        be_flows[backend.name] = be_flows.get(backend.name, 0) + new_flows
        for entry in service["backends"]:
            addr, entry_port = _split(entry["server"])
            for server in backend.servers:
                if (str(ipaddress.ip_address(server.host)), server.port or port) == (
                        addr, entry_port):
                    key = (backend.name, server.name)
                    server_flows[key] = server_flows.get(key, 0) + entry.get("new_flows", 0)
    for proxy in registry.proxies:
        if proxy.frontend is not None and proxy.name in fe_flows:
            proxy.frontend.connections = fe_flows[proxy.name]
        if proxy.backend is not None and proxy.name in be_flows:
            proxy.backend.requests = be_flows[proxy.name]
            for srv in proxy.backend.servers:
                srv.requests = server_flows.get((proxy.name, srv.name), 0)
