"""`pyxlb up`: one instance's lifetime, from loading the datapath to a clean
stop on SIGTERM/SIGINT.

The order matters: the config is read before anything touches the kernel,
the datapath is attached before listeners open, and whatever happens after
the attach, the finally-block takes the program off the interface again.
Kernel-tier (`mode tcp`) proxies are layer-4 services in the datapath
(pyxlb/l4_services.py), written before the instance says it is ready.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import psutil

from pyxlb.config import Config
from pyxlb.datapath import loader, params, ports, src_rules
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.maps import BpfMap
from pyxlb.kernel_rules import KernelPlan, NotCompilable, NotServable, compile_config
from pyxlb.l4_services import L4Services
from pyxlb.log.format import QueueFigures, admin_events, server_events
from pyxlb.log.sender import LogSender

if TYPE_CHECKING:
    from pyxlb.health.checker import HealthMonitor
    from pyxlb.runtime.admin import ServerAdmin
    from pyxlb.stats.counters import StatsRegistry
    from pyxlb.workers.pool import WorkerPool


class StartError(Exception):
    """`up` cannot start; the message says why and nothing was left behind."""


def health_monitor(config: Config, admin: Callable[[], ServerAdmin],
                   sender: LogSender | None = None) -> HealthMonitor:
    """Health checks whose verdicts drive the l7 pools, the layer-4 services
    and the stats page, through `admin` (a getter: it is built with the
    monitor)."""
    from pyxlb.health.checker import HealthMonitor, check_targets
    from pyxlb.health.state import ServerState

    def on_change(target, old, new, report) -> None:
        name = target.server.name
        up = new is ServerState.UP
        moved = admin().apply(target.backend, name)
        figures = admin().figures(target.backend, name, moved)
        reason = f", {report.describe()}" if report is not None else ""
        print(f"pyxlb: Server {target.backend}/{name} is {new.value}{reason}", flush=True)
        backend = config.backends[target.backend]
        if sender is None or not backend.logs:
            return
        if ServerState.MAINT in (old, new):
            # The runtime API's maintenance, logged as HAProxy logs it.
            log_admin_change(sender, config, admin(), target.backend, name,
                             "maint" if new is ServerState.MAINT else "maint_left", figures)
            return
        events = server_events(
            backend.name, name, up=up, backup=target.server.backup,
            reason=report.describe() if report is not None else "reason: Maintenance",
            states=[(s.backup, server_up(monitor)(backend.name, s.name))
                    for s in backend.servers], figures=figures)
        for level, message in events:
            sender.emit(backend.logs, level, message)

    def on_status(target) -> None:
        admin().show_status(target.backend, target.server.name)

    monitor = HealthMonitor(check_targets(config), on_change, on_status=on_status)
    return monitor


def log_admin_change(sender: LogSender, config: Config, admin: ServerAdmin, backend: str,
                     server: str, change: str, figures: QueueFigures) -> None:
    """Logs a runtime-API change of `backend/server` (format.ADMIN_CHANGES)."""
    be = config.backends[backend]
    if not be.logs:
        return
    events = admin_events(
        backend, server, change=change,
        backup=next(s.backup for s in be.servers if s.name == server),
        drained=(backend, server) in admin.drained,
        states=[(s.backup, admin.usable(backend, s.name)) for s in be.servers],
        figures=figures)
    for level, message in events:
        sender.emit(be.logs, level, message)


def log_targets(config: Config) -> list:
    """Every log target the config names (global, proxies), each once."""
    proxies = [*config.frontends.values(), *config.backends.values()]
    targets = {(t.kind, t.target): t for t in config.global_.logs}
    for proxy in proxies:
        targets.update({(t.kind, t.target): t for t in proxy.logs})
    return list(targets.values())


def server_up(monitor: HealthMonitor) -> Callable[[str, str], bool]:
    from pyxlb.health.state import ServerState

    return lambda backend, server: (monitor.state(backend, server).server_state
                                    is ServerState.UP)


def rules_for(frontend, config: Config, instance: Instance | None = None):
    """The frontend's compiled http rules, or None when it has none (the
    proxy's rule-free path costs nothing per request). Stick counters in
    them count and read in the instance's kernel table."""
    from pyxlb.kernel_rules import http_stick_table
    from pyxlb.l7.rules.acl import Env
    from pyxlb.l7.rules.engine import RuleEngine
    from pyxlb.l7.stick import StickCounters

    if not RuleEngine.needed(frontend, config.backends):
        return None
    table = http_stick_table(frontend)
    if table is None or instance is None:
        return RuleEngine(frontend, config.backends, Env(userlists=config.userlists))
    from pyxlb.datapath.src_track import SrcTrack

    stick = StickCounters(SrcTrack.open(instance, fixed_params=True), table)
    return RuleEngine(frontend, config.backends,
                      Env(userlists=config.userlists, counters=stick.fetch),
                      track=stick.track, stick=stick)


