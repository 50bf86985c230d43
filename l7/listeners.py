"""`maxconn` on frontends and in `global`: past the limit, a frontend stops
accepting and the kernel's backlog holds new connections until one ends, as in
HAProxy (listener.c: limit_listener, then resume_listener below the limit).

``ConnectionLimit`` is the pure count: a frontend's connections against its own
maxconn and the process's against the global one, saying when listeners must
pause or may resume. ``Listener`` is the thin part: an ``asyncio`` server that can
pause by closing its listening descriptors while a duplicate keeps each socket
(and its backlog) open, and resume by serving the duplicate again. uvloop and
asyncio have no way to pause an accepting server; this works for both.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class Pausable(Protocol):
    def pause(self) -> None: ...

    def resume(self) -> None: ...


class ProcessLimit:
    """`global maxconn`: the process's client connections, every frontend's."""

    __slots__ = ("maxconn", "count", "frontends")

    def __init__(self, maxconn: int) -> None:
        self.maxconn = maxconn
        self.count = 0
        self.frontends: list[ConnectionLimit] = []


class ConnectionLimit:
    """One frontend's connections against its maxconn (0: none) and the process's.

    ``opened``/``closed`` are called for every client connection; listeners pause
    only when a limit is reached and resume when the count drops below it again.
    """

    __slots__ = ("maxconn", "count", "process", "listeners", "paused")

    def __init__(self, maxconn: int, process: ProcessLimit | None = None) -> None:
        self.maxconn = maxconn
        self.count = 0
        self.process = process
        self.listeners: list[Pausable] = []
        self.paused = False
        if process is not None:
            process.frontends.append(self)

    def full(self) -> bool:
        process = self.process
        return ((0 < self.maxconn <= self.count)
                or (process is not None and process.count >= process.maxconn))

    def opened(self) -> None:
        self.count += 1
        process = self.process
        if process is not None:
            process.count += 1
            if process.count == process.maxconn:
                for fe in process.frontends:
                    fe._sync()
                return
        if self.count == self.maxconn:
            self._sync()

    def closed(self) -> None:
        self.count -= 1
        process = self.process
        if process is not None:
            process.count -= 1
            if process.count == process.maxconn - 1:
                for fe in process.frontends:
                    fe._sync()
                return
        if self.count == self.maxconn - 1:
            self._sync()

    def _sync(self) -> None:
        full = self.full()
        if full == self.paused:
            return
        self.paused = full
        for listener in self.listeners:
            if full:
                listener.pause()
            else:
                listener.resume()


Serve = Callable[[socket.socket], Awaitable[asyncio.AbstractServer]]
"""Serves one listening socket (``loop.create_server(..., sock=...)``)."""


class Listener(asyncio.AbstractServer):
    """The listeners of one ``bind`` (one socket per address), pausable.

    Stands for the ``asyncio`` server ``first`` it starts from in everything the
    proxy's callers use (``sockets``, ``close``, ``wait_closed``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, first: asyncio.AbstractServer,
                 serve: Serve) -> None:
        self._loop = loop
        self._serve = serve
        self._servers: list[asyncio.AbstractServer] = [first]
        # Our own descriptor of each listening socket keeps it, and its backlog,
        # while no server serves it.
        sockets: Any = first.sockets or ()
        self._sockets = [socket.socket(fileno=os.dup(s.fileno())) for s in sockets]
        self._serving = True
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving and not self._closed

    def pause(self) -> None:
        """Stop accepting; the kernel queues new connections meanwhile."""
        self._serving = False
        self._stop_serving()

    def resume(self) -> None:
        self._serving = True
        if self._task is None and not self._closed:
            self._task = self._loop.create_task(self._restart())

    def _stop_serving(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []

    async def _restart(self) -> None:
        try:
            while self._serving and not self._closed and not self._servers:
                servers = [await self._serve(socket.socket(fileno=os.dup(s.fileno())))
                           for s in self._sockets]
                self._servers = servers
                if not self._serving or self._closed:
                    self._stop_serving()  # paused again meanwhile
        finally:
            self._task = None

    def close(self) -> None:
        self._closed = True
        self._stop_serving()
        if self._task is not None:
            self._task.cancel()
        for s in self._sockets:
            s.close()

    async def wait_closed(self) -> None:
        return None

    async def start_serving(self) -> None:
        self.resume()

    async def serve_forever(self) -> None:
        raise NotImplementedError("pyxlb runs its listeners from the daemon's loop")
