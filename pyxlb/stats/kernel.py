"""The kernel tier's counters merged into the stats slots.

Layer-4 services (`mode tcp` proxies the datapath serves) have no sockets in
pyxlb, so their sessions are the datapath's new flows: per service for the
frontend (stot, conn_tot) and the backend, per backend entry for the server
(stot, lbtot); bin/bout are the payload bytes it forwarded each way.
`merge()` reads what `pyxlb.datapath.services.stats()` returns and sets the
slots to those totals. Pure.
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
    fe_bytes: dict[str, tuple[int, int]] = {}
    be_bytes: dict[str, tuple[int, int]] = {}
    server_bytes: dict[tuple[str, str], tuple[int, int]] = {}
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
        _add_bytes(fe_bytes, fe.name, service)
        _add_bytes(be_bytes, backend.name, service)
        for entry in service["backends"]:
            addr, entry_port = _split(entry["server"])
            for server in backend.servers:
                if (str(ipaddress.ip_address(server.host)), server.port or port) == (
                        addr, entry_port):
                    key = (backend.name, server.name)
                    server_flows[key] = server_flows.get(key, 0) + entry.get("new_flows", 0)
                    _add_bytes(server_bytes, key, entry)
    for proxy in registry.proxies:
        if proxy.frontend is not None and proxy.name in fe_flows:
            proxy.frontend.connections = fe_flows[proxy.name]
            proxy.frontend.bytes_in, proxy.frontend.bytes_out = fe_bytes[proxy.name]
        if proxy.backend is not None and proxy.name in be_flows:
            proxy.backend.requests = be_flows[proxy.name]
            proxy.backend.bytes_in, proxy.backend.bytes_out = be_bytes[proxy.name]
            for srv in proxy.backend.servers:
                srv.requests = server_flows.get((proxy.name, srv.name), 0)
                srv.bytes_in, srv.bytes_out = server_bytes.get((proxy.name, srv.name), (0, 0))


def _add_bytes(into: dict[Any, tuple[int, int]], key: Any, counts: dict[str, Any]) -> None:
    """Adds a service's or backend entry's payload bytes (in, out) under `key`."""
    was_in, was_out = into.get(key, (0, 0))
    into[key] = (was_in + counts.get("payload", 0), was_out + counts.get("reply_payload", 0))