async def serve(config: Config, instance: Instance, state: dict) -> None:
    """Runs the layer-7 listeners until SIGTERM or SIGINT."""
    from pyxlb.l7.listeners import ProcessLimit
    from pyxlb.l7.proxy import close_servers, start_frontend
    from pyxlb.l7.tls import TLSConfigError
    from pyxlb.l7.upstream import Upstreams
    from pyxlb.runtime.admin import ServerAdmin
    from pyxlb.runtime.process import open_stats_socket
    from pyxlb.stats.counters import StatsRegistry
    from pyxlb.workers.pool import WorkerError
    from pyxlb.workers.worker import process_share

    stats = StatsRegistry.build(config.frontends, config.backends)
    l4 = L4Services(config, instance)
    sender = LogSender()
    await sender.prepare(log_targets(config))
    monitor = health_monitor(config, lambda: admin, sender)
    # One Upstreams for all frontends: they share round-robin positions and pools.
    upstreams = Upstreams(config.backends, stats, observer=monitor.observe)
    admin = ServerAdmin(
        config, monitor, upstreams, l4,
        on_drain=lambda backend, server, drained, figures: log_admin_change(
            sender, config, admin, backend, server, "drain" if drained else "drain_left",
            figures))
    stats.control = admin.set_state  # `stats admin` forms
    workers = layer7_workers(config, instance, admin, monitor, stats)
    servers = []
    stats_socket = None
    l4_task: asyncio.Task[None] | None = None
    try:
        admin.start()
        if l4.wanted:
            # In a thread: pyroute2's netlink calls run an event loop of their own.
            try:
                await asyncio.to_thread(l4.start, admin.usable)
            except NotServable as exc:
                raise StartError(str(exc)) from exc
            l4_task = asyncio.get_running_loop().create_task(l4.run(monitor), name="layer-4 sweep")
            stats.refresh = lambda: kernel_counters(config, stats, l4)
        monitor.start()
        # `global maxconn`: every l7 frontend stops accepting at the process's limit.
        share = process_share(config.global_.maxconn, workers.count if workers else 1)
        process_limit = ProcessLimit(share) if share else None
        for frontend in config.frontends.values():
            if frontend.tier == "kernel":
                continue
            try:
                servers += await start_frontend(frontend, upstreams, stats,
                                                rules_for(frontend, config, instance), sender,
                                                process_limit)
            except OSError as exc:
                raise StartError(f"{frontend.where}: frontend {frontend.name}: "
                                 f"cannot listen: {exc.strerror}") from exc
            except TLSConfigError as exc:
                raise StartError(str(exc)) from exc
        if workers is not None:
            try:
                await workers.start()
            except WorkerError as exc:
                raise StartError(str(exc)) from exc
        stats_socket = await open_stats_socket(config, stats, admin, instance)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        instance.write_state({**state, "ready": True})
        attached = loader.Attached(state["hook"], state["xdp_mode"])
        print(f"pyxlb: serving on {instance.name} ({attached})", flush=True)
        waits = [loop.create_task(stop.wait())] + ([l4_task] if l4_task else [])
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # the sweep's error, if it stopped with one
    finally:
        if l4_task is not None:
            l4_task.cancel()
            await asyncio.wait([l4_task])
        if stats_socket is not None:
            await stats_socket.close()
        if workers is not None:
            await workers.stop()
        await monitor.stop()
        await close_servers(servers)
        sender.close()  # after the listeners: closing connections logs them
        l4.close()


