"""A connection flood from one source address, paced to a rate.

    python flood.py SOURCE HOST PORT --seconds S --rate N [--timeout T]

Each attempt binds SOURCE, connects without blocking, and is reset (SO_LINGER 0,
so no TIME_WAIT uses up ports) as soon as it is established or refused, or after
`timeout` without an answer (a dropped SYN). Prints one JSON line of counts.
Standard library only: it runs in the lab's client namespace as a plain script.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import selectors
import socket
import struct
import time

_LINGER_RESET = struct.pack("ii", 1, 0)


def flood(source: str, host: str, port: int, seconds: float, rate: float,
          timeout: float, max_open: int = 4096) -> dict[str, float]:
    sel = selectors.DefaultSelector()
    pending: collections.deque[tuple[float, socket.socket]] = collections.deque()
    counts = {"attempts": 0, "established": 0, "refused": 0, "timed_out": 0}
    start = time.monotonic()
    end = start + seconds

    def close(sock: socket.socket) -> None:
        if sock.fileno() >= 0:
            sel.unregister(sock)
            sock.close()

    while (now := time.monotonic()) < end:
        due = int((now - start) * rate) - counts["attempts"]
        for _ in range(min(due, max_open - len(sel.get_map()))):
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            sock.bind((source, 0))
            err = sock.connect_ex((host, port))
            counts["attempts"] += 1
            if err not in (0, errno.EINPROGRESS):
                counts["refused"] += 1
                sock.close()
                continue
            sel.register(sock, selectors.EVENT_WRITE)
            pending.append((now + timeout, sock))
        for key, _ in sel.select(0.001):
            sock = key.fileobj  # type: ignore[assignment]
            ok = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            counts["established" if ok else "refused"] += 1
            close(sock)
        while pending and (pending[0][0] <= now or pending[0][1].fileno() < 0):
            _, sock = pending.popleft()
            if sock.fileno() >= 0:
                counts["timed_out"] += 1
                close(sock)
    for _, sock in pending:
        if sock.fileno() >= 0:
            counts["timed_out"] += 1
            close(sock)
    return {**counts, "seconds": time.monotonic() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True, help="attempts per second")
    parser.add_argument("--timeout", type=float, default=0.25,
                        help="seconds to wait for an answer to a SYN")
    args = parser.parse_args()
    print(json.dumps(flood(args.source, args.host, args.port, args.seconds, args.rate,
                           args.timeout)), flush=True)


if __name__ == "__main__":
    main()
