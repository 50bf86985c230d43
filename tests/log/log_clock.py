"""HAProxy's log dates back to epoch seconds, for tests that replay its lines."""

from __future__ import annotations

import calendar
import time


def at(stamp: str) -> float:
    """`24/Nov/2026:06:09:47.421` as epoch seconds (UTC)."""
    whole, ms = stamp.split(".")
    return calendar.timegm(time.strptime(whole, "%d/%b/%Y:%H:%M:%S")) + int(ms) / 1000
