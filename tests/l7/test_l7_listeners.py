"""Frontend and global `maxconn`: the pure count (l7/listeners.py) and, on
loopback, a frontend that stops accepting at its limit and accepts again below
it, the kernel holding the waiting connection meanwhile."""

from __future__ import annotations

import socket

import pytest
from l7_harness import HTTP_DEFAULTS, ProxyStarter, Servers, connect, get

from pyxlb.l7.listeners import ConnectionLimit, ProcessLimit


class FakeListener:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pause(self) -> None:
        self.events.append("pause")

    def resume(self) -> None:
        self.events.append("resume")


def test_a_frontend_pauses_at_its_maxconn_and_resumes_below() -> None:
    limit = ConnectionLimit(2)
    listener = FakeListener()
    limit.listeners.append(listener)
    limit.opened()
    assert listener.events == []
    limit.opened()
    assert listener.events == ["pause"] and limit.full()
    limit.closed()
    assert listener.events == ["pause", "resume"] and not limit.full()
    limit.closed()
    limit.opened()
    assert listener.events == ["pause", "resume"]


def test_global_maxconn_pauses_every_frontend() -> None:
    process = ProcessLimit(3)
    a, b = ConnectionLimit(0, process), ConnectionLimit(10, process)
    la, lb = FakeListener(), FakeListener()
    a.listeners.append(la)
    b.listeners.append(lb)
    a.opened()
    a.opened()
    assert la.events == lb.events == []
    b.opened()
    assert la.events == lb.events == ["pause"]
    a.closed()
    assert la.events == lb.events == ["pause", "resume"]


def test_own_limit_and_global_limit_both_hold() -> None:
    process = ProcessLimit(2)
    a, b = ConnectionLimit(1, process), ConnectionLimit(0, process)
    la, lb = FakeListener(), FakeListener()
    a.listeners.append(la)
    b.listeners.append(lb)
    a.opened()
    assert la.events == ["pause"] and lb.events == []
    b.opened()
    assert lb.events == ["pause"]
    b.closed()
    # The process is below its limit again, but a is still at its own.
    assert lb.events == ["pause", "resume"] and la.events == ["pause"]
    a.closed()
    assert la.events == ["pause", "resume"]


def config(servers: Servers) -> str:
    return f"""
{HTTP_DEFAULTS}
frontend http_front
    bind 127.0.0.1:8080
    maxconn 1
    default_backend b

backend b
    server web1 127.0.0.1:{servers.ports["web1"]}
"""


def test_a_frontend_at_maxconn_leaves_new_connections_in_the_backlog(
        backends: Servers, run_proxy: ProxyStarter) -> None:
    proxy = run_proxy(config(backends))
    first = connect(proxy)
    assert get(first, "/one").status == 200  # kept alive: the frontend is full
    with socket.create_connection(("127.0.0.1", proxy.port["http_front"]), timeout=5) as s:
        s.sendall(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(1)  # connected (the kernel's backlog), but not accepted
        first.close()
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    # Below the limit again: the next connection is served at once.
    again = connect(proxy)
    assert get(again, "/three").status == 200
    again.close()
