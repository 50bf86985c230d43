"""Health checks against real sockets on 127.0.0.1 (ports chosen by the OS)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pyxlb.config import parse_text
from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.model import HttpCheck, Server
from pyxlb.health.checker import CheckTarget, HealthMonitor, check_targets, run_check
from pyxlb.health.httpcheck import request_bytes
from pyxlb.health.state import Analyze, CheckStatus, ServerState
from pyxlb.l7.proxy import new_event_loop

WHERE = Where("test.cfg", 1)
Run = Callable[[Callable[[], Awaitable[None]]], None]
# uvloop rounds timers to the millisecond and may fire one early
TIMER_SLACK = 2


class Web:
    """A tiny HTTP server whose answer the test changes as it goes; it records
    what each connection sent."""

    def __init__(self, mode: str = "200") -> None:
        self.mode = mode
        self.received: list[bytes] = []
        self.peers: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Web:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[0])
        try:
            data = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.received.append(data)
        if self.mode == "hang":
            await asyncio.sleep(10)
        elif self.mode.isdigit():
            writer.write(f"HTTP/1.1 {self.mode} Status {self.mode}\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
        writer.close()


def free_port() -> int:
    """A port nothing listens on (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def target(port: int, *, httpchk: HttpCheck | None = None, connect: int | None = 1000,
           check: int | None = None, name: str = "s", **server: Any) -> CheckTarget:
    fields = {"check": True, "inter_ms": 20, **server}
    return CheckTarget("b", Server(name=name, host="127.0.0.1", port=port, where=WHERE, **fields),
                       httpchk, connect, check)


def http(method: str | None = "GET", uri: str = "/status?haproxy=1") -> HttpCheck:
    if method is None:
        return HttpCheck(where=WHERE)
    return HttpCheck(method=method, uri=uri, where=WHERE)


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Runs a test's coroutine on uvloop (production) and on asyncio's own loop."""
    factory = new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run_main(main: Callable[[], Awaitable[None]]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(main(), 5))
    return run_main


async def check(t: CheckTarget, source: str | None = None):
    request = request_bytes(t.httpchk) if t.httpchk else None
    return await run_check(t, request, source)


# --- single checks ----------------------------------------------------------------

@pytest.mark.parametrize(("method", "sent"), [
    ("GET", b"GET /status?haproxy=1 HTTP/1.0\r\n\r\n"),
    (None, b"OPTIONS / HTTP/1.0\r\n\r\n"),
])
def test_httpchk_sends_exactly_haproxys_bytes(method: str | None, sent: bytes, run: Run) -> None:
    async def main() -> None:
        async with Web() as web:
            report = await check(target(web.port, httpchk=http(method)))
            assert (report.status, report.code) == (CheckStatus.L7OK, 200)
            assert web.received == [sent]
    run(main)


def test_passing_failing_hanging_and_refusing_servers(run: Run) -> None:
    async def main() -> None:
        async with Web("200") as good, Web("500") as bad, Web("hang") as hung:
            results = await asyncio.gather(
                check(target(good.port, httpchk=http())),
                check(target(bad.port, httpchk=http())),
                check(target(hung.port, httpchk=http(), connect=100, check=150, inter_ms=1000)),
                check(target(free_port(), httpchk=http())),
                check(target(free_port())),
            )
        good_r, bad_r, hung_r, refused_http, refused_tcp = results
        assert (good_r.status, good_r.code, good_r.info) == (CheckStatus.L7OK, 200, "")
        assert (bad_r.status, bad_r.code, bad_r.info) == (CheckStatus.L7STS, 500, "Status 500")
        assert hung_r.status is CheckStatus.L7TOUT
        assert 150 - TIMER_SLACK <= hung_r.duration_ms < 400
        for refused in (refused_http, refused_tcp):
            assert (refused.status, refused.info) == (CheckStatus.L4CON, "Connection refused")
    run(main)


def test_timeout_without_timeout_check_is_inter(run: Run) -> None:
    async def main() -> None:
        async with Web("hang") as hung:
            report = await check(target(hung.port, httpchk=http(), connect=5000, inter_ms=120))
        assert report.status is CheckStatus.L7TOUT
        assert 120 - TIMER_SLACK <= report.duration_ms < 350
    run(main)


def test_connect_timeout(run: Run) -> None:
    """A listener whose accept queue is full drops SYNs: the connect times out after
    min(timeout connect, inter) as `timeout check` is set."""
    async def main() -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            port = listener.getsockname()[1]
            fillers = []
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            try:
                report = await check(target(port, connect=100, check=1000, inter_ms=2000))
            finally:
                for filler in fillers:
                    filler.close()
        assert report.status is CheckStatus.L4TOUT
        assert 100 - TIMER_SLACK <= report.duration_ms < 350
    run(main)


def test_tcp_check_never_reaches_accept(run: Run) -> None:
    """As HAProxy's: SYN, SYN-ACK, then RST before the handshake's last ACK, so the
    server's accept() never returns for a check."""
    async def main() -> None:
        accepted = []
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        report = await check(target(port))
        await asyncio.sleep(0.05)
        server.close()
        assert report.status is CheckStatus.L4OK
        assert accepted == []
    run(main)


def test_source_address(run: Run) -> None:
    async def main() -> None:
        async with Web() as web:
            report = await check(target(web.port, httpchk=http()), source="127.0.0.1")
            assert report.status is CheckStatus.L7OK
            assert web.peers == ["127.0.0.1"]
        # an address that is not the balancer's own: the socket cannot be made
        report = await check(target(web.port), source="192.0.2.1")
        assert (report.status, report.info) == (CheckStatus.SOCKERR,
                                                "Cannot assign requested address")
    run(main)


# --- the monitor -------------------------------------------------------------------

class Changes(list):
    """on_change: records (server, old, new, check status)."""

    def __call__(self, t: CheckTarget, old: ServerState, new: ServerState, report: Any) -> None:
        self.append((t.server.name, old.value, new.value,
                     report.status.short if report else None))

    async def wait_for(self, count: int) -> None:
        while len(self) < count:
            await asyncio.sleep(0.005)


def test_tutorial_rise1_fall3(run: Run) -> None:
    """`check inter 10000 rise 1 fall 3`, with 20ms for 10s: down after three failed
    checks, back up after one good one."""
    async def main() -> None:
        changes = Changes()
        async with Web("200") as web:
            t = target(web.port, httpchk=http(), rise=1, fall=3)
            async with HealthMonitor([t], changes) as monitor:
                while monitor.status_text("b", "s") != "UP":
                    await asyncio.sleep(0.005)
                web.mode = "503"
                seen = set()
                while monitor.status_text("b", "s") != "DOWN":
                    seen.add(monitor.status_text("b", "s"))
                    await asyncio.sleep(0.002)
                assert {"UP 2/3", "UP 1/3"} <= seen
                checks_at_down = len(web.received)
                web.mode = "200"
                await changes.wait_for(2)
                assert len(web.received) == checks_at_down + 1
                state = monitor.state("b", "s")
                assert (state.failed_checks, state.down_transitions) == (3, 1)
        assert changes == [("s", "UP", "DOWN", "L7STS"), ("s", "DOWN", "UP", "L7OK")]
    run(main)


def test_a_stuck_check_does_not_stall_the_others(run: Run) -> None:
    async def main() -> None:
        changes = Changes()
        async with Web("200") as good, Web("hang") as hung:
            targets = [target(hung.port, httpchk=http(), name="hung", inter_ms=300),
                       target(good.port, httpchk=http(), name="good")]
            async with HealthMonitor(targets, changes) as monitor:
                await asyncio.sleep(0.15)
                assert len(hung.received) == 1  # still waiting for its answer
                assert len(good.received) >= 4
                assert monitor.status_text("b", "good") == "UP"
                await changes.wait_for(1)
        assert changes == [("hung", "UP", "DOWN", "L7TOUT")]
    run(main)


def test_observed_errors_and_fastinter(run: Run) -> None:
    """`observe layer4 error-limit 1 on-error fastinter fastinter 30` with a 10s
    inter: an observed failure brings the next check forward to 30ms, and checks
    stay 30ms apart while the counter falls (fall 3)."""
    async def main() -> None:
        changes = Changes()
        async with Web("200") as web:
            t = target(web.port, httpchk=http(), inter_ms=10_000, fastinter_ms=30,
                       observe="layer4", error_limit=1, on_error="fastinter")
            async with HealthMonitor([t], changes) as monitor:
                while not web.received:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.02)
                web.mode = "500"
                loop = asyncio.get_running_loop()
                observed_at = loop.time()
                monitor.observe("b", "s", Analyze.L4_ERR)
                await changes.wait_for(1)
                assert 0.09 <= loop.time() - observed_at < 0.5
                assert len(web.received) == 1 + 3
                assert monitor.state("b", "s").hanafail == 1
        assert changes == [("s", "UP", "DOWN", "L7STS")]
    run(main)


