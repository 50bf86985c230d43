"""Concurrent HTTP requests for the lab's client namespace (run as a script by e2e
tests), each on its own connection, raw bytes in and out.

    python queue_client.py HOST PLAN

PLAN is JSON: a list of {"port", "path", "cookie"?, "after"?}. A request with
"after": [proxy, server, column, n] is sent once the stats CSV on port 8404 shows at
least n in that column (qcur, stot): it then arrives behind the earlier ones
whatever the timing. A step {"cli": COMMAND, "socket": PATH, "after"?} sends a
runtime API command instead (its answer stands in for a response). Prints
one JSON list: each response's bytes (latin-1), in plan order.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import sys
import threading
import time


def exchange(host: str, port: int, request: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=15) as s:
        s.sendall(request)
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = [line for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    return data
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        out, body = out + body[:n], body[n + 2:]
    return out


def stat(host: str, proxy: str, server: str, column: str) -> int:
    # HTTP/1.0: the end of the CSV is the end of the connection (haproxy chunks it).
    head, _, body = exchange(host, 8404, b"GET /haproxy?stats;csv HTTP/1.0\r\n\r\n").partition(
        b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    rows = csv.reader(io.StringIO(body.decode().removeprefix("# ")))
    header = next(rows)
    for row in rows:
        if row[:2] == [proxy, server]:
            return int(row[header.index(column)] or 0)
    raise SystemExit(f"no stats row {proxy}/{server}")


def command(path: str, line: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def main() -> None:
    host, plan = sys.argv[1], json.loads(sys.argv[2])
    answers: list[bytes] = [b""] * len(plan)
    threads = []
    for i, step in enumerate(plan):
        if "after" in step:
            proxy, server, column, count = step["after"]
            deadline = time.monotonic() + 10
            while stat(host, proxy, server, column) < count and time.monotonic() < deadline:
                time.sleep(0.01)
        if "cli" in step:
            answers[i] = command(step["socket"], step["cli"])
            continue
        cookie = f"Cookie: {step['cookie']}\r\n" if "cookie" in step else ""
        request = f"GET {step['path']} HTTP/1.1\r\nHost: lab\r\n{cookie}\r\n".encode()

        def run(i: int = i, port: int = step["port"], request: bytes = request) -> None:
            answers[i] = exchange(host, port, request)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    print(json.dumps([a.decode("latin-1") for a in answers]))


if __name__ == "__main__":
    main()
