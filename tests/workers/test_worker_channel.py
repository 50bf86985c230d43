"""The daemon-worker channel over a real socket pair, and what a worker
makes of the daemon's messages, without a network."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from pyxlb.workers import messages as m
from pyxlb.workers.channel import MAX_MESSAGE, Channel, ChannelClosed
from pyxlb.workers.worker import process_share


async def pair() -> tuple[Channel, Channel, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return await Channel.open(a), await Channel.open(b), b


def test_messages_arrive_whole_and_in_order():
    async def run() -> list[object]:
        daemon, worker, _ = await pair()
        sent = [m.ServerState("app", "a", False, "MAINT"), m.Report(7),
                m.Counters(7, list(range(10_000)))]
        for message in sent:
            daemon.send(message)
        got = [await worker.receive() for _ in sent]
        daemon.close()
        with pytest.raises(ChannelClosed):
            await worker.receive()
        return [sent, got]

    sent, got = asyncio.run(run())
    assert got == sent


def test_a_length_past_the_limit_closes_the_channel():
    async def run() -> None:
        daemon, worker, _ = await pair()
        daemon._writer.write(struct.pack("!I", MAX_MESSAGE + 1))
        with pytest.raises(ChannelClosed, match="bytes"):
            await worker.receive()

    asyncio.run(run())


@pytest.mark.parametrize("maxconn, processes, share", [
    (None, 2, None), (1000, 2, 500), (1001, 2, 501), (1, 4, 1)])
def test_global_maxconn_is_split_between_processes(maxconn, processes, share):
    assert process_share(maxconn, processes) == share