def test_tutorial_observe_layer4_fails_over_before_the_next_check(run: Run) -> None:
    """`check fall 3 inter 2m observe layer4 error-limit 1`: three failed
    connections, no check in between."""
    async def main() -> None:
        changes = Changes()
        async with Web("200") as web:
            t = target(web.port, inter_ms=120_000, fall=3, observe="layer4", error_limit=1)
            async with HealthMonitor([t], changes) as monitor:
                await asyncio.sleep(0.02)
                assert monitor.status_text("b", "s") == "UP"
                for _ in range(3):
                    monitor.observe("b", "s", Analyze.L4_ERR)
                assert monitor.status_text("b", "s") == "DOWN"
        assert changes == [("s", "UP", "DOWN", "HANA")]
    run(main)


def test_maintenance_pauses_checks(run: Run) -> None:
    async def main() -> None:
        changes = Changes()
        async with Web("200") as web:
            t = target(web.port, httpchk=http(), disabled=True)
            async with HealthMonitor([t], changes) as monitor:
                await asyncio.sleep(0.1)
                assert web.received == []
                assert monitor.status_text("b", "s") == "MAINT"
                monitor.set_maint("b", "s", False)
                assert monitor.status_text("b", "s") == "UP 1/3"
                while monitor.status_text("b", "s") != "UP":
                    await asyncio.sleep(0.005)
        assert changes == [("s", "MAINT", "UP", None)]
    run(main)


