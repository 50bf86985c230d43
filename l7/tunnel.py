"""What a client connection becomes after a server's 101 Switching Protocols: a
byte tunnel both ways (WebSocket, or any other upgraded protocol), as HAProxy
relays it.

The two transports change protocols: each end gets a ``_End`` that writes what it
reads to the other end. Back-pressure is per direction: when one end's write
buffer fills, the other end stops reading until it drains, so a slow reader never
makes the tunnel buffer more than the transports' high-water marks. One
``IdleTimer`` watches both directions: traffic either way keeps the tunnel alive
(HAProxy's ``timeout tunnel``: inactivity in both directions). A half-close is
passed on; the tunnel ends when both sides have closed, or one is lost. Each end
counts the bytes it read (one integer add per read): the logs and stats count
tunnelled bytes, as HAProxy does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pyxlb.l7.timers import IdleTimer


def tunnel_timeout(
    tunnel: float | None, client: float | None, server: float | None
) -> float | None:
    """The tunnel's inactivity timeout in seconds: ``timeout tunnel``, else the
    shorter of ``timeout client`` and ``timeout server`` (None: no timeout)."""
    if tunnel is not None:
        return tunnel
    set_ = [t for t in (client, server) if t is not None]
    return min(set_) if set_ else None


class _End(asyncio.Protocol):
    """One end of a tunnel: its transport, the end it relays to, and the bytes it
    read (``count``)."""

    __slots__ = ("tunnel", "transport", "peer", "eof", "count")

    def __init__(self, tunnel: Tunnel, transport: asyncio.Transport) -> None:
        self.tunnel = tunnel
        self.transport = transport
        self.peer: _End = self
        self.eof = False
        self.count = 0

    def data_received(self, data: bytes) -> None:
        self.count += len(data)
        self.peer.transport.write(data)
        timer = self.tunnel.timer
        if timer is not None:
            timer.touch()

    def eof_received(self) -> bool | None:
        return self.tunnel.eof(self)

    def pause_writing(self) -> None:
        # This end's send buffer is full: stop taking what would go into it.
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.lost(exc)


class Tunnel:
    """Relays bytes between a client and a server transport until either ends.

    ``client_full`` and ``server_full`` say whether each transport's write buffer is
    above its high-water mark right now (the HTTP protocols that handed the
    transports over knew it); the other side's reading starts paused then.
    ``on_close(exc)`` runs once, when the tunnel is over.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: asyncio.Transport,
        server: asyncio.Transport,
        timeout: float | None,
        on_close: Callable[[Exception | None], None],
        client_full: bool = False,
        server_full: bool = False,
    ) -> None:
        self.client = _End(self, client)
        self.server = _End(self, server)
        self.client.peer = self.server
        self.server.peer = self.client
        self.done = False
        self._on_close = on_close
        self.timer = None if timeout is None else IdleTimer(loop, timeout, self._on_idle)
        client.set_protocol(self.client)
        server.set_protocol(self.server)
        # Reading each side resumes unless the other side cannot take more yet.
        for end, full in ((self.server, client_full), (self.client, server_full)):
            if full:
                end.transport.pause_reading()
            else:
                end.transport.resume_reading()

    def send(self, to_client: bytes, to_server: bytes) -> None:
        """Bytes that arrived with the handshake, each due to the other side."""
        if to_client:
            self.server.count += len(to_client)
            self.client.transport.write(to_client)
        if to_server:
            self.client.count += len(to_server)
            self.server.transport.write(to_server)

    def eof(self, end: _End) -> bool:
        """``end`` will send no more: tell its peer, and keep reading the peer's side."""
        end.eof = True
        peer = end.peer
        if peer.eof or not peer.transport.can_write_eof():
            self.close()
            return False
        peer.transport.write_eof()
        return True

    def close(self) -> None:
        """End the tunnel; what each side was sent still goes out."""
        self.client.transport.close()
        self.server.transport.close()

    def lost(self, exc: Exception | None) -> None:
        """One side is gone (or the proxy stops): the tunnel is over."""
        self.close()
        if not self.done:
            self.done = True
            if self.timer is not None:
                self.timer.cancel()
            self._on_close(exc)

    def _on_idle(self) -> bool:
        # Neither side has sent anything for the whole timeout.
        self.close()
        return False
