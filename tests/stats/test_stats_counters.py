"""Building the registry from the config model."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pyxlb.config import parse_text
from pyxlb.stats.counters import StatsRegistry


def test_proxies_follow_declaration_order_and_listen_is_one_proxy() -> None:
    config = parse_text("""
backend b1
    server s 10.0.0.1:80
frontend f1
    bind *:80
listen l
    bind *:81
    server t 10.0.0.2:80
frontend f2
    bind *:82
""")
    reg = StatsRegistry.build(config.frontends, config.backends)
    assert [(p.name, p.iid) for p in reg.proxies] == [("b1", 1), ("f1", 2), ("l", 3), ("f2", 4)]
    listen = reg.proxy("l")
    assert listen.frontend is not None and listen.backend is not None
    assert [s.name for s in listen.backend.servers] == ["t"]


@dataclass
class Fe:
    name: str


@dataclass
class Be:
    name: str
    servers: list[object] = field(default_factory=list)


def test_explicit_order_and_duck_typed_sections() -> None:
    reg = StatsRegistry.build([Fe("f")], {"b": Be("b")}, order=["b", "f"])
    assert [p.name for p in reg.proxies] == ["b", "f"]
    assert reg.proxy("f").mode == "http"


def test_lookups_name_what_is_missing() -> None:
    reg = StatsRegistry.build([Fe("f")], [Be("b")])
    with pytest.raises(KeyError, match="'nope'"):
        reg.proxy("nope")
    with pytest.raises(KeyError, match="no frontend"):
        reg.frontend("b")
    with pytest.raises(KeyError, match="no server 'x'"):
        reg.backend("b").server("x")
