"""`http-reuse`: which idle server connection a request may take, over real
loopback sockets (the test server says which proxy connection carried each
request). HAProxy's default `safe` sends a client's first request over a
connection of its own, so that a server closing an idle connection never
costs a first request (the client could not retry it)."""

from __future__ import annotations

import pytest
from l7_harness import ProxyStarter, Servers, connect, get, one_server_config


def carried_by(conn) -> str:
    response = get(conn)
    assert response.status == 200
    return response.getheader("X-Peer-Port")


def two_clients(proxy, second_requests: int = 1) -> tuple[list[str], list[str]]:
    """A client that sends two requests and leaves; then another."""
    first = connect(proxy, frontend="fe")
    ports_first = [carried_by(first), carried_by(first)]
    first.close()
    second = connect(proxy, frontend="fe")
    ports_second = [carried_by(second) for _ in range(second_requests)]
    second.close()
    return ports_first, ports_second


@pytest.mark.parametrize("mode, reuses_across_clients", [
    ("", False),  # safe, HAProxy's default
    ("http-reuse safe", False),
    ("http-reuse aggressive", True),  # the connection carried two requests already
    ("http-reuse always", True),
    ("http-reuse never", False),
])
def test_a_client_keeps_its_connection_and_shares_it_as_the_mode_says(
        backends: Servers, run_proxy: ProxyStarter, mode, reuses_across_clients):
    proxy = run_proxy(one_server_config(backends.ports["web1"], defaults=f"    {mode}"))
    first, second = two_clients(proxy)
    assert first[0] == first[1]  # a client's second request reuses its connection
    assert (second[0] == first[0]) is reuses_across_clients


def test_aggressive_shares_only_connections_that_proved_they_can_be_reused(
        backends: Servers, run_proxy: ProxyStarter):
    proxy = run_proxy(one_server_config(backends.ports["web1"],
                                        defaults="    http-reuse aggressive"))
    one = connect(proxy, frontend="fe")
    fresh = carried_by(one)  # carried one request only
    one.close()
    other = connect(proxy, frontend="fe")
    assert carried_by(other) != fresh
    other.close()


def test_safe_lets_a_clients_later_requests_take_any_idle_connection(
        backends: Servers, run_proxy: ProxyStarter):
    proxy = run_proxy(one_server_config(backends.ports["web1"]))
    first = connect(proxy, frontend="fe")
    pooled = carried_by(first)
    first.close()
    second = connect(proxy, frontend="fe")
    own = carried_by(second)  # its first: a connection of its own
    assert own != pooled
    assert carried_by(second) in (own, pooled)
    second.close()
