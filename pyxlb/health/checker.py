"""Health checks on the wire: TCP connect checks and `option httpchk`, run by one
owner task per checked server under a `HealthMonitor` that owns them all.

The monitor keeps every server's `HealthState` (pure rules in state.py) and is
where passive observations from the traffic tiers (`observe`) and admin changes
(`set_maint`) come in. A state change calls `on_change(target, old, new, report)`
in the event loop; the daemon hooks the kernel maps and the l7 pools there.

Each check runs under its own deadlines, so a server that hangs delays nothing
but its own next check; a task that fails with an unexpected error takes the
monitor down with it (an asyncio.TaskGroup), and whoever awaits `wait()` or
`stop()` sees that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from pyxlb.config.errors import ConfigError
from pyxlb.config.model import Config, HttpCheck, Server
from pyxlb.health.httpcheck import (
    MAX_RESPONSE,
    HttpCheckResponse,
    HttpCheckSyntaxError,
    request_bytes,
)
from pyxlb.health.state import (
    Analyze,
    CheckDone,
    CheckParams,
    CheckReport,
    CheckStatus,
    Event,
    HealthState,
    Observed,
    Reschedule,
    ServerState,
    SetMaint,
    Transition,
    apply,
    connect_timeout_ms,
    first_check_delays_ms,
    next_interval_ms,
    response_deadline_ms,
    status_text,
)

# close() then sends a RST, as HAProxy's checks do (FD_LINGER_RISK, proto_tcp.c;
# seen on 2.6.12): no TIME_WAIT left behind per check.
_LINGER_RST: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """A server as its checks see it: its backend's `option httpchk` and timeouts."""

    backend: str
    server: Server
    httpchk: HttpCheck | None = None
    connect_timeout_ms: int | None = None
    check_timeout_ms: int | None = None

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.server.name}"


OnChange = Callable[[CheckTarget, ServerState, ServerState, CheckReport | None], None]
OnStatus = Callable[[CheckTarget], None]


def check_targets(config: Config) -> list[CheckTarget]:
    """Every server of every backend, in configuration order (the order HAProxy
    spreads the first checks in)."""
    return [CheckTarget(backend.name, server, backend.httpchk,
                        backend.timeouts.connect, backend.timeouts.check)
            for backend in config.backends.values() for server in backend.servers]


async def run_check(target: CheckTarget, request: bytes | None = None,
                    source: str | None = None) -> CheckReport:
    """One check of `target`: a TCP connect and, for `option httpchk`, `request`
    (`request_bytes(target.httpchk)`, built once by the caller) and its response.
    `source` is the address to check from (None: the kernel's choice). Never raises
    for what the network does."""
    loop = asyncio.get_running_loop()
    params = CheckParams.of(target.server)
    inter, connect, check = (params.inter_ms, target.connect_timeout_ms,
                             target.check_timeout_ms)
    start = loop.time()

    def report(status: CheckStatus, info: str = "", code: int = 0) -> CheckReport:
        return CheckReport(status, code, info, int((loop.time() - start) * 1000))

    sock: socket.socket | None = None
    try:
        try:
            async with asyncio.timeout_at(start + connect_timeout_ms(inter, connect, check) / 1000):
                family, address = await _address(loop, target.server)
                sock = _check_socket(family, source, quickack=request is not None)
                await loop.sock_connect(sock, address)
        except TimeoutError:
            return report(CheckStatus.L4TOUT)
        except socket.gaierror as exc:
            return report(CheckStatus.SOCKERR, str(exc.strerror))
        except OSError as exc:
            status = CheckStatus.SOCKERR if sock is None else CheckStatus.L4CON
            return report(status, _strerror(exc))
        if request is None:
            return report(CheckStatus.L4OK)

        connected_ms = (loop.time() - start) * 1000
        deadline = response_deadline_ms(inter, connect, check, connected_ms)
        response = HttpCheckResponse(target.httpchk.expects if target.httpchk else ())
        try:
            async with asyncio.timeout_at(start + deadline / 1000):
                await loop.sock_sendall(sock, request)
                while data := await loop.sock_recv(sock, MAX_RESPONSE):
                    if (verdict := response.feed(data)) is not None:
                        break
                else:
                    verdict = response.eof()
        except TimeoutError:
            return report(CheckStatus.L7TOUT)
        except OSError as exc:
            return report(CheckStatus.SOCKERR, _strerror(exc))
        return report(verdict.status, verdict.info, verdict.code)
    finally:
        if sock is not None:
            sock.close()


