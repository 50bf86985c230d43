"""Sends raw bytes to an HTTP listener and reports what came back (run as a script
in the lab's client namespace by e2e tests).

    python raw_http_client.py HOST PORT PAYLOAD_HEX [--slow SECONDS | --until-close | --fin]

Sends PAYLOAD and reads one response (framed by its Content-Length, else up to
the close). Then, to learn whether the connection stayed open, sends a good
request and reads again. Prints one JSON object: "first" and "second" (the
responses, latin-1), "closed" (no answer to the second request: the connection
ended), "seconds" (from the first byte sent to the end of the first response).

With --slow, PAYLOAD goes one byte at a time, SECONDS apart, while reading:
a request head that never ends (slowloris); "first" is what the listener
answered meanwhile.

With --until-close, "first" is everything the listener sent until it closed
the connection (several responses, say), and no second request is sent; --fin
does the same after closing the sending side right after PAYLOAD (half-close).
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

NEXT = b"GET /next HTTP/1.1\r\nHost: next\r\n\r\n"
WAIT_S = 8.0


def complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = [line for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-length:")]
    return bool(length) and len(body) >= int(length[0].split(b":")[1])


def read_response(s: socket.socket, data: bytes = b"") -> tuple[bytes, bool]:
    """(response, whether the peer ended the connection)."""
    s.settimeout(WAIT_S)
    while not complete(data):
        try:
            got = s.recv(65536)
        except (ConnectionError, TimeoutError):
            return data, True
        if not got:
            return data, True
        data += got
    return data, False


def slow_send(s: socket.socket, payload: bytes, gap: float) -> bytes:
    """Sends ``payload`` byte by byte until the peer answers or closes."""
    data = b""
    deadline = time.monotonic() + WAIT_S
    for byte in payload:
        if time.monotonic() > deadline:
            break
        try:
            s.sendall(bytes([byte]))
        except ConnectionError:
            break
        readable, _, _ = select.select([s], [], [], gap)
        if readable:
            try:
                got = s.recv(65536)
            except ConnectionError:
                break
            if not got:
                break
            data += got
            if complete(data):
                break
    return data


def read_until_close(s: socket.socket) -> tuple[bytes, bool]:
    """(everything received, whether the peer ended the connection)."""
    s.settimeout(WAIT_S)
    data = b""
    while True:
        try:
            got = s.recv(65536)
        except ConnectionError:
            return data, True
        except TimeoutError:
            return data, False
        if not got:
            return data, True
        data += got


def main(host: str, port: int, payload: bytes, slow: float | None,
         until_close: bool = False, fin: bool = False) -> dict[str, object]:
    with socket.create_connection((host, port), timeout=WAIT_S) as s:
        start = time.monotonic()
        if until_close or fin:
            s.sendall(payload)
            if fin:
                s.shutdown(socket.SHUT_WR)
            first, ended = read_until_close(s)
            return {"first": first.decode("latin-1"), "second": "", "closed": ended,
                    "seconds": time.monotonic() - start}
        if slow is None:
            s.sendall(payload)
            first, ended = read_response(s)
        else:
            first, ended = read_response(s, slow_send(s, payload, slow))
        seconds = time.monotonic() - start
        second = b""
        if not ended:
            try:
                s.sendall(NEXT)
                second, ended = read_response(s)
            except ConnectionError:
                ended = True
        return {"first": first.decode("latin-1"), "second": second.decode("latin-1"),
                "closed": ended and not second, "seconds": seconds}


if __name__ == "__main__":
    slow = float(sys.argv[5]) if sys.argv[4:5] == ["--slow"] else None
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), slow,
                          sys.argv[4:5] == ["--until-close"], sys.argv[4:5] == ["--fin"])))