def test_unchecked_servers_have_a_state_but_no_task(run: Run) -> None:
    async def main() -> None:
        async with Web() as web:
            t = target(web.port, httpchk=http(), check=None)
            t = dataclasses.replace(t, server=dataclasses.replace(t.server, check=False))
            async with HealthMonitor([t], Changes()) as monitor:
                await asyncio.sleep(0.05)
                assert monitor.status_text("b", "s") == "no check"
            assert web.received == []
    run(main)


def test_callback_errors_reach_the_owner(run: Run) -> None:
    async def main() -> None:
        def broken(*args: object) -> None:
            raise RuntimeError("daemon bug")

        monitor = HealthMonitor([target(free_port())], broken)
        monitor.start()
        with pytest.raises(ExceptionGroup) as caught:
            await monitor.wait()
        assert caught.group_contains(RuntimeError, match="daemon bug")
        with pytest.raises(ExceptionGroup):
            await monitor.stop()
    run(main)


def test_stop_is_prompt_and_final(run: Run) -> None:
    async def main() -> None:
        async with Web("hang") as hung:
            monitor = HealthMonitor([target(hung.port, httpchk=http(), inter_ms=5000)],
                                    Changes())
            monitor.start()
            await asyncio.sleep(0.05)
            await asyncio.wait_for(monitor.stop(), 0.5)
            await monitor.stop()
            assert [t for t in asyncio.all_tasks() if t.get_name().startswith("check ")] == []
    run(main)


def test_targets_from_config() -> None:
    config = parse_text("""\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
backend www
    timeout check 5000
    option httpchk GET /status?haproxy=1
    server www1 127.0.0.1:8001 check inter 10000 rise 1 fall 3
    server www2 127.0.0.1:8002 check inter 10000 rise 1 fall 3
backend db
    mode tcp
    server db1 127.0.0.1:3306 check fall 3 inter 2m observe layer4 error-limit 1
    server db2 127.0.0.1:3307 check backup
""")
    targets = check_targets(config)
    assert [t.name for t in targets] == ["www/www1", "www/www2", "db/db1", "db/db2"]
    www1, db1 = targets[0], targets[2]
    assert (www1.connect_timeout_ms, www1.check_timeout_ms) == (5000, 5000)
    assert www1.httpchk is not None and request_bytes(www1.httpchk) == (
        b"GET /status?haproxy=1 HTTP/1.0\r\n\r\n")
    assert db1.httpchk is None
    monitor = HealthMonitor(targets, Changes())
    assert monitor.params("db", "db1").error_limit == 1
    assert monitor.status_text("www", "www1") == "UP 1/3"


def test_a_checked_server_needs_a_port() -> None:
    t = target(0)
    t = dataclasses.replace(t, server=dataclasses.replace(t.server, port=None))
    with pytest.raises(ConfigError, match="has neither service port nor check port"):
        HealthMonitor([t], Changes())
