"""Removing an instance's pins and state while another process removes them
too (`pyxlb down` and the stopping daemon do exactly that)."""

from __future__ import annotations

import os
import threading

from pyxlb.datapath import loader
from pyxlb.datapath.instance import Instance


def test_two_concurrent_unloads_both_succeed_and_leave_nothing():
    instance = Instance(f"pxunl{os.getpid()}")
    failures: list[BaseException] = []

    def unload() -> None:
        try:
            loader.unload(instance)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    for attempt in range(20):
        instance.run_dir.mkdir(parents=True)
        for n in range(300):
            (instance.run_dir / f"state{n}").write_text("x")
        racers = [threading.Thread(target=unload) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert failures == [], f"attempt {attempt}"
        assert not instance.run_dir.exists()
