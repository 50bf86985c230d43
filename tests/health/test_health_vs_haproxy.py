"""Differential test against HAProxy: for the same `option httpchk` lines, haproxy's
checks and `request_bytes` send the same bytes to a recording server.

Runs when `haproxy` is on PATH (HAProxy 2.6 is the reference), on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from pyxlb.config import parse_text
from pyxlb.health.httpcheck import request_bytes

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")

HTTPCHK_LINES = [
    "option httpchk",
    "option httpchk /health",
    "option httpchk GET /status?haproxy=1",
    "option httpchk HEAD /x HTTP/1.1",
    r"option httpchk GET /y HTTP/1.1\r\nHost:\ www.example.com",
    r"option httpchk POST /b HTTP/1.1\r\nContent-Type:\ text/plain\r\n\r\nhello",
    r"option httpchk GET /c HTTP/1.1\r\nConnection:\ keep-alive",
    "option httpchk GET /e HTTP/2",
    "option httpchk PUT /p",
    "option httpchk DELETE /p",
]


async def record(server: socket.socket, got: asyncio.Future[bytes]) -> None:
    loop = asyncio.get_running_loop()
    conn, _ = await loop.sock_accept(server)
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await loop.sock_recv(conn, 4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += await loop.sock_recv(conn, 4096)
        got.set_result(data)
        await loop.sock_sendall(conn, b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n")


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


def test_httpchk_bytes_match_haproxy() -> None:
    async def main() -> None:
        servers = [listener() for _ in HTTPCHK_LINES]
        front = listener()
        backends = "".join(
            f"backend b{i}\n    {line}\n"
            f"    server s 127.0.0.1:{srv.getsockname()[1]} check inter 100\n"
            for i, (line, srv) in enumerate(zip(HTTPCHK_LINES, servers, strict=True)))
        text = ("defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
                "    timeout server 5s\n"
                f"frontend f\n    bind 127.0.0.1:{front.getsockname()[1]}\n"
                f"    default_backend b0\n{backends}")
        front.close()  # haproxy binds it again
        loop = asyncio.get_running_loop()
        got = [loop.create_future() for _ in servers]
        recorders = [asyncio.create_task(record(s, f)) for s, f in zip(servers, got, strict=True)]
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp, "haproxy.cfg")
            cfg.write_text(text)
            proc = await asyncio.create_subprocess_exec(
                "haproxy", "-db", "-f", str(cfg), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            try:
                sent = await asyncio.wait_for(asyncio.gather(*got), 4)
            finally:
                proc.kill()
                await proc.wait()
                for task in recorders:
                    task.cancel()
                for server in servers:
                    server.close()
        config = parse_text(text)
        for i, line in enumerate(HTTPCHK_LINES):
            check = config.backends[f"b{i}"].httpchk
            assert check is not None
            assert (line, request_bytes(check)) == (line, sent[i])

    asyncio.run(main())
