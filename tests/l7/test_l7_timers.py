"""IdleTimer fires after inactivity only, re-arming lazily."""

from __future__ import annotations

import asyncio

from pyxlb.l7.timers import IdleTimer


def test_touch_postpones_and_true_keeps_watching() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        fired: list[float] = []

        def on_idle() -> bool:
            fired.append(loop.time() - start)
            return len(fired) < 2

        timer = IdleTimer(loop, 0.05, on_idle)
        await asyncio.sleep(0.03)
        timer.touch()  # activity at 0.03: nothing before 0.08
        await asyncio.sleep(0.2)
        timer.cancel()
        return fired

    fired = asyncio.run(scenario())
    assert len(fired) == 2
    assert 0.075 <= fired[0] < 0.12
    assert fired[1] - fired[0] >= 0.045


def test_cancel_stops_it() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        fired = []
        timer = IdleTimer(loop, 0.01, lambda: fired.append(1) or False)
        timer.cancel()
        await asyncio.sleep(0.05)
        return bool(fired)

    assert not asyncio.run(scenario())
