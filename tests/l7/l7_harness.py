"""Helpers for l7 tests on loopback: tiny HTTP backends and a proxy running its
own event loop in a thread, so tests can talk to it with blocking clients."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import threading
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pyxlb.config import Config, parse_text
from pyxlb.l7.proxy import close_servers, start_frontend
from pyxlb.l7.upstream import Upstreams
from pyxlb.stats.counters import StatsRegistry


def big_body(size: int) -> bytes:
    """Deterministic, not compressible by accident, cheap to check."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class Backend(BaseHTTPRequestHandler):
    """A test server: says who it is in X-Server, echoes what the proxy sent."""

    protocol_version = "HTTP/1.1"
    # Buffered writes (flushed after each request): one segment per small response,
    # instead of Nagle holding back the body behind the head.
    wbufsize = 65536
    name = "?"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _head(self, status: int, length: int | None, chunked: bool = False) -> None:
        self.send_response(status)
        self.send_header("X-Server", self.name)
        self.send_header("X-Got-XFF", self.headers.get("X-Forwarded-For", "-"))
        self.send_header("X-Got-Connection", self.headers.get("Connection", "-"))
        self.send_header("X-Got-Path", self.path)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _reply(self, head_only: bool) -> None:
        if self.path.startswith("/chunked"):
            self._head(200, None, chunked=True)
            if not head_only:
                for piece in (b"hello ", b"chunked ", b"world"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/big/"):
            body = big_body(int(self.path.rsplit("/", 1)[1]))
        else:
            body = f"{self.name} {self.path}\n".encode()
        self._head(200, len(body))
        if not head_only:
            self.wfile.write(body)

    def handle_expect_100(self) -> bool:
        ok = super().handle_expect_100()
        self.wfile.flush()  # the interim response must not wait in the write buffer
        return ok

    def do_GET(self) -> None:
        self._reply(head_only=False)

    def do_HEAD(self) -> None:
        self._reply(head_only=True)

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        self._head(200, len(reply))
        self.wfile.write(reply)

    def _read_chunked(self) -> bytes:
        # The fake backend decodes chunked uploads itself: the stdlib server does not.
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()


@dataclasses.dataclass
class Servers:
    """Running test backends by name."""

    ports: dict[str, int]
    _servers: list[ThreadingHTTPServer]

    def stop(self, name: str) -> None:
        server = self._servers[list(self.ports).index(name)]
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port nothing listens on (closed right after the OS picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningProxy:
    """pyxlb's l7 tier serving a config, on an event loop in its own thread.

    Every frontend bind is moved to 127.0.0.1 with a port chosen by the OS;
    ``port[frontend name]`` says which.
    """

    def __init__(self, config_text: str, loop_factory: Callable[[], asyncio.AbstractEventLoop]):
        config = parse_text(config_text)
        self.registry = StatsRegistry.build(config.frontends, config.backends)
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port: dict[str, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._upstreams: Upstreams | None = None
        self._call(self._start(config))

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _start(self, config: Config) -> None:
        self._upstreams = Upstreams(config.backends, self.registry)
        for fe in config.frontends.values():
            bind = dataclasses.replace(fe.binds[0], host="127.0.0.1", port=0)
            local = dataclasses.replace(fe, binds=[bind])
            servers = await start_frontend(local, self._upstreams, self.registry)
            self.port[fe.name] = servers[0].sockets[0].getsockname()[1]
            self._servers.extend(servers)

    async def _stop(self) -> None:
        await close_servers(self._servers)
        assert self._upstreams is not None
        self._upstreams.close_idle()

    def close(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