async def _address(loop: asyncio.AbstractEventLoop, server: Server
                   ) -> tuple[socket.AddressFamily, tuple]:
    port = server.port
    assert port is not None  # HealthMonitor refuses checked servers without one
    try:
        ip = ipaddress.ip_address(server.host)
    except ValueError:
        infos = await loop.getaddrinfo(server.host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        return family, address
    if ip.version == 6:
        return socket.AF_INET6, (server.host, port, 0, 0)
    return socket.AF_INET, (server.host, port)


def _check_socket(family: socket.AddressFamily, source: str | None, quickack: bool
                  ) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        if not quickack:
            # A pure TCP check: with delayed ACKs the handshake's last ACK waits, so
            # the RST at close() comes first and the server's accept() never sees
            # the check (HAProxy's CONNECT_DELACK_ALWAYS: tcpcheck_eval_connect, then
            # tcp_connect_server in proto_tcp.c; seen on 2.6.12).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        if source is not None:
            sock.bind((source, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


class _Checked:
    """The monitor's record of one server."""

    __slots__ = ("target", "params", "state", "request", "due", "wake", "checking")

    def __init__(self, target: CheckTarget, request: bytes | None) -> None:
        self.target = target
        self.params = CheckParams.of(target.server)
        self.state = HealthState.initial(self.params)
        self.request = request
        self.due = 0.0
        self.wake = asyncio.Event()
        self.checking = False


class HealthMonitor:
    """Owns the check tasks and the health of every server.

    Usage (the daemon): ``async with HealthMonitor(check_targets(config), on_change)
    as monitor: ...``, or `start()` then `await stop()`. `observe()`, `set_maint()`
    and the read-outs are plain calls from the same event loop.
    """

    def __init__(self, targets: Sequence[CheckTarget], on_change: OnChange, *,
                 on_status: OnStatus | None = None, source: str | None = None) -> None:
        """`on_status(target)`: a check ended or an observation counted without
        a change of state (what the stats show of its checks moved)."""
        self._on_change = on_change
        self._on_status = on_status
        self._source = source
        self._servers: dict[tuple[str, str], _Checked] = {}
        for target in targets:
            self._servers[(target.backend, target.server.name)] = _Checked(
                target, _request_for(target))
        self._runner: asyncio.Task[None] | None = None

    # lifetime
    def start(self) -> None:
        """Starts the checks; call from the event loop that will run them."""
        if self._runner is not None:
            raise RuntimeError("health checks already started")
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="health checks")

    async def stop(self) -> None:
        """Stops every check and waits for them; raises the error that had stopped
        the checks, if one did."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        await asyncio.wait([runner])
        if not runner.cancelled() and (exc := runner.exception()) is not None:
            raise exc

    async def wait(self) -> None:
        """Waits while the checks run: raises the error that stopped them, or returns
        once `stop()` did."""
        runner = self._runner
        if runner is None:
            raise RuntimeError("health checks not started")
        await asyncio.wait([runner])
        if not runner.cancelled() and (exc := runner.exception()) is not None:
            raise exc

    async def __aenter__(self) -> HealthMonitor:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # inputs from the tiers and the runtime API
    def observe(self, backend: str, server: str, outcome: Analyze) -> None:
        """What the traffic tiers saw on a connection to `backend/server`."""
        self._event(self._servers[(backend, server)], Observed(outcome))

    def set_maint(self, backend: str, server: str, on: bool) -> None:
        """`disable server` / `enable server`."""
        self._event(self._servers[(backend, server)], SetMaint(on))

    # read-outs
    def checked(self) -> list[tuple[str, str]]:
        """(backend, server) of every server that has `check`, in config order."""
        return [key for key, c in self._servers.items() if c.params.check]

    def state(self, backend: str, server: str) -> HealthState:
        return self._servers[(backend, server)].state

    def params(self, backend: str, server: str) -> CheckParams:
        return self._servers[(backend, server)].params

    def status_text(self, backend: str, server: str) -> str:
        """`UP`, `UP 1/3`, `DOWN`, `DOWN 1/2`, `no check` or `MAINT`."""
        checked = self._servers[(backend, server)]
        return status_text(checked.state, checked.params)

    # the tasks
    async def _run(self) -> None:
        checked = [c for c in self._servers.values() if c.params.check]
        delays = first_check_delays_ms([c.params for c in checked])
        async with asyncio.TaskGroup() as group:
            for server, delay in zip(checked, delays, strict=True):
                group.create_task(self._own(server, delay), name=f"check {server.target.name}")
            await asyncio.Event().wait()  # until stopped, or a task fails

    async def _own(self, server: _Checked, first_delay_ms: int) -> None:
        loop = asyncio.get_running_loop()
        server.due = loop.time() + first_delay_ms / 1000
        while True:
            await self._until_due(server)
            if server.state.maint:
                # Paused: wake on the `inter` grid, so leaving maintenance keeps the
                # old rhythm (process_chk_conn's reschedule loop).
                server.due += server.params.inter_ms / 1000
                continue
            server.checking = True
            try:
                report = await run_check(server.target, server.request, self._source)
            finally:
                server.checking = False
            self._event(server, CheckDone(report))
            server.due = loop.time() + next_interval_ms(server.state, server.params) / 1000

    @staticmethod
    async def _until_due(server: _Checked) -> None:
        loop = asyncio.get_running_loop()
        while (delay := server.due - loop.time()) > 0:
            server.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await server.wake.wait()

    def _event(self, server: _Checked, event: Event) -> None:
        old = server.state
        server.state, effects = apply(old, event, server.params)
        changed = False
        for effect in effects:
            if isinstance(effect, Transition):
                changed = True
                self._on_change(server.target, effect.old, effect.new, effect.report)
            elif isinstance(effect, Reschedule) and not server.checking:
                # A check under way keeps its own deadlines; the one after it is
                # scheduled from its result anyway.
                due = asyncio.get_running_loop().time() + effect.within_ms / 1000
                if due < server.due:
                    server.due = due
                    server.wake.set()
        if not changed and server.state != old and self._on_status is not None:
            self._on_status(server.target)


def _request_for(target: CheckTarget) -> bytes | None:
    server = target.server
    if not server.check:
        return None
    if server.port is None:
        raise ConfigError(f"backend '{target.backend}': server '{server.name}' has neither "
                          "service port nor check port", server.where)
    if target.httpchk is None:
        return None
    try:
        return request_bytes(target.httpchk)
    except HttpCheckSyntaxError as exc:
        raise ConfigError(str(exc), target.httpchk.where) from None

