"""Fixtures for l7 tests on loopback (helpers in l7_harness)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from l7_harness import RunningProxy, ScriptedServer, Servers, start_backends

from pyxlb.l7.proxy import new_event_loop


@pytest.fixture
def backends() -> Iterator[Servers]:
    """web1 and web2 on 127.0.0.1, ports chosen by the OS."""
    servers = start_backends("web1", "web2")
    yield servers
    servers.close()


@pytest.fixture
def three_backends() -> Iterator[Servers]:
    """web1, web2 and web3: HAProxy's hash examples are for three servers."""
    servers = start_backends("web1", "web2", "web3")
    yield servers
    servers.close()


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop]:
    """Each proxy test runs on uvloop (production) and on asyncio's own loop."""
    return new_event_loop if request.param == "uvloop" else asyncio.new_event_loop


@pytest.fixture
def run_proxy(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> Iterator[Callable[..., RunningProxy]]:
    """Start a proxy for a config text (and RunningProxy's keywords); stopped at the
    end of the test."""
    running: list[RunningProxy] = []

    def start(config_text: str, **kwargs: Any) -> RunningProxy:
        proxy = RunningProxy(config_text, loop_factory, **kwargs)
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        proxy.close()


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A backend that answers what each test scripts (l7_harness.ScriptedServer)."""
    server = ScriptedServer()
    yield server
    server.close()
