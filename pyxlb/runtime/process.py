"""The daemon's `Runtime`: the running process's counters and info, the stick
table the kernel keeps (pyxlb/datapath/src_track.py) and the server changes of
`ServerAdmin`."""

from __future__ import annotations

import os
import socket
import time
from importlib import metadata

from pyxlb.config.model import Config, StickTable
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.src_track import SrcTrack, SrcTrackError
from pyxlb.runtime.admin import ServerAdmin
from pyxlb.runtime.commands import CommandError, Table, uptime_text
from pyxlb.runtime.server import RuntimeSocket
from pyxlb.stats.counters import StatsRegistry

try:
    _VERSION = metadata.version("pyxlb")
except metadata.PackageNotFoundError:  # a checkout that is not installed
    _VERSION = "unknown"

_DEFAULT_MAXCONN = 4096


class ProcessRuntime:
    def __init__(self, config: Config, registry: StatsRegistry, admin: ServerAdmin,
                 instance: Instance | None, kernel_table: StickTable | None) -> None:
        self.config = config
        self.live = registry
        self.registry = registry  # what commands show: the live one, or totals
        self.admin = admin
        self.instance = instance
        self.kernel_table = kernel_table
        self.started = time.time()

    async def refresh(self) -> None:
        """Before commands run: every process's counters where several serve."""
        if self.live.collect is not None:
            self.registry = await self.live.current()

    def info(self) -> dict[str, object]:
        uptime = int(time.time() - self.started)
        frontends = [p.frontend for p in self.registry.proxies if p.frontend is not None]
        maxconn = self.config.global_.maxconn or _DEFAULT_MAXCONN
        return {
            "Name": "pyxlb", "Version": _VERSION, "Release_date": "unknown",
            "Nbthread": self.config.global_.nbthread or 1,
            "Nbproc": 1, "Process_num": 1, "Pid": os.getpid(), "Uptime": uptime_text(uptime),
            "Uptime_sec": uptime, "Maxconn": maxconn, "Hard_maxconn": maxconn,
            "CumConns": sum(fe.connections for fe in frontends),
            "CumReq": sum(fe.requests for fe in frontends), "Idle_pct": 100,
            "node": socket.gethostname(), "Build info": _VERSION,
            "Start_time_sec": int(self.started),
        }

    def _sections(self) -> list[tuple[str, StickTable]]:
        proxies = [*self.config.frontends.values(), *self.config.backends.values()]
        found: dict[str, StickTable] = {}
        for proxy in proxies:
            if proxy.stick_table is not None:
                found.setdefault(proxy.name, proxy.stick_table)
        return list(found.items())

    def tables(self) -> list[Table]:
        tables = []
        for name, table in self._sections():
            entries = []
            if table is self.kernel_table and self.instance is not None:
                try:
                    with SrcTrack.open(self.instance) as track:
                        entries = track.entries()
                except (OSError, SrcTrackError) as exc:
                    raise CommandError(f"Cannot read table {name} from the kernel: {exc}\n") \
                        from None
            tables.append(Table(name, table.type, table.size, table.store, entries))
        return tables

    def clear_table(self, table: str, key: str | None) -> None:
        """Entries with connections open stay, as HAProxy keeps those in use."""
        match = next((t for n, t in self._sections() if n == table), None)
        if match is None or match is not self.kernel_table or self.instance is None:
            return
        try:
            with SrcTrack.open(self.instance) as track:
                for entry in track.entries():
                    if (key is None or entry.src == key) and entry.conn_cur == 0:
                        track.delete(entry.src)
        except (OSError, SrcTrackError) as exc:
            raise CommandError(f"Cannot clear table {table} in the kernel: {exc}\n") from None

    def set_state(self, backend: str, server: str, state: str) -> None:
        self.admin.set_state(backend, server, state)

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self.admin.set_weight(backend, server, weight)

    def initial_weight(self, backend: str, server: str) -> int:
        return self.admin.initial_weight(backend, server)


async def open_stats_socket(config: Config, registry: StatsRegistry, admin: ServerAdmin,
                            instance: Instance | None) -> RuntimeSocket | None:
    """The config's `stats socket`, listening; None when it has none. Raises
    StartError naming the config line when the path cannot be bound."""
    from pyxlb.daemon import StartError
    from pyxlb.kernel_rules import NotCompilable, compile_config

    where = config.global_.stats_socket
    if where is None:
        return None
    try:
        kernel_table = compile_config(config).table
    except NotCompilable:
        kernel_table = None
    runtime = ProcessRuntime(config, registry, admin, instance, kernel_table)
    sock = RuntimeSocket(where.path, runtime, where.level, where.mode,
                         config.global_.stats_timeout_ms / 1000)
    try:
        await sock.start()
    except OSError as exc:
        raise StartError(f"{where.where}: stats socket {where.path}: cannot listen: "
                         f"{exc.strerror}") from exc
    return sock
