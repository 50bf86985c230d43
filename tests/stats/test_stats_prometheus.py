"""The Prometheus text of the counters, in HAProxy 2.6's exporter format."""

from __future__ import annotations

from types import SimpleNamespace

from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.prometheus import render_metrics, server_state


def registry() -> StatsRegistry:
    fe = SimpleNamespace(name="http_front", mode="http")
    be = SimpleNamespace(name="http_back", mode="http", servers=[
        SimpleNamespace(name="web1", weight=1, backup=False),
        SimpleNamespace(name="web2", weight=50, backup=False),
        SimpleNamespace(name="backup1", weight=1, backup=True),
    ])
    return StatsRegistry.build([fe], [be], order=["http_front", "http_back"])


def test_names_help_and_labels_as_haproxy_writes_them():
    reg = registry()
    reg.frontend("http_front").requests = 2
    reg.backend("http_back").server("web2").requests = 2
    reg.backend("http_back").server("web1").status = "MAINT"
    text = render_metrics(reg)
    # Lines as HAProxy 2.6.12 wrote them for the same counters.
    for line in (
        "# HELP haproxy_frontend_http_requests_total Total number of HTTP requests processed "
        "by this object since the worker process started",
        "# TYPE haproxy_frontend_http_requests_total counter",
        'haproxy_frontend_http_requests_total{proxy="http_front"} 2',
        'haproxy_frontend_status{proxy="http_front",state="UP"} 1',
        'haproxy_backend_status{proxy="http_back",state="UP"} 1',
        'haproxy_backend_active_servers{proxy="http_back"} 1',
        'haproxy_server_loadbalanced_total{proxy="http_back",server="web2"} 2',
        'haproxy_server_status{proxy="http_back",server="web1",state="MAINT"} 1',
        'haproxy_server_status{proxy="http_back",server="web1",state="UP"} 0',
        'haproxy_server_weight{proxy="http_back",server="web2"} 50',
    ):
        assert line + "\n" in text, line
    # HAProxy's order: frontends, backends, servers; each metric's HELP once.
    assert text.index("haproxy_frontend_") < text.index("haproxy_backend_") \
        < text.index("haproxy_server_")
    assert text.count("# HELP haproxy_server_status ") == 1
    assert text.endswith("\n")


def test_status_words_map_to_haproxys_states():
    assert server_state("UP 1/3") == "UP"
    assert server_state("no check") == "UP"
    assert server_state("DOWN 1/2") == "DOWN"
    assert server_state("DRAIN") == "DRAIN"
