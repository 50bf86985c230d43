"""roundrobin (fwrr) and static-rr orders, checked against HAProxy 2.6.12 on loopback.

Each literal is what HAProxy served for the same servers (declared a, b, c) and the
same events (``set weight``, ``disable server``, ``enable server``); ``|`` marks where
an event happened.
"""

from __future__ import annotations

import pytest
from balance_fakes import Srv

from pyxlb.l7.balance import RoundRobin, StaticRoundRobin, make_balancer
from pyxlb.l7.balance.base import Balancer


def servers(*weights: int) -> list[Srv]:
    return [Srv("abcdefgh"[i], w) for i, w in enumerate(weights)]


def order(balancer: Balancer[Srv], n: int) -> str:
    return "".join(balancer.pick().name for _ in range(n))  # type: ignore[union-attr]


@pytest.mark.parametrize(("weights", "cycle"), [
    ((3, 1), "aaab"),
    ((1, 3), "bbba"),
    ((5, 2), "aaabaab"),
    ((3, 2, 1), "abacab"),
    ((4, 2, 1), "aabacab"),
    ((1, 2, 3), "cbcacb"),
    ((1, 1), "ab"),
    ((1, 1, 1), "abc"),
    ((10, 10), "ab"),
])
def test_roundrobin_cycles(weights: tuple[int, ...], cycle: str) -> None:
    assert order(RoundRobin(servers(*weights)), 5 * len(cycle)) == cycle * 5


def test_roundrobin_long_runs_as_haproxy() -> None:
    """24 requests each, as HAProxy served them: the cycle does not restart at a window."""
    seen = {
        (3, 1): "aaabaaabaaabaaabaaabaaab",
        (5, 2): "aaabaabaaabaabaaabaabaaa",
        (4, 2, 1): "aabacabaabacabaabacabaab",
        (1, 2, 3): "cbcacbcbcacbcbcacbcbcacb",
    }
    for weights, expected in seen.items():
        assert order(RoundRobin(servers(*weights)), 24) == expected


@pytest.mark.parametrize(("weights", "cycle"), [
    ((3, 1), "aaab"),
    ((1, 3), "abbb"),
    ((5, 2), "aaabaab"),
    ((3, 2, 1), "aababc"),
    ((4, 2, 1), "aababac"),
    ((1, 2, 3), "acbcbc"),
    ((6, 4, 2), "aababc"),  # weights divided by their gcd
])
def test_static_rr_cycles(weights: tuple[int, ...], cycle: str) -> None:
    assert order(StaticRoundRobin(servers(*weights)), 4 * len(cycle)) == cycle * 4


def run(balancer: Balancer[Srv], srv: list[Srv], script: list[object]) -> str:
    """Ints are request counts; tuples are events: ("down"|"up", name) or
    ("weight", name, w)."""
    names = {s.name: s for s in srv}
    parts: list[str] = []
    for step in script:
        if isinstance(step, int):
            parts.append(order(balancer, step))
            continue
        assert isinstance(step, tuple)
        if step[0] == "weight":
            balancer.set_weight(names[step[1]], step[2])
        else:
            balancer.set_usable(names[step[1]], step[0] == "up")
    return "|".join(parts)


def test_roundrobin_weight_changes_mid_window() -> None:
    srv = servers(3, 2, 1)
    script = [4, ("weight", "a", 1), 16, ("weight", "c", 4), 16]
    assert run(RoundRobin(srv), srv, script) == (
        "abac|bbbacbbacbbacbba|cbccabccbccabccb"
    )


def test_roundrobin_server_down_and_back() -> None:
    srv = servers(3, 2, 1)
    script = [3, ("down", "b"), 8, ("up", "b"), 18]
    assert run(RoundRobin(srv), srv, script) == "aba|caaacaaa|cabaabcabaabcabaab"


def test_roundrobin_weight_zero_then_back() -> None:
    srv = servers(3, 1)
    script = [2, ("weight", "a", 0), 3, ("weight", "a", 3), 12]
    assert run(RoundRobin(srv), srv, script) == "aa|bbb|baaabaaabaaa"


def test_static_rr_rebuilds_its_map_on_state_changes() -> None:
    srv = servers(3, 2, 1)
    script = [4, ("down", "a"), 6, ("up", "a"), 12]
    assert run(StaticRoundRobin(srv), srv, script) == "aaba|bbcbbc|abcaababcaab"


def test_roundrobin_many_servers_stay_proportional() -> None:
    srv = [Srv(f"s{i}", w) for i, w in enumerate([1, 2, 3, 5, 8, 13, 21, 34, 55, 89] * 10)]
    balancer = make_balancer("roundrobin", srv)
    total = sum(s.weight for s in srv)
    counts: dict[str, int] = {}
    for _ in range(total * 3):
        name = balancer.pick().name  # type: ignore[union-attr]
        counts[name] = counts.get(name, 0) + 1
    assert counts == {s.name: 3 * s.weight for s in srv}
