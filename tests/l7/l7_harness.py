"""Helpers for l7 tests on loopback: tiny HTTP backends and a proxy running its
own event loop in a thread, so tests can talk to it with blocking clients."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import http.client
import io
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from pyxlb.config import Config, parse_text
from pyxlb.l7.proxy import close_servers, start_frontend
from pyxlb.l7.rules.acl import Env
from pyxlb.l7.rules.engine import RuleEngine
from pyxlb.l7.upstream import Observer, Upstreams
from pyxlb.stats.counters import StatsRegistry

T = TypeVar("T")


def big_body(size: int) -> bytes:
    """Deterministic, not compressible by accident, cheap to check."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class Backend(BaseHTTPRequestHandler):
    """A test server: says who it is in X-Server, echoes what the proxy sent.

    A path containing ``/echo`` answers with the request line and headers received;
    ``/slow/<ms>`` answers after that many milliseconds; ``/status/<code>`` answers
    with that status."""

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
        # Which of the proxy's connections carried the request (reuse tests).
        self.send_header("X-Peer-Port", str(self.client_address[1]))
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
        status = 200
        if "/echo" in self.path:
            # The request line and headers as the proxy sent them.
            body = f"{self.requestline}\n{self.headers}".encode()
        elif self.path.startswith("/big/"):
            body = big_body(int(self.path.rsplit("/", 1)[1]))
        else:
            body = f"{self.name} {self.path}\n".encode()
            if self.path.startswith("/slow/"):
                time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000)
            elif self.path.startswith("/status/"):
                status = int(self.path.rsplit("/", 1)[1])
        self._head(status, len(body))
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

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def start_backends(*names: str) -> Servers:
    """Test backends of these names on 127.0.0.1, ports chosen by the OS."""
    started = []
    for name in names:
        handler = type(f"Backend_{name}", (Backend,), {"name": name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        # A short poll interval keeps shutdown() quick.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
    return Servers(dict(zip(names, (s.server_address[1] for s in started), strict=True)),
                   started)


HTTP_DEFAULTS = """\
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
"""
"""The defaults section of the tests' configs: more lines may follow it."""


def one_server_config(port: int, defaults: str = "", server: str = "s1") -> str:
    """Frontend `fe` on :80 to backend `be` with one server at 127.0.0.1:`port`;
    `defaults` lines (timeouts, options) go in the defaults section."""
    return f"""
{HTTP_DEFAULTS}{defaults}
frontend fe
    bind :80
    default_backend be
backend be
    server {server} 127.0.0.1:{port}
"""


def read_until(s: socket.socket, end: bytes) -> bytes:
    """What `s` receives up to `end` (the server closing first is a failure)."""
    data = b""
    while not data.endswith(end):
        chunk = s.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def free_port() -> int:
    """A port nothing listens on (closed right after the OS picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningProxy:
    """pyxlb's l7 tier serving a config, on an event loop in its own thread.

    Every frontend bind is moved to 127.0.0.1 with a port chosen by the OS;
    ``port[frontend name]`` says which. ``call`` runs a function on the proxy's
    loop (Upstreams' run-time changes are made there).

    Closing checks that every request gave its server back: each balancer's
    connection count is 0 once the client connections are gone.
    """

    def __init__(
        self,
        config_text: str,
        loop_factory: Callable[[], asyncio.AbstractEventLoop],
        observer: Observer | None = None,
    ):
        config = parse_text(config_text)
        self.config = config
        self.registry = StatsRegistry.build(config.frontends, config.backends)
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port: dict[str, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self.upstreams = Upstreams(config.backends, self.registry, observer)
        self._left_served: dict[str, int] = {}
        self._call(self._start(config))

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def served(self) -> dict[str, int]:
        """Every server's connection count, as ``backend/server``."""
        return self.call(self._served)

    def _served(self) -> dict[str, int]:
        return {
            f"{be.name}/{s.name}": self.upstreams.served(be.name, s.name)
            for be in self.config.backends.values() for s in be.servers
        }

    async def _start(self, config: Config) -> None:
        for fe in config.frontends.values():
            bind = dataclasses.replace(fe.binds[0], host="127.0.0.1", port=0)
            local = dataclasses.replace(fe, binds=[bind])
            rules = None
            if RuleEngine.needed(fe, config.backends):
                rules = RuleEngine(fe, config.backends, Env(userlists=config.userlists))
            servers = await start_frontend(local, self.upstreams, self.registry, rules)
            self.port[fe.name] = servers[0].sockets[0].getsockname()[1]
            self._servers.extend(servers)

    async def _stop(self) -> None:
        await close_servers(self._servers)
        self.upstreams.close_idle()
        self._left_served = self._served()

    def close(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
        leaked = {name: n for name, n in self._left_served.items() if n}
        assert not leaked, f"connection counts left after close: {leaked}"


ProxyStarter = Callable[..., RunningProxy]
"""The ``run_proxy`` fixture: ``run_proxy(config_text, observer=None)``."""


def connect(
    proxy: RunningProxy, source: str | None = None, frontend: str = "http_front"
) -> http.client.HTTPConnection:
    """A client connection to the frontend, from ``source`` (any 127/8 address)."""
    return http.client.HTTPConnection(
        "127.0.0.1", proxy.port[frontend], timeout=10,
        source_address=None if source is None else (source, 0),
    )


def get(conn: http.client.HTTPConnection, path: str = "/") -> http.client.HTTPResponse:
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp


def raw_exchange(
    proxy: RunningProxy, data: bytes, frontend: str = "http_front", timeout: float = 2
) -> bytes:
    """Send bytes, read until the proxy closes (or ``timeout`` seconds of silence)."""
    with socket.create_connection(("127.0.0.1", proxy.port[frontend]), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<timeout>"
        return out


def stats_csv(proxy: RunningProxy, frontend: str = "http_front") -> dict[str, dict[str, str]]:
    """The stats CSV (stats uri /haproxy?stats) by svname: FRONTEND, servers, BACKEND."""
    conn = connect(proxy, frontend=frontend)
    conn.request("GET", "/haproxy?stats;csv")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("content-type") == "text/plain"
    assert resp.getheader("cache-control") == "no-cache"
    text = resp.read().decode()
    conn.close()
    rows = list(csv.reader(io.StringIO(text.removeprefix("# "))))
    header = rows[0]
    return {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}


class ScriptedServer:
    """A one-connection server whose replies the test writes by hand."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]

    def accept(self) -> socket.socket:
        self.listener.settimeout(5)
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        return conn

    def close(self) -> None:
        self.listener.close()
