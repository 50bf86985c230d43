"""Algorithms that follow the connections the caller reports: leastconn, first, and
every algorithm's respect of maxconn.

The literals are HAProxy 2.6.12's choices on loopback for the same timelines: one
event per tick; a request held k ticks ends just after tick i+k, requests held
equally long ending in the order they started.
"""

from __future__ import annotations

from balance_fakes import Srv

from pyxlb.l7.balance import First, LeastConn, make_balancer
from pyxlb.l7.balance.base import Balancer

Event = tuple[str, int] | tuple[str]


def replay(balancer: Balancer[Srv], events: list[Event]) -> str:
    """("req", k): a request held k ticks (0: done before the next tick); ("idle",)."""
    held: list[tuple[int, int, Srv]] = []  # (ending tick, start tick, server)
    out = []
    for tick, event in enumerate(events):
        for ending in sorted(h for h in held if h[0] <= tick):
            balancer.release(ending[2])
            held.remove(ending)
        if event[0] != "req":
            continue
        server = balancer.pick()
        out.append("-" if server is None else server.name)
        if server is None:
            continue
        balancer.acquire(server)
        if event[1]:
            held.append((tick + event[1] + 1, tick, server))
        else:
            balancer.release(server)
    return "".join(out)


def quick(n: int) -> list[Event]:
    return [("req", 0)] * n


def idle(n: int) -> list[Event]:
    return [("idle",)] * n


# -- leastconn


def test_leastconn_takes_turns_among_idle_servers() -> None:
    srv = [Srv("a"), Srv("b"), Srv("c")]
    events = quick(6) + [("req", 9)] + quick(4)
    assert replay(LeastConn(srv), events) == "abcabcabcbc"


def test_leastconn_ignores_weights_while_servers_are_idle() -> None:
    """An idle server's key is 0 whatever its weight, as in lb_fwlc.c."""
    srv = [Srv("a", 1), Srv("b", 10)]
    assert replay(LeastConn(srv), quick(6)) == "ababab"


def test_leastconn_weights_the_load() -> None:
    """b has 3x a's weight: it takes connections until (n+1)/w catches up with a's."""
    srv = [Srv("a", 1), Srv("b", 3)]
    events: list[Event] = [("req", 12)] * 6 + quick(3)
    assert replay(LeastConn(srv), events) == "abbbbbaba"


def test_leastconn_picks_the_least_loaded() -> None:
    srv = [Srv("a"), Srv("b"), Srv("c")]
    balancer = LeastConn(srv)
    for server, n in zip(srv, (3, 1, 2), strict=True):
        for _ in range(n):
            balancer.acquire(server)
    assert balancer.pick() is srv[1]
    balancer.release(srv[0])
    balancer.release(srv[0])
    assert balancer.pick() is srv[1]  # a tie at one: b got there first
    balancer.release(srv[0])
    assert balancer.pick() is srv[0]


def test_leastconn_server_back_up_joins_the_turns_last() -> None:
    srv = [Srv("a"), Srv("b"), Srv("c")]
    balancer = LeastConn(srv)
    balancer.set_usable(srv[0], False)
    assert replay(balancer, quick(3)) == "bcb"
    balancer.set_usable(srv[0], True)
    assert replay(balancer, quick(4)) == "cbac"


# -- first


def test_first_fills_servers_in_declaration_order() -> None:
    srv = [Srv("a", maxconn=2), Srv("b", maxconn=1), Srv("c")]
    events: list[Event] = [("req", 6)] * 4 + quick(1) + idle(2) + quick(1) + [("req", 3)] + quick(1)
    assert replay(First(srv), events) == "aabccaaa"


def test_first_ignores_weights() -> None:
    srv = [Srv("a", 1, maxconn=1), Srv("b", 100)]
    balancer = First(srv)
    assert balancer.pick() is srv[0]
    balancer.acquire(srv[0])
    assert [balancer.pick() for _ in range(3)] == [srv[1]] * 3


# -- maxconn with the other algorithms


def test_roundrobin_requeues_a_full_server_as_if_served() -> None:
    srv = [Srv("a", 3, maxconn=1), Srv("b", 1)]
    events: list[Event] = [("req", 4), *quick(3), *idle(2), *quick(8)]
    assert replay(make_balancer("roundrobin", srv), events) == "abbbaaaaaaab"


def test_roundrobin_with_several_full_servers() -> None:
    srv = [Srv("a", 1, maxconn=1), Srv("b", 2, maxconn=2), Srv("c", 1)]
    events: list[Event] = [("req", 9)] * 4 + quick(4) + idle(3) + quick(8)
    assert replay(make_balancer("roundrobin", srv), events) == "babcccccbbbbbabc"


def test_static_rr_skips_a_full_server_in_its_map() -> None:
    srv = [Srv("a", 3, maxconn=1), Srv("b", 1)]
    events: list[Event] = [("req", 4), *quick(3), *idle(2), *quick(8)]
    assert replay(make_balancer("static-rr", srv), events) == "abbbaaabaaab"
