"""A backend for e2e tests that records what a balancer forwards (run as a script
in a server namespace).

    python recording_backend.py PORT RECORD

Answers each complete request with a fixed 200 and appends one JSON line per
event to RECORD: {"conn": N, "event": "open" | "request" | "raw" | "close", ...}.
A "request" has its "head" and "body" (latin-1) as framed by Content-Length or
chunked transfer coding, the body with its chunk framing as received; what
cannot be framed (a bad length, a bad chunk size) is recorded as it came, as
"raw" with "data", and the connection is then only recorded, never answered.
Prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from typing import IO

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Unframeable(Exception):
    """The bytes do not frame as an HTTP/1.1 request."""


def frame(buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(head, body, rest) of the first request in ``buf``; None while incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head, rest = buf[:end + 4], buf[end + 4:]
    chunked, length = False, 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"content-length":
            if not value.isdigit():
                raise Unframeable
            length = int(value)
    if chunked:
        at = 0
        while True:
            eol = rest.find(b"\r\n", at)
            if eol < 0:
                return None
            try:
                size = int(rest[at:eol].split(b";")[0], 16)
            except ValueError:
                raise Unframeable from None
            if size == 0:
                # The last chunk's line ends where its trailer section begins.
                trailers = rest.find(b"\r\n\r\n", eol)
                if trailers < 0:
                    return None
                return head, rest[:trailers + 4], rest[trailers + 4:]
            at = eol + 2 + size + 2
            if len(rest) < at:
                return None
    if len(rest) < length:
        return None
    return head, rest[:length], rest[length:]


def main(port: int, record: IO[str]) -> None:
    ids = itertools.count()

    def note(**event: object) -> None:
        record.write(json.dumps(event) + "\n")
        record.flush()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(ids)
        note(conn=conn, event="open")
        buf, framing = b"", True
        try:
            while data := await reader.read(65536):
                if not framing:
                    note(conn=conn, event="raw", data=data.decode("latin-1"))
                    continue
                buf += data
                while framing:
                    try:
                        request = frame(buf)
                    except Unframeable:
                        note(conn=conn, event="raw", data=buf.decode("latin-1"))
                        framing = False
                        break
                    if request is None:
                        break
                    head, body, buf = request
                    note(conn=conn, event="request", head=head.decode("latin-1"),
                         body=body.decode("latin-1"))
                    writer.write(ANSWER)
        except ConnectionError:
            pass
        if framing and buf:
            note(conn=conn, event="raw", data=buf.decode("latin-1"))
        note(conn=conn, event="close")
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(serve, "0.0.0.0", port)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    with open(sys.argv[2], "a") as out:
        main(int(sys.argv[1]), out)
