"""Messages between the daemon and a worker: Python objects, pickled, each
after its length, over a Unix stream socket pair the daemon made (pickle is
safe here: both ends are the same program, no one else holds the socket)."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 64 << 20  # a message longer than this is a broken peer


class ChannelClosed(Exception):
    """The other end is gone."""


class Channel:
    """One end of a daemon-worker pair, on the running event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    def send(self, message: Any) -> None:
        """Queues `message`; a closed channel drops it (the peer is gone)."""
        if self._writer.is_closing():
            return
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(body)) + body)

    async def receive(self) -> Any:
        """The next message; ChannelClosed at the end."""
        try:
            head = await self._reader.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(head)
            if length > MAX_MESSAGE:
                raise ChannelClosed(f"a message of {length} bytes")
            return pickle.loads(await self._reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise ChannelClosed(str(exc)) from exc

    def close(self) -> None:
        self._writer.close()
