"""A backend for e2e tests that misbehaves on purpose, by request path (run as a
script in a server namespace).

    python misbehaving_backend.py PORT

Reads each request head, then:

- ``/close``: closes without answering;
- ``/hang``: never answers (until the peer closes);
- ``/junk``: answers bytes that are not HTTP;
- ``/cut``: announces a body of 100000 bytes, sends 1000, then closes;
- ``/stall``: the same, but then sends nothing more (until the peer closes);
- ``/big``: sends a 1 GB body, as fast as the peer reads it;
- ``/wait``: sends an interim ``100 Continue`` (the client's cue that its
  request reached the server), then reads the body without answering;
- anything else: a 200 with a short body.

Prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import sys

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
JUNK = b"HELLO THERE\r\nthis is no http\r\n\r\n"
CUT = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
BIG_SIZE = 1 << 30
BIG = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG_SIZE
BLOCK = b"y" * 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        if path == b"/close":
            pass
        elif path in (b"/hang", b"/wait"):
            if path == b"/wait":
                writer.write(CONTINUE)
            while await reader.read(65536):
                pass
        elif path == b"/junk":
            writer.write(JUNK)
            await writer.drain()
        elif path in (b"/cut", b"/stall"):
            writer.write(CUT)
            await writer.drain()
            if path == b"/stall":
                while await reader.read(65536):
                    pass
        elif path == b"/big":
            writer.write(BIG)
            for _ in range(BIG_SIZE // len(BLOCK)):
                writer.write(BLOCK)
                await writer.drain()
        else:
            writer.write(OK)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "0.0.0.0", port)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
