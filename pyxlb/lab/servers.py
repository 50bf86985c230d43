"""Backend programs for the lab: an HTTP server, a WebSocket echo server, a TCP echo server,
and a "who" server that tells each TCP connection and UDP datagram its name and the
address it came from (layer-4 tests: which server, and whose address it saw).

    python -m pyxlb.lab.servers web --name web1 [--port 80] [--bind ADDR]
    python -m pyxlb.lab.servers ws  --name ws1  [--port 80]
    python -m pyxlb.lab.servers tcp --name tcp1 [--port 9000]
    python -m pyxlb.lab.servers who --name web1 [--port 7000]

Each listens on IPv4 and IPv6 unless --bind names one address, then prints a single
line starting with "ready" to stdout. After that stdout points at /dev/null, so the lab
can close its end of the pipe and the server outlives whoever started it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pyxlb.lab.topology import TCP_PORT, WEB_PORT, WS_PORT

STATUS_PATH = "/status"
NOTFOUND_PATH = "/notfound"
SLOW_PATH = "/slow/"
"""`/slow/<ms>`: answered after that many milliseconds (requests held by a server)."""


def announce_ready(kind: str, name: str, port: int) -> None:
    print(f"ready {kind} {name} port {port}", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# -- web ---------------------------------------------------------------------------


def _web_handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as balancers expect of servers

        def version_string(self) -> str:
            return "pyxlb-lab"

        def _answer(self, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith(SLOW_PATH) and path[len(SLOW_PATH):].isdigit():
                time.sleep(int(path[len(SLOW_PATH):]) / 1000)
            if path == STATUS_PATH:
                status, body = HTTPStatus.OK, b"OK\n"
            elif path == NOTFOUND_PATH or path.startswith(NOTFOUND_PATH + "/"):
                status, body = HTTPStatus.NOT_FOUND, f"not found on {name}\n".encode()
            else:
                status, body = HTTPStatus.OK, f"served by {name}\n".encode()
            self.send_response(status)
            self.send_header("X-Server", name)
            # Who connected, as the server saw it: tells NAT from DSR, shows source hashing.
            host, port = self.client_address[:2]
            self.send_header("X-Client-Addr", host.removeprefix("::ffff:"))
            self.send_header("X-Client-Port", str(port))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def do_POST(self) -> None:  # noqa: N802
            # Drain the body so the next request on a kept-alive connection parses.
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(True)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a request line per hit would drown the lab's log

    return Handler


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, bind: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        super().__init__((bind, port), handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # "::" then serves v4 too (clients appear as ::ffff:a.b.c.d).
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def run_web(name: str, port: int, bind: str | None) -> None:
    server = _HTTPServer(bind or "::", port, _web_handler(name))
    announce_ready("web", name, port)
    server.serve_forever()


# -- ws ----------------------------------------------------------------------------


async def _run_ws(name: str, port: int, bind: str | None) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    async def echo(conn: ServerConnection) -> None:
        async for message in conn:
            await conn.send(message)

    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        # Plain HTTP health checks get an answer instead of a failed handshake.
        if request.path.split("?", 1)[0] == STATUS_PATH:
            return conn.respond(HTTPStatus.OK, "OK\n")
        return None

    def process_response(conn: ServerConnection, request: Request, response: Response) -> None:
        response.headers["X-Server"] = name

    # host=None: asyncio binds every family (0.0.0.0 and ::).
    async with serve(echo, bind, port, process_request=process_request,
                     process_response=process_response) as server:
        announce_ready("ws", name, port)
        await server.serve_forever()


def run_ws(name: str, port: int, bind: str | None) -> None:
    # Health checks that connect and hang up make websockets log handshake errors.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    asyncio.run(_run_ws(name, port, bind))


# -- tcp ---------------------------------------------------------------------------


async def _tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _run_tcp(name: str, port: int, bind: str | None) -> None:
    server = await asyncio.start_server(_tcp_echo, bind, port)
    async with server:
        announce_ready("tcp", name, port)
        await server.serve_forever()


def run_tcp(name: str, port: int, bind: str | None) -> None:
    asyncio.run(_run_tcp(name, port, bind))


# -- who ---------------------------------------------------------------------------

WHO_PORT = 7000


def who_line(name: str, peer: tuple[str, ...]) -> bytes:
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    return f"{name} {peer[0].removeprefix('::ffff:')}\n".encode()


class _WhoDatagrams(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(who_line(self.name, addr), addr)  # type: ignore[attr-defined]


async def _run_who(name: str, port: int, bind: str | None) -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(who_line(name, writer.get_extra_info("peername")))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(greet, bind, port)
    # "::" takes IPv4 too (dual stack).
    await loop.create_datagram_endpoint(lambda: _WhoDatagrams(name), (bind or "::", port))
    async with server:
        announce_ready("who", name, port)
        await server.serve_forever()


def run_who(name: str, port: int, bind: str | None) -> None:
    asyncio.run(_run_who(name, port, bind))


# -- entry -------------------------------------------------------------------------

KINDS = {"web": (run_web, WEB_PORT), "ws": (run_ws, WS_PORT), "tcp": (run_tcp, TCP_PORT),
         "who": (run_who, WHO_PORT)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pyxlb.lab.servers",
                                     description="Run one lab backend server.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--name", required=True, help="name sent in X-Server and bodies")
    parser.add_argument("--port", type=int,
                        help="default: 80 for web/ws, 9000 for tcp, 7000 for who")
    parser.add_argument("--bind", help="one address to listen on (default: all, v4 and v6)")
    args = parser.parse_args(argv)
    run, default_port = KINDS[args.kind]
    with contextlib.suppress(KeyboardInterrupt):
        run(args.name, args.port or default_port, args.bind)


if __name__ == "__main__":
    main()