def layer7_workers(config: Config, instance: Instance, admin: ServerAdmin,
                   monitor: HealthMonitor, stats: StatsRegistry) -> WorkerPool | None:
    """With `nbthread N` (N > 1) and layer-7 frontends, the N - 1 worker
    processes that serve them beside the daemon: server changes go to them
    through `admin`, their `observe` outcomes to `monitor`, and stats show
    every process's counters added up. None otherwise."""
    from pyxlb.stats.totals import Combiner, counter_values, with_values
    from pyxlb.workers import messages
    from pyxlb.workers.pool import Fanout, WorkerPool

    count = max(1, config.global_.nbthread or 1)
    if count == 1 or all(fe.tier == "kernel" for fe in config.frontends.values()):
        return None
    limited = [f"{be.name}/{s.name}" for be in config.backends.values()
               for s in be.servers if s.maxconn]
    limited += [f"frontend {fe.name}" for fe in config.frontends.values()
                if getattr(fe, "maxconn", None)]
    if limited:
        # HAProxy's threads share one count; pyxlb's processes do not (yet).
        print(f"pyxlb: [WARNING] nbthread {count}: each of the {count} processes applies "
              f"these maxconn limits and queues on its own: {', '.join(limited)}",
              file=sys.stderr)

    def snapshot() -> list[object]:
        """A new worker's catch-up: weights changed at run time, every state."""
        changes: list[object] = []
        for backend, server in admin.initial:
            weight = admin.weight(backend, server)
            if weight != admin.initial_weight(backend, server):
                changes.append(messages.Weight(backend, server, weight))
            changes.append(messages.ServerState(backend, server, admin.usable(backend, server),
                                                admin.status(backend, server)))
        return changes

    def observed(outcome: messages.Observed) -> None:
        monitor.observe(outcome.backend, outcome.server, outcome.analyze)

    pool = WorkerPool(
        count, lambda index: messages.Start(config, instance.iface, instance.netns, index, count),
        snapshot, observed, own_counters=lambda: counter_values(stats.fresh()),
        combine=Combiner(stats), control=admin.set_state)
    admin.upstreams = Fanout(admin.upstreams, pool)

    async def collect() -> StatsRegistry:
        return with_values(stats, await pool.collect())

    stats.collect = collect
    return pool


def kernel_counters(config: Config, stats: StatsRegistry, l4: L4Services) -> None:
    """The layer-4 services' flow counters into the stats slots (read when shown)."""
    from pyxlb.datapath import services
    from pyxlb.kernel_rules import kernel_frontends
    from pyxlb.stats.kernel import merge

    if l4.maps is not None:
        merge(stats, kernel_frontends(config), config.backends, services.stats(l4.maps))


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


def kernel_plan(config: Config) -> KernelPlan:
    try:
        return compile_config(config)
    except NotCompilable as exc:
        raise StartError(str(exc)) from exc


def apply_kernel_plan(instance: Instance, plan: KernelPlan) -> None:
    """Writes the compiled rules into the freshly loaded maps."""
    layouts = instance.layouts()

    def pinned(name: str) -> BpfMap:
        return BpfMap.open_pinned(str(instance.pin_dir / name), layouts[name])

    # The tracked binds and src rules before the parameters that make XDP
    # look at them.
    with pinned(ports.PORTS_MAP) as ports_map, pinned(ports.LISTENERS_MAP) as listeners:
        ports.write_tracked(ports_map, listeners, plan.tracked)
    with pinned(src_rules.MAP_NAME) as rules_map:
        src_rules.write(rules_map, src_rules.fold(plan.src_rules))
    with pinned(params.MAP_NAME) as params_map:
        params.write(params_map, plan.params)


def run_up(config: Config, iface: str, netns: str | None, xdp_mode: str,
           config_paths: Sequence[str], hook: str = "auto") -> None:
    """Blocks until stopped. Call after entering `netns` (if any)."""
    refuse_unserved(config)
    plan = kernel_plan(config)
    instance = Instance(iface, netns)
    if pid := instance.daemon_pid():
        raise StartError(f"instance {instance.name} is already served by pid {pid}"
                         " (stop it with `pyxlb down`)")
    # Replace a dead daemon's state at once, so that neither `pyxlb down` nor a
    # waiting script takes it for ours; keep its XDP mode for a link reused in place.
    state = {
        "pid": os.getpid(), "iface": iface, "netns": netns, "hook": None,
        "xdp_mode": (instance.state() or {}).get("xdp_mode"),
        "config": [os.path.abspath(p) for p in config_paths],
        "started": time.time(), "ready": False,
    }
    instance.write_state(state)
    try:
        attached = loader.load(instance, hook, xdp_mode,
                               src_track_size=plan.table.size if plan.table else None)
        state["hook"], state["xdp_mode"] = attached.hook, attached.xdp_mode
    except loader.DatapathError as exc:
        loader.unload(instance)  # our state file too: a failed start leaves nothing
        raise StartError(str(exc)) from exc
    try:
        apply_kernel_plan(instance, plan)
        instance.write_state(state)
        from pyxlb.l7.proxy import new_event_loop

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(config, instance, state))
    finally:
        loader.unload(instance)


def _exited(pid: int, timeout_s: float) -> bool:
    """Whether `pid` ends (or is a zombie: its parent may be the caller, who
    reaps it) within `timeout_s`; polled, never reaped here."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def stop_instance(instance: Instance, timeout_s: float = 10.0) -> bool:
    """Asks the instance's daemon to stop and waits; then removes whatever it
    left (after a crash, the pins and the attached program). True if a
    daemon was running."""
    pid = instance.daemon_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        # Wait for the process itself, not its state file: the daemon removes
        # that first while it is still taking its pins away.
        if not _exited(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            _exited(pid, timeout_s)
    loader.unload(instance)
    return pid is not None
