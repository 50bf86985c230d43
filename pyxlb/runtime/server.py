"""The `stats socket`: a unix stream socket that serves `CliSession`s.

`RuntimeSocket.start()` replaces a stale socket file, listens and applies the
configured mode; `close()` stops listening, ends the open sessions (their tasks
are owned here and awaited) and removes the file. A session idle for longer than
`timeout stats` (or its own `set timeout cli`) is closed, as HAProxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat

from pyxlb.runtime.commands import LEVELS, CliSession, Runtime

_READ_SIZE = 65536


class RuntimeSocket:
    def __init__(self, path: str, runtime: Runtime, level: str = "operator",
                 mode: int | None = None, timeout_s: float = 10.0) -> None:
        self.path = path
        self.runtime = runtime
        self.level = LEVELS.index(level)
        self.mode = mode
        self.timeout_s = timeout_s
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Raises OSError when the path cannot be bound."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._accepted, path=self.path)
        if self.mode is not None:
            os.chmod(self.path, self.mode)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        for task in self._sessions:
            task.cancel()
        if self._sessions:
            await asyncio.wait(self._sessions)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._session(reader, writer),
                                                      name="stats socket session")
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        session = CliSession(self.runtime, self.level)
        try:
            while not session.closed:
                try:
                    async with asyncio.timeout(session.timeout_s or self.timeout_s):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    break
                await self.runtime.refresh()
                reply = session.feed(data) if data else session.eof()
                if reply:
                    writer.write(reply)
                    await writer.drain()
                if not data:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
