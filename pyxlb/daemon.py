"""`pyxlb up`: one instance's lifetime, from loading the datapath to a clean
stop on SIGTERM/SIGINT.

The order matters: the config is read before anything touches the kernel,
the datapath is attached before listeners open, and whatever happens after
the attach, the finally-block takes the program off the interface again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence

from pyxlb.config import Config
from pyxlb.datapath import loader
from pyxlb.datapath.instance import Instance


class StartError(Exception):
    """`up` cannot start; the message says why and nothing was left behind."""


async def serve(config: Config, instance: Instance, state: dict) -> None:
    """Runs the layer-7 listeners until SIGTERM or SIGINT."""
    from pyxlb.l7.proxy import close_servers, start_frontend
    from pyxlb.l7.upstream import Upstreams
    from pyxlb.stats.counters import StatsRegistry

    stats = StatsRegistry.build(config.frontends, config.backends)
    # One Upstreams for all frontends: they share round-robin positions and pools.
    upstreams = Upstreams(config.backends, stats)
    servers = []
    try:
        for frontend in config.frontends.values():
            try:
                servers += await start_frontend(frontend, upstreams, stats)
            except OSError as exc:
                raise StartError(f"{frontend.where}: frontend {frontend.name}: "
                                 f"cannot listen: {exc.strerror}") from exc

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        instance.write_state({**state, "ready": True})
        print(f"pyxlb: serving on {instance.name} (XDP {state['xdp_mode']} mode)", flush=True)
        await stop.wait()
    finally:
        await close_servers(servers)


def refuse_unserved(config: Config) -> None:
    """Stops the start on what pyxlb cannot enforce yet; warns about the rest."""
    from pyxlb.unserved import unserved

    found = unserved(config)
    for item in found:
        if not item.fatal:
            print(f"pyxlb: [WARNING] {item}", file=sys.stderr)
    fatal = [str(item) for item in found if item.fatal]
    if fatal:
        raise StartError("this configuration needs what pyxlb does not serve yet:\n  "
                         + "\n  ".join(fatal))


def run_up(config: Config, iface: str, netns: str | None, xdp_mode: str,
           config_paths: Sequence[str]) -> None:
    """Blocks until stopped. Call after entering `netns` (if any)."""
    refuse_unserved(config)
    instance = Instance(iface, netns)
    if pid := instance.daemon_pid():
        raise StartError(f"instance {instance.name} is already served by pid {pid}"
                         " (stop it with `pyxlb down`)")
    try:
        mode = loader.load(instance, xdp_mode)
    except loader.DatapathError as exc:
        raise StartError(str(exc)) from exc
    try:
        state = {
            "pid": os.getpid(), "iface": iface, "netns": netns, "xdp_mode": mode,
            "config": [os.path.abspath(p) for p in config_paths],
            "started": time.time(), "ready": False,
        }
        instance.write_state(state)
        from pyxlb.l7.proxy import new_event_loop

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(config, instance, state))
    finally:
        loader.unload(instance)


def stop_instance(instance: Instance, timeout_s: float = 10.0) -> bool:
    """Asks the instance's daemon to stop and waits; then removes whatever it
    left (after a crash, the pins and the attached program). True if a
    daemon was running."""
    pid = instance.daemon_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while instance.daemon_pid() and time.monotonic() < deadline:
            time.sleep(0.05)
        if instance.daemon_pid():
            os.kill(pid, signal.SIGKILL)
    loader.unload(instance)
    return pid is not None
