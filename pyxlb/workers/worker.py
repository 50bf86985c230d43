"""A layer-7 worker: `python -m pyxlb.workers.worker FD`, started by the
daemon (pyxlb.workers.pool) with its end of a socket pair as FD.

It serves the config's layer-7 frontends on the same ports as the daemon and
the other workers (SO_REUSEPORT: the kernel spreads new connections), counts
and reads stick tables in the instance's kernel maps like the daemon, takes
server states from the daemon and sends it what `observe` needs. Its own
balancing positions and connection pools are its own, as HAProxy's threads'
pools are."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
from typing import Any

from pyxlb.workers import messages as m
from pyxlb.workers.channel import Channel, ChannelClosed


class Worker:
    def __init__(self, channel: Channel, start: m.Start) -> None:
        self.channel = channel
        self.start = start
        self.servers: list[asyncio.AbstractServer] = []
        self.upstreams: Any = None
        self.stats: Any = None
        self.sender: Any = None
        self._ids = itertools.count(1)
        self._collecting: dict[int, asyncio.Future[list[int]]] = {}

    async def serve(self) -> None:
        """Listens, says Ready, then follows the daemon's messages until Stop
        or until the daemon is gone."""
        try:
            await self._listen()
        except Exception as exc:  # noqa: BLE001 - the daemon reports it
            self.channel.send(m.Failed(_describe(exc)))
            await self.channel.drain()
            return
        self.channel.send(m.Ready(os.getpid()))
        try:
            while True:
                if not self._follow(await self.channel.receive()):
                    break
        except ChannelClosed:
            pass
        finally:
            await self._close()

    async def _listen(self) -> None:
        from pyxlb.daemon import log_targets, rules_for
        from pyxlb.datapath.instance import Instance
        from pyxlb.l7.listeners import ProcessLimit
        from pyxlb.l7.proxy import start_frontend
        from pyxlb.l7.upstream import Upstreams
        from pyxlb.log.sender import LogSender
        from pyxlb.stats.counters import StatsRegistry

        config = self.start.config
        instance = Instance(self.start.iface, self.start.netns)
        self.stats = StatsRegistry.build(config.frontends, config.backends)
        self.stats.collect = self._collect_totals
        self.stats.control = lambda backend, server, state: self.channel.send(
            m.Control(backend, server, state))
        self.sender = LogSender()
        await self.sender.prepare(log_targets(config))
        self.upstreams = Upstreams(config.backends, self.stats, observer=self._observed)
        limit = process_share(config.global_.maxconn, self.start.count)
        process_limit = ProcessLimit(limit) if limit else None
        for frontend in config.frontends.values():
            if frontend.tier == "kernel":
                continue
            self.servers += await start_frontend(frontend, self.upstreams, self.stats,
                                                 rules_for(frontend, config, instance),
                                                 self.sender, process_limit)

    def _observed(self, backend: str, server: str, outcome: Any) -> None:
        self.channel.send(m.Observed(backend, server, outcome))

    async def _collect_totals(self) -> Any:
        """Every process's counters added up, by way of the daemon."""
        from pyxlb.stats.totals import with_values

        collect_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._collecting[collect_id] = future
        self.channel.send(m.Collect(collect_id))
        try:
            values = await future
        finally:
            del self._collecting[collect_id]
        return with_values(self.stats, values)

    def _follow(self, message: Any) -> bool:
        """Acts on one message from the daemon; False on Stop."""
        from pyxlb.stats.totals import counter_values

        if isinstance(message, m.ServerState):
            self.upstreams.set_server_state(message.backend, message.server, message.up,
                                            message.status, message.check)
        elif isinstance(message, m.ServerStatus):
            self.upstreams.set_server_status(message.backend, message.server, message.text,
                                             message.check)
        elif isinstance(message, m.Weight):
            try:
                self.upstreams.set_weight(message.backend, message.server, message.weight)
            except ValueError as exc:  # the daemon took it: cannot differ here
                print(f"pyxlb: [WARNING] worker {self.start.index}: {exc}", file=sys.stderr)
        elif isinstance(message, m.Report):
            self.channel.send(m.Counters(message.id, counter_values(self.stats)))
        elif isinstance(message, m.Collected):
            future = self._collecting.get(message.id)
            if future is not None and not future.done():
                future.set_result(message.values)
        elif isinstance(message, m.Stop):
            return False
        return True

    async def _close(self) -> None:
        from pyxlb.l7.proxy import close_servers

        await close_servers(self.servers)
        if self.sender is not None:
            self.sender.close()


def process_share(maxconn: int | None, processes: int) -> int | None:
    """A process's part of `global maxconn`, which HAProxy counts for the whole
    process (all threads): split evenly, at least 1."""
    if not maxconn:
        return None
    return max(1, -(-maxconn // processes))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return f"layer-7 worker: {text}"


async def _main(fd: int) -> None:
    channel = await Channel.open(socket.socket(fileno=fd))
    start = await channel.receive()
    if not isinstance(start, m.Start):
        raise SystemExit(f"pyxlb worker: expected Start, got {type(start).__name__}")
    serving = asyncio.get_running_loop().create_task(Worker(channel, start).serve())
    # SIGTERM (the daemon gone without a word, `kill`): close and finish.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving


def main(argv: list[str] | None = None) -> None:
    from pyxlb.l7.proxy import new_event_loop

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        raise SystemExit("usage: python -m pyxlb.workers.worker FD (started by pyxlb up)")
    # Ctrl-C reaches the whole process group: the daemon stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_main(int(args[0])))


if __name__ == "__main__":
    main()
