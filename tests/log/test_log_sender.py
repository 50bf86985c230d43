"""LogSender against a unix datagram socket and a UDP socket the tests bind."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyxlb.config import parse_text
from pyxlb.config.errors import Where
from pyxlb.config.model import LogTarget
from pyxlb.log.format import SessionRecord
from pyxlb.log.sender import LogSender

WHERE = Where("test.cfg", 3)


@pytest.fixture
def unix_receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def unix_target(path: str, facility: str = "local0", max_level: str = "debug",
                min_level: str = "emerg") -> LogTarget:
    return LogTarget(kind="unix", target=path, facility=facility, max_level=max_level,
                     min_level=min_level, where=WHERE)


def pending(sock: socket.socket) -> list[bytes]:
    sock.settimeout(0.2)
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
    except TimeoutError:
        return out


def record(status: int) -> SessionRecord:
    return SessionRecord(client_ip="127.0.0.1", client_port=40000, accept_date=time.time(),
                         frontend="fe", backend="be", server="a", t_request=0, t_queue=0,
                         t_connect=0, t_response=1, t_active=1, status=status, bytes_out=96,
                         bytes_in=40, request_line="GET / HTTP/1.1")


CONFIG = """
global
    log {path} local0
    log 127.0.0.1:{port} local1 notice
defaults
    mode http
    log global
    timeout client 5s
    timeout server 5s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:8080
    option httplog
    option log-separate-errors
    default_backend be
backend be
    server a 127.0.0.1:8081
"""


def test_200_and_5xx_from_a_config(unix_receiver: tuple[str, socket.socket],
                                   udp_receiver: socket.socket) -> None:
    path, unix = unix_receiver
    port = udp_receiver.getsockname()[1]
    frontend = parse_text(CONFIG.format(path=path, port=port)).frontends["fe"]
    sender = LogSender(pid=77)

    async def run() -> None:
        await sender.prepare(frontend.logs)
        sender.log_session(frontend, record(200))
        sender.log_session(frontend, record(503))

    asyncio.run(run())
    ok, error = pending(unix)
    assert ok.startswith(b"<134>") and b" haproxy[77]: 127.0.0.1:40000 [" in ok
    assert ok.endswith(b' fe be/a 0/0/0/1/1 200 96 - - ---- 0/0/0/0/0 0/0 "GET / HTTP/1.1"\n')
    assert error.startswith(b"<131>") and b" 503 96 " in error
    # local1 notice: the info line is filtered out, the err line goes as local1.err
    (udp,) = pending(udp_receiver)
    assert udp == b"<139>" + error[5:]
    sender.close()


def test_level_filtering(unix_receiver: tuple[str, socket.socket]) -> None:
    path, unix = unix_receiver
    band = unix_target(path, max_level="warning", min_level="alert")
    sender = LogSender(pid=1)
    for level in ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"):
        sender.emit([band], level, level)
    got = [d.split(b": ", 1)[1] for d in pending(unix)]
    assert got == [b"alert\n", b"crit\n", b"err\n", b"warning\n"]
    sender.close()


def test_udp_by_address(udp_receiver: socket.socket) -> None:
    host, port = udp_receiver.getsockname()
    target = LogTarget(kind="udp", target=f"{host}:{port}", host=host, port=port,
                       facility="local0", where=WHERE)
    sender = LogSender(pid=5)
    sender.emit([target], "emerg", "backend be has no server available!")
    (got,) = pending(udp_receiver)
    assert got.startswith(b"<128>")
    assert got.endswith(b" haproxy[5]: backend be has no server available!\n")
    sender.close()


def test_missing_socket_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "nothing-here")
    sender = LogSender()
    with caplog.at_level(logging.WARNING, logger="pyxlb.log.sender"):
        for _ in range(5):
            sender.emit([unix_target(path)], "info", "hello")
    assert sender.unreachable == 5
    (warning,) = caplog.records
    assert warning.getMessage().startswith(f"test.cfg:3: cannot send to log target {path} (")
    # once the socket exists, messages flow again
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    sender.emit([unix_target(path)], "info", "back")
    assert pending(receiver)[0].endswith(b": back\n")
    receiver.close()
    sender.close()


def test_full_socket_drops_instead_of_blocking(
        unix_receiver: tuple[str, socket.socket]) -> None:
    path, unix = unix_receiver
    sender = LogSender()
    start = time.monotonic()
    for _ in range(5000):
        sender.emit([unix_target(path)], "info", "x" * 1000)
    assert time.monotonic() - start < 2
    assert sender.dropped > 0
    assert len(pending(unix)) + sender.dropped == 5000
    sender.close()


def test_unresolved_name_is_dropped_not_looked_up(caplog: pytest.LogCaptureFixture) -> None:
    target = LogTarget(kind="udp", target="logs.invalid:514", host="logs.invalid", port=514,
                       facility="local0", where=WHERE)
    sender = LogSender()
    with caplog.at_level(logging.WARNING, logger="pyxlb.log.sender"):
        sender.emit([target], "info", "a")
        sender.emit([target], "info", "b")
    assert sender.unreachable == 2 and len(caplog.records) == 1
    sender.close()
