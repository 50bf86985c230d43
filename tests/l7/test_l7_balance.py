"""Round-robin order and which servers take traffic."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import pytest

from pyxlb.l7.balance import RoundRobin, eligible, make_balancer


@dataclass(frozen=True)
class Srv:
    name: str
    weight: int = 1
    backup: bool = False


def order(balancer: RoundRobin[Srv], n: int) -> str:
    return "".join(s.name for s in islice(iter(balancer.pick, None), n))


def test_equal_weights_alternate_in_declaration_order() -> None:
    assert order(RoundRobin([Srv("a"), Srv("b")]), 6) == "ababab"
    assert order(RoundRobin([Srv("a"), Srv("b"), Srv("c")]), 7) == "abcabca"


def test_equal_weights_other_than_one_alternate_too() -> None:
    assert order(RoundRobin([Srv("a", 10), Srv("b", 10)]), 4) == "abab"


def test_single_server() -> None:
    assert order(RoundRobin([Srv("a")]), 3) == "aaa"


def test_backups_wait_while_an_active_server_exists() -> None:
    assert order(RoundRobin([Srv("a"), Srv("x", backup=True), Srv("b")]), 4) == "abab"


def test_first_backup_only_without_allbackups() -> None:
    servers = [Srv("x", backup=True), Srv("y", backup=True)]
    assert order(RoundRobin(servers), 3) == "xxx"
    assert order(RoundRobin(servers, allbackups=True), 4) == "xyxy"


def test_weight_zero_takes_no_traffic() -> None:
    assert order(RoundRobin([Srv("a", 0), Srv("b")]), 3) == "bbb"
    assert eligible([Srv("a", 0)]) == []


def test_no_server_picks_none() -> None:
    assert RoundRobin([]).pick() is None


def test_make_balancer_defaults_to_roundrobin_and_names_unknown_ones() -> None:
    assert isinstance(make_balancer(None, [Srv("a")]), RoundRobin)
    assert isinstance(make_balancer("roundrobin", [Srv("a")]), RoundRobin)
    with pytest.raises(ValueError, match="'leastconn'"):
        make_balancer("leastconn", [Srv("a")])
