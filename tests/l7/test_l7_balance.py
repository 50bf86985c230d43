"""The balancers' shared interface: building one from a config, backups, state and
weight changes, maxconn, redispatch avoidance.

Literal orders come from HAProxy 2.6.12 on loopback (servers declared a, b, c...).
"""

from __future__ import annotations

import pytest
from balance_fakes import Srv

from pyxlb.config.model import BalanceParams
from pyxlb.l7.balance import (
    ConsistentHash,
    First,
    LeastConn,
    MapHash,
    Need,
    RoundRobin,
    StaticRoundRobin,
    eligible,
    make_balancer,
)
from pyxlb.l7.balance.base import Balancer

ALL = [
    ("roundrobin", "map-based"), ("static-rr", "map-based"), ("leastconn", "map-based"),
    ("first", "map-based"), ("source", "map-based"), ("uri", "map-based"),
    ("hdr", "map-based"), ("source", "consistent"), ("uri", "consistent"),
    ("hdr", "consistent"),
]



def build(algorithm: str, servers: list[Srv], allbackups: bool = False,
          hash_type: str = "map-based") -> Balancer[Srv]:
    return make_balancer(algorithm, servers, allbackups, BalanceParams(header="host"),
                         hash_type)


def order(balancer: Balancer[Srv], n: int, key: bytes | None = None) -> str:
    out = []
    for _ in range(n):
        server = balancer.pick(key)
        out.append("-" if server is None else server.name)
    return "".join(out)


def by_name(servers: list[Srv]) -> dict[str, Srv]:
    return {s.name: s for s in servers}


# -- building


@pytest.mark.parametrize(("algorithm", "hash_type", "cls", "need"), [
    (None, "map-based", RoundRobin, Need.NONE),
    ("roundrobin", "consistent", RoundRobin, Need.NONE),
    ("static-rr", "map-based", StaticRoundRobin, Need.NONE),
    ("leastconn", "map-based", LeastConn, Need.NONE),
    ("first", "map-based", First, Need.NONE),
    ("source", "map-based", MapHash, Need.SOURCE),
    ("uri", "map-based", MapHash, Need.URI),
    ("hdr", "map-based", MapHash, Need.HEADER),
    ("source", "consistent", ConsistentHash, Need.SOURCE),
    ("uri", "consistent", ConsistentHash, Need.URI),
    ("hdr", "consistent", ConsistentHash, Need.HEADER),
])
def test_make_balancer_follows_balance_and_hash_type(
    algorithm: str | None, hash_type: str, cls: type, need: Need
) -> None:
    balancer = make_balancer(algorithm, [Srv("a")], False, BalanceParams(header="Host"),
                             hash_type)
    assert type(balancer) is cls
    assert balancer.need is need
    assert balancer.header == (b"host" if need is Need.HEADER else None)


def test_make_balancer_names_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="'random'.*roundrobin, static-rr"):
        make_balancer("random", [Srv("a")])
    with pytest.raises(ValueError, match="hdr needs a header name"):
        make_balancer("hdr", [Srv("a")])
    with pytest.raises(ValueError, match="hash-type 'none'"):
        make_balancer("uri", [Srv("a")], hash_type="none")


def test_eligible_is_the_declared_choice() -> None:
    a, x, y, z = Srv("a"), Srv("x", backup=True), Srv("y", backup=True), Srv("z", 0)
    assert eligible([x, a, z, y]) == [a]
    assert eligible([x, y]) == [x]
    assert eligible([x, y], allbackups=True) == [x, y]
    assert eligible([z]) == []


# -- every algorithm


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_no_server_and_no_usable_server_pick_none(algorithm: str, hash_type: str) -> None:
    assert build(algorithm, [], hash_type=hash_type).pick(b"/") is None
    servers = [Srv("a"), Srv("b", 0)]
    balancer = build(algorithm, servers, hash_type=hash_type)
    balancer.set_usable(servers[0], False)
    assert balancer.pick(b"/") is None


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_weight_zero_and_down_servers_get_nothing(algorithm: str, hash_type: str) -> None:
    servers = [Srv("a", 0), Srv("b"), Srv("c")]
    balancer = build(algorithm, servers, hash_type=hash_type)
    balancer.set_usable(servers[2], False)
    assert {order(balancer, 1, f"/{i}".encode()) for i in range(20)} == {"b"}


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_backups_only_when_no_active_server_is_usable(algorithm: str, hash_type: str) -> None:
    servers = [Srv("x", backup=True), Srv("a"), Srv("y", backup=True)]
    s = by_name(servers)
    balancer = build(algorithm, servers, hash_type=hash_type)
    assert order(balancer, 4, b"/k") == "aaaa"
    balancer.set_usable(s["a"], False)
    assert order(balancer, 4, b"/k") == "xxxx"
    balancer.set_usable(s["x"], False)
    assert order(balancer, 4, b"/k") == "yyyy"
    balancer.set_usable(s["x"], True)
    assert order(balancer, 2, b"/k") == "xx"  # the first usable backup again
    balancer.set_usable(s["a"], True)
    assert order(balancer, 2, b"/k") == "aa"


