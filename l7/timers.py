"""Inactivity timeouts (``timeout client``, ``timeout server``) without a timer per
event.

A connection owns one ``IdleTimer``. Activity only stores the time (``touch``);
when the armed handle fires early because of later activity, it re-arms itself
for the remaining time. So a busy connection costs one attribute store per read
and one re-arm per timeout period, not a new TimerHandle per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class IdleTimer:
    """Calls ``on_idle()`` once ``timeout`` seconds pass without ``touch()``.

    ``on_idle`` returns True when inactivity is fine in the connection's current
    state (for example while the other side is the one expected to talk); the
    timer then watches a new period. It returns False once it has acted.
    """

    __slots__ = ("_loop", "_timeout", "_on_idle", "_handle", "last")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float, on_idle: Callable[[], bool]
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._on_idle = on_idle
        self.last = loop.time()
        self._handle: asyncio.TimerHandle | None = loop.call_at(self.last + timeout, self._fire)

    def touch(self) -> None:
        self.last = self._loop.time()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        now = self._loop.time()
        due = self.last + self._timeout
        if now < due:
            self._handle = self._loop.call_at(due, self._fire)
            return
        self._handle = None
        if self._on_idle():
            self.last = now
            self._handle = self._loop.call_at(now + self._timeout, self._fire)
