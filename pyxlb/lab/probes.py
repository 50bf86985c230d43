"""Client-side probes: an HTTP request, a WebSocket echo, a TCP echo, made from inside a
lab namespace and reported back as data.

`http_get`, `ws_echo` and `tcp_echo` run `python -m pyxlb.lab.probes ...` in the
namespace of a role (usually "client"), optionally from a chosen source address, and
parse the JSON line it prints. A failure to connect is a result (`error` set), not an
exception, so tests can assert that a blocked client is refused as easily as that an
allowed one gets through.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pyxlb.lab.lab import Lab, LabError

TIMEOUT = 5.0


@dataclass
class HttpReply:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: str = ""
    error: str | None = None


@dataclass
class WsReply:
    reply: str | None = None  # the first message back
    headers: dict[str, str] = field(default_factory=dict)  # handshake response, lower-cased
    error: str | None = None


@dataclass
class TcpReply:
    data: bytes | None = None  # everything read until the peer closed
    error: str | None = None


# -- caller side -------------------------------------------------------------------


def _probe(lab: Lab, role: str, args: list[str], source: str | None, timeout: float,
           stdin: bytes = b"") -> list[dict[str, Any]]:
    argv = [lab.python, "-m", "pyxlb.lab.probes", *args, "--timeout", str(timeout)]
    if source:
        argv += ["--source", source]
    res = lab.run(role, argv, check=False, timeout=timeout * 4 + 10, env=lab.env,
                  input=stdin, text=False)
    if res.returncode:
        raise LabError(f"probe {' '.join(args)} in {role} failed: "
                           f"{res.stderr.decode(errors='replace').strip()}")
    return [json.loads(line) for line in res.stdout.splitlines()]


def http_gets(lab: Lab, role: str, url: str, count: int, source: str | None = None,
              method: str = "GET", timeout: float = TIMEOUT) -> list[HttpReply]:
    """`count` requests to `url` from `role`'s namespace, each on a new connection."""
    args = ["http", url, "--count", str(count), "--method", method]
    return [HttpReply(**r) for r in _probe(lab, role, args, source, timeout)]


def http_get(lab: Lab, role: str, url: str, source: str | None = None,
             method: str = "GET", timeout: float = TIMEOUT) -> HttpReply:
    return http_gets(lab, role, url, 1, source, method, timeout)[0]


def ws_echo(lab: Lab, role: str, url: str, message: str, source: str | None = None,
            timeout: float = TIMEOUT) -> WsReply:
    """Open a WebSocket to `url`, send `message`, return the first message back."""
    return WsReply(**_probe(lab, role, ["ws", url, message], source, timeout)[0])


def tcp_echo(lab: Lab, role: str, host: str, port: int, data: bytes,
             source: str | None = None, timeout: float = TIMEOUT) -> TcpReply:
    """Connect, send `data`, half-close, return everything read until the peer closes."""
    r = _probe(lab, role, ["tcp", host, str(port)], source, timeout, stdin=data)[0]
    # Bytes cross the JSON line as latin-1 text: one character per byte.
    return TcpReply(r["data"].encode("latin-1") if "data" in r else None, r.get("error"))


# -- inside the namespace ------------------------------------------------------------


def _src(source: str | None) -> tuple[str, int] | None:
    return (source, 0) if source else None


def probe_http(url: str, method: str, source: str | None, timeout: float) -> dict[str, Any]:
    import http.client

    parts = urlsplit(url)
    # Port passed explicitly: http.client would read the tail of a bare IPv6 as a port.
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80,
                                      timeout=timeout, source_address=_src(source))
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return {"status": resp.status, "headers": headers, "body": body}
    except (OSError, http.client.HTTPException) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()


def probe_ws(url: str, message: str, source: str | None, timeout: float) -> dict[str, Any]:
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=timeout, close_timeout=timeout,
                     source_address=_src(source)) as ws:
            ws.send(message)
            reply = ws.recv(timeout)
            assert ws.response is not None
            headers = {k.lower(): v for k, v in ws.response.headers.raw_items()}
        return {"reply": reply, "headers": headers}
    except (OSError, TimeoutError, WebSocketException) as e:
        return {"error": f"{type(e).__name__}: {e}"}


def probe_tcp(host: str, port: int, data: bytes, source: str | None,
              timeout: float) -> dict[str, Any]:
    try:
        with socket.create_connection((host, port), timeout, _src(source)) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return {"data": b"".join(chunks).decode("latin-1")}
    except OSError as e:
        return {"error": f"{type(e).__name__}: {e}"}


def main(argv: list[str] | None = None) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--source", help="local address to connect from")
    common.add_argument("--timeout", type=float, default=TIMEOUT)
    parser = argparse.ArgumentParser(prog="python -m pyxlb.lab.probes",
                                     description="One client probe; prints JSON lines.")
    sub = parser.add_subparsers(dest="kind", required=True)
    http = sub.add_parser("http", parents=[common])
    http.add_argument("url")
    http.add_argument("--count", type=int, default=1)
    http.add_argument("--method", default="GET")
    ws = sub.add_parser("ws", parents=[common])
    ws.add_argument("url")
    ws.add_argument("message")
    tcp = sub.add_parser("tcp", parents=[common])
    tcp.add_argument("host")
    tcp.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.kind == "http":
        results = [probe_http(args.url, args.method, args.source, args.timeout)
                   for _ in range(args.count)]
    elif args.kind == "ws":
        results = [probe_ws(args.url, args.message, args.source, args.timeout)]
    else:
        data = sys.stdin.buffer.read()  # bytes to send: stdin, as argv cannot hold NULs
        results = [probe_tcp(args.host, args.port, data, args.source, args.timeout)]
    for r in results:
        sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