def test_allbackups_balances_every_backup() -> None:
    """HAProxy: bk xxxx|yy|xxxx, bkall xyxy|yy|yxyx (a down; then x down; then x up)."""
    for allbackups, expected in ((False, "xxxx|yy|xxxx"), (True, "xyxy|yy|yxyx")):
        servers = [Srv("a"), Srv("x", backup=True), Srv("y", backup=True)]
        s = by_name(servers)
        balancer = build("roundrobin", servers, allbackups)
        balancer.set_usable(s["a"], False)
        seen = order(balancer, 4)
        balancer.set_usable(s["x"], False)
        seen += "|" + order(balancer, 2)
        balancer.set_usable(s["x"], True)
        seen += "|" + order(balancer, 4)
        assert seen == expected


def test_static_map_without_allbackups_still_spreads_heavier_backups() -> None:
    """HAProxy's map is sized by the first backup's weight but filled from every usable
    backup, so static-rr over backups x:2, y:3 alternates (seen on 2.6.12); fwrr and
    the hashes stick to x."""
    servers = [Srv("a"), Srv("x", 2, backup=True), Srv("y", 3, backup=True)]
    for algorithm, allbackups, expected in (
        ("static-rr", False, "xyxyxyxyxy"), ("static-rr", True, "xyxyyxyxyy"),
        ("roundrobin", False, "xxxxxxxxxx"), ("uri", False, "xxxxxxxxxx"),
    ):
        balancer = build(algorithm, servers, allbackups)
        balancer.set_usable(servers[0], False)
        assert "".join(order(balancer, 1, f"/{i}".encode()) for i in range(10)) == expected


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_acquire_and_release_count_connections(algorithm: str, hash_type: str) -> None:
    servers = [Srv("a"), Srv("b")]
    balancer = build(algorithm, servers, hash_type=hash_type)
    balancer.acquire(servers[0])
    balancer.acquire(servers[0])
    balancer.release(servers[0])
    assert (balancer.served(servers[0]), balancer.served(servers[1])) == (1, 0)


def test_unknown_server_is_named() -> None:
    balancer = build("roundrobin", [Srv("a")])
    with pytest.raises(ValueError, match="'zz'"):
        balancer.set_usable(Srv("zz"), False)


# -- weights


@pytest.mark.parametrize(("algorithm", "hash_type"), [
    ("static-rr", "map-based"), ("source", "map-based"), ("uri", "map-based"),
])
def test_static_algorithms_take_only_zero_or_the_initial_weight(
    algorithm: str, hash_type: str
) -> None:
    servers = [Srv("a", 3), Srv("b")]
    balancer = build(algorithm, servers, hash_type=hash_type)
    with pytest.raises(ValueError, match=r"^Backend is using a static LB algorithm and only "
                       r"accepts weights '0%' and '100%'\.$"):
        balancer.set_weight(servers[0], 2)
    balancer.set_weight(servers[0], 0)
    assert order(balancer, 3, b"/") == "bbb"
    balancer.set_weight(servers[0], 3)
    assert balancer.weight(servers[0]) == 3


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_weights_are_0_to_256(algorithm: str, hash_type: str) -> None:
    servers = [Srv("a")]
    balancer = build(algorithm, servers, hash_type=hash_type)
    for bad in (-1, 257):
        with pytest.raises(ValueError, match="between 0 and 256 inclusive"):
            balancer.set_weight(servers[0], bad)


def test_weight_set_while_down_applies_when_back() -> None:
    servers = [Srv("a"), Srv("b")]
    balancer = build("roundrobin", servers)
    balancer.set_usable(servers[0], False)
    balancer.set_weight(servers[0], 3)
    assert order(balancer, 2) == "bb"
    balancer.set_usable(servers[0], True)
    assert sorted(order(balancer, 8)) == sorted("aaaaaabb")


# -- maxconn and redispatch


@pytest.mark.parametrize("algorithm", ["roundrobin", "static-rr", "leastconn", "first"])
def test_servers_at_maxconn_are_skipped_and_all_full_is_none(algorithm: str) -> None:
    servers = [Srv("a", maxconn=1), Srv("b", maxconn=1)]
    balancer = build(algorithm, servers)
    first = balancer.pick()
    assert first is not None
    balancer.acquire(first)
    second = balancer.pick()
    assert second is not None and second is not first
    balancer.acquire(second)
    assert balancer.pick() is None
    balancer.release(first)
    assert balancer.pick() is first


@pytest.mark.parametrize(("algorithm", "hash_type"), ALL)
def test_avoid_takes_another_server_unless_it_is_the_only_one(
    algorithm: str, hash_type: str
) -> None:
    servers = [Srv("a"), Srv("b")]
    balancer = build(algorithm, servers, hash_type=hash_type)
    for i in range(6):
        key = f"/{i}".encode()
        previous = balancer.pick(key)
        again = balancer.pick(key, avoid=previous)
        if algorithm in ("source", "uri", "hdr") and hash_type == "map-based":
            assert again is not None  # HAProxy's map lookup ignores it
        else:
            assert again is not None and again is not previous
    balancer.set_usable(servers[1], False)
    assert balancer.pick(b"/", avoid=servers[0]) is servers[0]
