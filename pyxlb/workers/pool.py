"""The daemon's side of its layer-7 workers: starts them (each a fresh
`python -m pyxlb.workers.worker`, handed the parsed config), tells them every
server change, takes what they observe, adds their counters up when anyone
shows stats, restarts one that dies, and stops them."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pyxlb.workers import messages as m
from pyxlb.workers.channel import Channel, ChannelClosed

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
COLLECT_TIMEOUT_S = 2.0  # a worker that does not answer in time is left out


class WorkerError(Exception):
    """A worker could not start; the message says why."""


class _Worker:
    def __init__(self, index: int, process: subprocess.Popen[bytes], channel: Channel) -> None:
        self.index = index
        self.process = process
        self.channel = channel
        self.reader: asyncio.Task[None] | None = None


class WorkerPool:
    """Workers 1..count-1 (the daemon serves as worker 0).

    `snapshot()` gives the messages that bring a new worker up to date with
    server states; `observed` takes their `observe` outcomes; `own_counters()`
    is the daemon's own counters, to which `collect()` adds theirs with
    `combine(total, values)` (pyxlb.stats.totals.Combiner); `control` applies
    their `stats admin` forms."""

    def __init__(self, count: int, start: Callable[[int], m.Start],
                 snapshot: Callable[[], list[Any]], observed: Callable[[m.Observed], None],
                 own_counters: Callable[[], list[int]],
                 combine: Callable[[list[int], list[int]], None],
                 control: Callable[[str, str, str], None]) -> None:
        self.count = count
        self._start = start
        self._snapshot = snapshot
        self._observed = observed
        self._own_counters = own_counters
        self._combine = combine
        self._control = control
        self._workers: dict[int, _Worker] = {}
        self._ids = itertools.count(1)
        self._reports: dict[int, tuple[list[int], set[int], asyncio.Future[None]]] = {}
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()  # restarts, collect answers

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values()]

    async def start(self) -> None:
        """Starts every worker; WorkerError (the others stopped) if one cannot."""
        try:
            for index in range(1, self.count):
                await self._spawn(index)
        except BaseException:
            await self.stop()
            raise

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "pyxlb.workers.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        channel = await Channel.open(ours)
        worker = _Worker(index, process, channel)
        try:
            channel.send(self._start(index))
            reply = await asyncio.wait_for(channel.receive(), START_TIMEOUT_S)
        except (ChannelClosed, TimeoutError) as exc:
            process.kill()
            await asyncio.to_thread(process.wait)
            raise WorkerError(f"layer-7 worker {index} did not start: "
                              f"{exc or 'no answer'}") from exc
        if isinstance(reply, m.Failed):
            await asyncio.to_thread(process.wait)
            raise WorkerError(reply.message)
        for message in self._snapshot():
            channel.send(message)
        self._workers[index] = worker
        worker.reader = asyncio.get_running_loop().create_task(
            self._read(worker), name=f"layer-7 worker {index}")

    def broadcast(self, message: Any) -> None:
        for worker in self._workers.values():
            worker.channel.send(message)

    async def collect(self) -> list[int]:
        """Every process's counters added up: the daemon's and each worker's."""
        total = list(self._own_counters())
        if not self._workers:
            return total
        report_id = next(self._ids)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = set(self._workers)
        self._reports[report_id] = (total, waiting, done)
        self.broadcast(m.Report(report_id))
        try:
            await asyncio.wait_for(asyncio.shield(done), COLLECT_TIMEOUT_S)
        except TimeoutError:
            pass
        finally:
            del self._reports[report_id]
        return total

    def _counted(self, worker: _Worker, message: m.Counters) -> None:
        report = self._reports.get(message.id)
        if report is None or worker.index not in report[1]:
            return
        total, waiting, done = report
        try:
            self._combine(total, message.values)
        except ValueError as exc:  # a worker built from another config: left out
            print(f"pyxlb: [WARNING] layer-7 worker {worker.index}: {exc}", file=sys.stderr)
        waiting.discard(worker.index)
        if not waiting and not done.done():
            done.set_result(None)

    async def _answer_collect(self, worker: _Worker, message: m.Collect) -> None:
        worker.channel.send(m.Collected(message.id, await self.collect()))

    async def _read(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await worker.channel.receive()
                if isinstance(message, m.Observed):
                    self._observed(message)
                elif isinstance(message, m.Control):
                    self._control(message.backend, message.server, message.state)
                elif isinstance(message, m.Counters):
                    self._counted(worker, message)
                elif isinstance(message, m.Collect):
                    task = loop.create_task(self._answer_collect(worker, message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except ChannelClosed:
            pass
        # Gone: a report waiting for it is complete without it.
        for _, waiting, done in list(self._reports.values()):
            waiting.discard(worker.index)
            if not waiting and not done.done():
                done.set_result(None)
        if self._stopping or self._workers.get(worker.index) is not worker:
            return
        del self._workers[worker.index]
        code = await asyncio.to_thread(worker.process.wait)
        print(f"pyxlb: [WARNING] layer-7 worker {worker.index} (pid {worker.process.pid}) "
              f"exited with status {code}; starting another", file=sys.stderr, flush=True)
        task = loop.create_task(self._respawn(worker.index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respawn(self, index: int) -> None:
        try:
            await self._spawn(index)
        except WorkerError as exc:
            print(f"pyxlb: [ALERT] {exc}", file=sys.stderr, flush=True)

    async def stop(self) -> None:
        """Asks every worker to finish, kills those that do not in time."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            worker.channel.send(m.Stop())
        for worker in workers:
            try:
                await asyncio.wait_for(asyncio.to_thread(worker.process.wait), STOP_TIMEOUT_S)
            except TimeoutError:
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait)
            worker.channel.close()
            if worker.reader is not None:
                worker.reader.cancel()




class Fanout:
    """The daemon's Upstreams with every server change also told to the
    workers: what ServerAdmin calls; anything else is the Upstreams'."""

    def __init__(self, upstreams: Any, pool: WorkerPool) -> None:
        self._upstreams = upstreams
        self._pool = pool

    def set_server_state(self, backend: str, server: str, up: bool,
                         status: str | None = None,
                         check: Mapping[str, object] | None = None) -> int:
        """The requests moved are the daemon's own (each worker moves its own)."""
        moved = self._upstreams.set_server_state(backend, server, up, status, check)
        shown = status if status is not None else ("UP" if up else "DOWN")
        self._pool.broadcast(m.ServerState(backend, server, up, shown, check))
        return moved

    def set_server_status(self, backend: str, server: str, text: str,
                          check: Mapping[str, object] | None = None) -> None:
        self._upstreams.set_server_status(backend, server, text, check)
        self._pool.broadcast(m.ServerStatus(backend, server, text, check))

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self._upstreams.set_weight(backend, server, weight)
        self._pool.broadcast(m.Weight(backend, server, weight))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._upstreams, name)
