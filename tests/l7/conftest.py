"""Fixtures for l7 tests on loopback (helpers in l7_harness)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from l7_harness import Backend, RunningProxy, Servers

from pyxlb.l7.proxy import new_event_loop


@pytest.fixture
def backends() -> Iterator[Servers]:
    """web1 and web2 on 127.0.0.1, ports chosen by the OS."""
    started = []
    for name in ("web1", "web2"):
        handler = type(f"Backend_{name}", (Backend,), {"name": name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        # A short poll interval keeps shutdown() quick.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
    yield Servers({s.RequestHandlerClass.name: s.server_address[1] for s in started}, started)
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop]:
    """Each proxy test runs on uvloop (production) and on asyncio's own loop."""
    return new_event_loop if request.param == "uvloop" else asyncio.new_event_loop


@pytest.fixture
def run_proxy(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> Iterator[Callable[[str], RunningProxy]]:
    """Start a proxy for a config text; stopped at the end of the test."""
    running: list[RunningProxy] = []

    def start(config_text: str) -> RunningProxy:
        proxy = RunningProxy(config_text, loop_factory)
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        proxy.close()
