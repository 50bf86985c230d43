"""source, uri and hdr(name): the hashes, the map and the consistent ring.

The hash functions are checked against independent transcriptions of HAProxy's C
(hash.c, intops.h, backend.c); the servers chosen against what HAProxy 2.6.12 chose
on loopback for the same keys (servers a, b, c of weight 1 unless stated).
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from balance_fakes import Srv
from hypothesis import given, settings
from hypothesis import strategies as st

from pyxlb.config.model import BalanceParams
from pyxlb.l7.balance import make_balancer, source_key
from pyxlb.l7.balance.base import Balancer
from pyxlb.l7.balance.hashing import (
    first_value,
    full_hash,
    header_hasher,
    sdbm,
    source_hash,
    uri_hasher,
)


def abc(*weights: int) -> list[Srv]:
    return [Srv("abc"[i], w) for i, w in enumerate(weights or (1, 1, 1))]


def names(balancer: Balancer[Srv], keys: list[bytes | None]) -> str:
    return "".join(balancer.pick(k).name for k in keys)  # type: ignore[union-attr]


U32 = 2**32


def sdbm_from_c(data: bytes) -> int:
    """hash.c: ``hash = c + (hash << 6) + (hash << 16) - hash`` on an unsigned int."""
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) % U32
    return h


def full_hash_from_c(a: int) -> int:
    """intops.h __full_hash, one unsigned-int statement at a time."""
    a = (a + 0x7ED55D16 + (a << 12)) % U32
    a = (a ^ 0xC761C23C ^ (a >> 19)) % U32
    a = (a + 0x165667B1 + (a << 5)) % U32
    a = ((a + 0xD3A2646C) % U32 ^ (a << 9)) % U32
    a = (a + 0xFD7046C5 + (a << 3)) % U32
    a = (a ^ 0xB55A4F09 ^ (a >> 16)) % U32
    return (a * 3221225473) % U32


def source_hash_from_c(address: str) -> int:
    """get_server_sh: XOR of ntohl() of each 32-bit word of the address."""
    packed = ipaddress.ip_address(address).packed
    h = 0
    for (word,) in struct.iter_unpack("!I", packed):
        h ^= word
    return h


# -- the hash functions


@given(st.binary(max_size=300))
def test_sdbm_is_haproxys(data: bytes) -> None:
    assert sdbm(data) == sdbm_from_c(data)


@given(st.integers(0, U32 - 1))
def test_full_hash_is_haproxys(a: int) -> None:
    assert full_hash(a) == full_hash_from_c(a)


def test_known_values() -> None:
    assert sdbm(b"/") == 47
    assert sdbm(b"/a") == 47 * 65599 + 97
    assert source_hash(source_key("127.0.0.1")) == 0x7F000001


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "255.255.255.255", "::1", "2001:db8::8:800:200c:417a",
    "::ffff:127.0.0.1", "fe80::1%lo",
])
def test_source_hash_xors_the_address_words(address: str) -> None:
    assert source_hash(source_key(address)) == source_hash_from_c(address.split("%")[0])


@pytest.mark.parametrize(("params", "uri", "hashed"), [
    (BalanceParams(), b"/img/logo.png?v=2", b"/img/logo.png"),
    (BalanceParams(), b"/?", b"/"),
    (BalanceParams(whole=True), b"/img/logo.png?v=2", b"/img/logo.png?v=2"),
    (BalanceParams(len=4), b"/img/logo.png", b"/img"),
    (BalanceParams(len=4), b"/i?x=1", b"/i"),
    (BalanceParams(depth=1), b"/img/logo.png", b"/img"),
    (BalanceParams(depth=2), b"/api/v1/users?id=7", b"/api/v1"),
    (BalanceParams(depth=2), b"/api?x=/a/b/c", b"/api"),
    (BalanceParams(depth=2, whole=True), b"/api?x=/a/b/c", b"/api?x=/a"),
    (BalanceParams(depth=3), b"/a/b", b"/a/b"),
    # The slashes of an absolute URI count toward the depth, as in HAProxy.
    (BalanceParams(depth=2), b"http://host/a/b", b"http://host"),
])
def test_uri_options_choose_what_is_hashed(params: BalanceParams, uri: bytes,
                                           hashed: bytes) -> None:
    assert uri_hasher(params)(uri) == sdbm_from_c(hashed)


@pytest.mark.parametrize(("raw", "value"), [
    (b"example.com", b"example.com"),
    (b"  example.com \t", b"example.com"),
    (b"x, y", b"x"),
    (b'"a,b", c', b'"a,b"'),
    (b'"a\\",b", c', b'"a\\",b"'),
    (b", y", b""),
])
def test_header_first_value(raw: bytes, value: bytes) -> None:
    assert first_value(raw) == value


@pytest.mark.parametrize(("raw", "hashed"), [
    (b"www.example.com", b"example"),
    (b"example.com", b"example"),
    (b"www.example.org:8080", b"example"),
    (b"localhost", b"localhost"),
    (b"a.b.c.d", b"c"),
    (b"a..b", b"a."),  # HAProxy's walk skips the byte before the end dot
    (b".lead.com", b"lead"),
    (b".com", b".com"),  # nor tests the first byte for the end dot
])
def test_use_domain_only_hashes_the_main_label(raw: bytes, hashed: bytes) -> None:
    hasher = header_hasher(BalanceParams(header="host", use_domain_only=True))
    assert hasher(raw) == sdbm_from_c(hashed)


def test_missing_or_empty_header_has_no_hash() -> None:
    hasher = header_hasher(BalanceParams(header="host"))
    assert hasher(None) is None
    assert hasher(b"  ") is None
    assert hasher(b", x") is None


# -- map-based, as HAProxy chose

PATHS = [b"/", b"/a", b"/b", b"/c", b"/index.html", b"/img/logo.png", b"/img/logo.png?v=2",
         b"/api/v1/users", b"/api/v1/users?id=7", b"/api/v2/orders"]
IPS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.1.2.3", "127.10.20.30",
       "127.255.255.254"]
HOSTS = [b"example.com", b"www.example.com", b"api.example.com", b"example.org",
         b"www.example.org:8080", b"localhost", b"shop.example.net"]
USERS = [f"user{i}".encode() for i in range(12)]


@pytest.mark.parametrize(("weights", "params", "expected"), [
    ((), BalanceParams(), "cabcaaaccc"),
    ((3, 2, 1), BalanceParams(), "caabaaabbb"),
    ((), BalanceParams(whole=True), "cabcaaccbc"),
    ((), BalanceParams(len=3), "cabccbbccc"),
    ((), BalanceParams(depth=2), "cabcaaabbc"),
])
def test_uri_map(weights: tuple[int, ...], params: BalanceParams, expected: str) -> None:
    balancer = make_balancer("uri", abc(*weights), params=params)
    assert names(balancer, PATHS) == expected  # type: ignore[arg-type]


def test_uri_map_hashes_an_absolute_uri_as_received() -> None:
    servers = [Srv(name) for name in "abcde"]
    uris = [b"http://host/a/b/c", b"http://example.com/x/y", b"http://h1/", b"http://h2/p?q=1",
            b"http://h3/a?b"]
    depth = make_balancer("uri", servers, params=BalanceParams(depth=3))
    assert names(depth, uris) == "cbccc"  # type: ignore[arg-type]
    whole = make_balancer("uri", servers, params=BalanceParams(whole=True))
    assert names(whole, uris) == "eecdd"  # type: ignore[arg-type]


def test_source_map() -> None:
    balancer = make_balancer("source", abc())
    assert names(balancer, [source_key(ip) for ip in IPS]) == "cabcbba"


def test_hdr_map() -> None:
    plain = make_balancer("hdr", abc(), params=BalanceParams(header="host"))
    assert names(plain, HOSTS) == "aacabaa"  # type: ignore[arg-type]
    domain = make_balancer("hdr", abc(), params=BalanceParams(header="host",
                                                              use_domain_only=True))
    assert names(domain, HOSTS) == "bbbbbab"  # type: ignore[arg-type]


def test_hdr_map_without_the_header_round_robins_on_the_map() -> None:
    balancer = make_balancer("hdr", abc(3, 2, 1), params=BalanceParams(header="x-user"))
    assert names(balancer, [None] * 12) == "aababc" * 2


def test_single_server_is_not_hashed() -> None:
    servers = abc()
    balancer = make_balancer("hdr", servers, params=BalanceParams(header="host"))
    balancer.set_usable(servers[0], False)
    balancer.set_usable(servers[1], False)
    assert names(balancer, [None, b"x"]) == "cc"


# -- consistent, as HAProxy chose


def consistent(algorithm: str, servers: list[Srv], header: str = "x-user") -> Balancer[Srv]:
    return make_balancer(algorithm, servers, params=BalanceParams(header=header),
                         hash_type="consistent")


def test_consistent_choices_and_what_moves_when_b_goes_down() -> None:
    for algorithm, keys, before, after in (
        ("uri", PATHS, "bbbacbbccb", "aacacccccc"),
        ("source", [source_key(ip) for ip in IPS], "bacacbc", "cacaccc"),
        ("hdr", USERS, "abbcaacabacc", "acacaacacacc"),
    ):
        servers = abc()
        balancer = consistent(algorithm, servers)
        assert names(balancer, keys) == before  # type: ignore[arg-type]
        balancer.set_usable(servers[1], False)
        assert names(balancer, keys) == after  # type: ignore[arg-type]


def test_consistent_without_the_header_walks_the_ring() -> None:
    assert names(consistent("hdr", abc()), [None] * 8) == "ccbacaab"


def test_consistent_walk_cursor_leaves_points_that_are_reallocated() -> None:
    """Raising a weight past what was allocated re-inserts all of the server's
    points; a walk cursor on one of them moves on first (seen on HAProxy)."""
    servers = [Srv("a"), Srv("b")]
    balancer = consistent("hdr", servers)
    assert names(balancer, [None]) == "b"
    balancer.set_weight(servers[1], 10)
    assert names(balancer, [None] * 3) == "bbb"


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(1, 12), min_size=2, max_size=6),
    gone=st.integers(0, 5),
    keys=st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=40),
)
def test_consistent_removing_a_server_moves_only_its_keys(
    weights: list[int], gone: int, keys: list[bytes]
) -> None:
    servers = [Srv(f"s{i}", w) for i, w in enumerate(weights)]
    victim = servers[gone % len(servers)]
    balancer = consistent("uri", servers)
    before = [balancer.pick(k) for k in keys]
    balancer.set_usable(victim, False)
    during = [balancer.pick(k) for k in keys]
    for was, now in zip(before, during, strict=True):
        assert now is not victim
        if was is not victim:
            assert now is was
    balancer.set_usable(victim, True)
    assert [balancer.pick(k) for k in keys] == before


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.integers(2, 12), min_size=2, max_size=5),
    keys=st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=40),
)
def test_consistent_lowering_a_weight_moves_only_that_servers_keys(
    weights: list[int], keys: list[bytes]
) -> None:
    servers = [Srv(f"s{i}", w) for i, w in enumerate(weights)]
    balancer = consistent("uri", servers)
    before = [balancer.pick(k) for k in keys]
    balancer.set_weight(servers[0], servers[0].weight - 1)
    for was, now in zip(before, [balancer.pick(k) for k in keys], strict=True):
        if was is not servers[0]:
            assert now is was
