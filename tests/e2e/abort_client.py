"""A client for e2e tests that leaves exchanges half-way (run as a script in the
lab's client namespace).

    python abort_client.py HOST PORT MODE PATH

MODE ``whole``: GET PATH and read until the balancer closes (or the response is
complete); prints the response's status line. ``leave-response``: GET PATH, read
the response head and some of its body, then close. ``leave-request``: POST to
PATH announcing a large body, wait for the server's interim 100 (its head reached
the server), send part of the body, then close. ``leave-head``: GET PATH, wait
for the server's interim 100, then close. ``stop-reading``: GET PATH with a
small receive buffer, read the response head, then read nothing for STALL_S
(the balancer's `timeout client` is shorter) and close. The leaving modes print
the status line they read.
"""

from __future__ import annotations

import socket
import sys
import time

WAIT_S = 10.0
STALL_S = 3.0


def read_until(s: socket.socket, done: bytes, at_least: int = 0) -> bytes:
    data = b""
    while True:
        end = data.find(done)
        if end >= 0 and len(data) >= end + len(done) + at_least:
            return data
        try:
            got = s.recv(65536)
        except ConnectionError:
            return data
        if not got:
            return data
        data += got


def main(host: str, port: int, mode: str, path: str) -> None:
    s = socket.socket()
    if mode == "stop-reading":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT_S)
    s.connect((host, port))
    target = path.encode("ascii")
    if mode == "leave-request":
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" % target)
        got = read_until(s, b"\r\n\r\n")
        s.sendall(b"z" * 1000)
    else:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target)
        at_least = {"leave-response": 1, "leave-head": 0, "stop-reading": 0}.get(mode, 1 << 40)
        got = read_until(s, b"\r\n\r\n", at_least)
        if mode == "stop-reading":
            time.sleep(STALL_S)
    s.close()
    print(got.split(b"\r\n", 1)[0].decode("latin-1"))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
