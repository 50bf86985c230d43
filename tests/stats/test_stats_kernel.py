"""The kernel tier's flow counters merged into the stats slots."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.kernel_rules import kernel_frontends
from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.kernel import merge

CONFIG = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen db
    bind *:3306
    balance roundrobin
    server db1 10.0.0.1:3306
    server db2 10.0.0.2
"""


def service(vip: str, port: int, backends: list[tuple[str, int]]) -> dict:
    """What pyxlb.datapath.services.stats() yields for one service."""
    return {"service": f"{vip}:{port}/tcp", "id": 0,
            "new_flows": sum(n for _, n in backends),
            "backends": [{"server": server, "number": i, "state": "up", "weight": 1,
                          "new_flows": n} for i, (server, n) in enumerate(backends)]}


def test_flows_become_sessions_of_the_frontend_backend_and_servers():
    config = parse_text(CONFIG, "t.cfg", env={})
    registry = StatsRegistry.build(config.frontends, config.backends)
    # One service per address of `bind *`: IPv4 and IPv6 add up.
    merge(registry, kernel_frontends(config), config.backends, [
        service("10.0.0.9", 3306, [("10.0.0.1:3306", 3), ("10.0.0.2:3306", 1)]),
        service("fd00::9", 3306, []),
        service("10.0.0.9", 9999, [("10.0.0.7:1", 5)]),  # not this config's: ignored
    ])
    proxy = registry.proxy("db")
    assert proxy.frontend is not None and proxy.backend is not None
    assert proxy.frontend.connections == 4
    assert proxy.backend.requests == 4
    assert [s.requests for s in proxy.backend.servers] == [3, 1]
    # Totals, not increments: reading again does not double them.
    merge(registry, kernel_frontends(config), config.backends, [
        service("10.0.0.9", 3306, [("10.0.0.1:3306", 3), ("10.0.0.2:3306", 2)])])
    assert [s.requests for s in proxy.backend.servers] == [3, 2]


def test_fresh_reads_before_showing():
    registry = StatsRegistry()
    calls = []
    registry.refresh = lambda: calls.append(1)
    assert registry.fresh() is registry and calls == [1]


def test_payload_bytes_become_bin_and_bout():
    config = parse_text(CONFIG, "t.cfg", env={})
    registry = StatsRegistry.build(config.frontends, config.backends)
    one = service("10.0.0.9", 3306, [("10.0.0.1:3306", 1), ("10.0.0.2:3306", 1)])
    one.update(payload=300, reply_payload=5000)
    one["backends"][0].update(payload=100, reply_payload=4000)
    one["backends"][1].update(payload=200, reply_payload=1000)
    merge(registry, kernel_frontends(config), config.backends, [one])
    proxy = registry.proxy("db")
    assert proxy.frontend is not None and proxy.backend is not None
    assert (proxy.frontend.bytes_in, proxy.frontend.bytes_out) == (300, 5000)
    assert (proxy.backend.bytes_in, proxy.backend.bytes_out) == (300, 5000)
    assert [(s.bytes_in, s.bytes_out) for s in proxy.backend.servers] == [(100, 4000),
                                                                           (200, 1000)]
