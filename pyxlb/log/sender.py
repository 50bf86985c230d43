"""Delivery of syslog datagrams to `log` targets without ever blocking the event
loop: one non-blocking datagram socket per target, level filtering per target, and
drops (counted) instead of queues when a receiver cannot keep up."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyxlb.config.model import Frontend, LogTarget
from pyxlb.log.format import (
    LEVEL_CODES,
    SessionRecord,
    session_level,
    session_line,
    syslog_datagram,
)

log = logging.getLogger(__name__)


def wants(target: LogTarget, level: str) -> bool:
    """Whether `target` takes messages of `level`: between its max and min levels."""
    code = LEVEL_CODES[level]
    return LEVEL_CODES[target.min_level] <= code <= LEVEL_CODES[target.max_level]


@dataclass(slots=True)
class _Channel:
    sock: socket.socket
    address: str | tuple[str, int] | tuple[str, int, int, int] | None
    warned: bool = False


class LogSender:
    """Sends syslog messages to `LogTarget`s. `emit` returns at once: a datagram a
    full socket buffer will not take is dropped and counted in `dropped`; one that
    cannot be sent at all (a missing `/dev/log`, nobody bound, an unresolved name) is
    counted in `unreachable` and warned about once per outage, not per message."""

    def __init__(self, *, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.dropped = 0
        self.unreachable = 0
        self._channels: dict[tuple[str, str], _Channel] = {}

    async def prepare(self, targets: Iterable[LogTarget]) -> None:
        """Open the targets' sockets, resolving UDP host names off the event loop;
        numeric addresses and unix paths also work without this."""
        loop = asyncio.get_running_loop()
        for target in targets:
            key = (target.kind, target.target)
            if key in self._channels or target.kind != "udp":
                continue
            assert target.host is not None and target.port is not None
            try:
                infos = await loop.getaddrinfo(target.host, target.port,
                                               type=socket.SOCK_DGRAM)
            except OSError as err:
                log.warning("%s: cannot resolve log target %s: %s; its messages are dropped",
                            target.where, target.target, err)
                continue
            family, kind, proto, _, address = infos[0]
            self._channels[key] = _Channel(self._socket(family, kind, proto), address)

    def emit(self, targets: Iterable[LogTarget], level: str, message: str,
             when: float | None = None) -> None:
        """Send `message` at `level` to each target that takes that level."""
        when = time.time() if when is None else when
        for target in targets:
            if wants(target, level):
                self._send(target, syslog_datagram(target.facility, level, message,
                                                   when, self.pid))

    def log_session(self, frontend: Frontend, record: SessionRecord,
                    when: float | None = None) -> None:
        """Log a finished request or connection as `frontend`'s options say."""
        if not frontend.logs:
            return
        level = session_level(record, frontend.options)
        if level is None or not any(wants(target, level) for target in frontend.logs):
            return
        line = session_line(record, frontend.options)
        if line is not None:
            self.emit(frontend.logs, level, line, when)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.sock.close()
        self._channels.clear()

    @staticmethod
    def _socket(family: int, kind: int = socket.SOCK_DGRAM, proto: int = 0) -> socket.socket:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        return sock

    def _channel(self, target: LogTarget) -> _Channel:
        key = (target.kind, target.target)
        channel = self._channels.get(key)
        if channel is None:
            if target.kind == "unix":
                channel = _Channel(self._socket(socket.AF_UNIX), target.target)
            else:
                channel = self._numeric_udp(target)
            self._channels[key] = channel
        return channel

    def _numeric_udp(self, target: LogTarget) -> _Channel:
        assert target.host is not None and target.port is not None
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM,
                                       flags=socket.AI_NUMERICHOST)
        except OSError:
            # A name would need a blocking lookup here: prepare() resolves it.
            return _Channel(self._socket(socket.AF_INET), None)
        family, kind, proto, _, address = infos[0]
        return _Channel(self._socket(family, kind, proto), address)

    def _send(self, target: LogTarget, datagram: bytes) -> None:
        channel = self._channel(target)
        if channel.address is None:
            self._unreachable(target, channel, "host name not resolved (prepare() was "
                              "not awaited for it)")
            return
        try:
            channel.sock.sendto(datagram, channel.address)
        except BlockingIOError:
            self.dropped += 1
        except OSError as err:
            self._unreachable(target, channel, err.strerror or str(err))
        else:
            channel.warned = False

    def _unreachable(self, target: LogTarget, channel: _Channel, why: str) -> None:
        self.unreachable += 1
        if not channel.warned:
            channel.warned = True
            log.warning("%s: cannot send to log target %s (%s); its messages are dropped "
                        "until it is reachable", target.where, target.target, why)
