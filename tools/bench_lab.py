#!/usr/bin/env python3
"""pyxlb against HAProxy 2.6 and against no balancer at all, in a lab of its own.
Prints figures; asserts nothing.

Two nginx servers (web1, web2) serve a small file and a 1 MiB one; wrk runs in
the client namespace. In one run:

  layer 4   straight to the servers (the ceiling), through pyxlb's kernel
            service (tcp-nat.cfg: full NAT in XDP) and through HAProxy `mode tcp`
            on the same file: keep-alive requests/s, new connections/s
            (`Connection: close`) and 1 MiB keep-alive bytes/s. Also "routed":
            straight to the servers but forwarded by the balancer namespace's
            kernel (no XDP), the cheapest crossing of the hop pyxlb adds
            (benchlab/routed.py); its rows say what the namespace forwarded.
  layer 7   pyxlb's l7 tier and HAProxy `mode http` (basic.cfg): keep-alive and
            `Connection: close` requests/s, p50/p99 latency.
  flood     conn-rate-limit.cfg: a legitimate client's keep-alive goodput while
            another source address floods connections, as a share of its goodput
            without the flood.

The balancers run one at a time in the lab's balancer namespace on the same
address and port, each on the same file (the lab's config, servers moved to
nginx's port, no `global` section). CPU: user+system seconds of the balancer's
processes (psutil), and the machine's softirq seconds (/proc/stat), where the
kernel's packet work and XDP are accounted (sampled at each tick on kernels
without CONFIG_IRQ_TIME_ACCOUNTING); a balancer's softirq cost is what it adds
per request to the no-balancer run's. "CPU/req" = process + that extra. Beside
each row: TCP's retransmitted and out-of-order segments in the client, balancer
and server namespaces. The machine is shared: --repeat N shows the median of N
runs and their spread.

    sudo .venv/bin/python tools/bench_lab.py            # 10 s per measurement
    sudo .venv/bin/python tools/bench_lab.py --quick    # 3 s per measurement
    sudo .venv/bin/python tools/bench_lab.py --repeat 3 # median of 3 runs each
    sudo .venv/bin/python tools/bench_lab.py --profile 15   # py-spy the l7 tier
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from benchlab.configs import bench_config
from benchlab.cpu import CpuMeter, CpuUse, tree_cpu_seconds
from benchlab.haproxy import HaproxyInLab
from benchlab.netstat import read_counters, tcp_counters, tcp_note
from benchlab.netwait import wait_listening
from benchlab.nginx import BULK, SMALL, NginxBackends
from benchlab.profile import summarise
from benchlab.routed import hop_note, routed_via
from benchlab.wrk import WrkError, WrkResult, combine, finish_wrk, start_wrk, wrk_argv

from pyxlb.datapath.instance import Instance
from pyxlb.lab.balancer import LabBalancer
from pyxlb.lab.lab import Lab, lab_unavailable, reap_stale_labs, unique_prefix

PREFIX_BASE = "bl"
NGINX_PORT = 8000
L4_PORT = 8080  # tcp-nat.cfg's web_l4
L7_PORT = 80
FLOOD_RATE = 5000  # connection attempts/s from the flooding source
CPUS = len(os.sched_getaffinity(0))
PYXLB_PROCESSES = f"pyxlb-{CPUS}p"  # pyxlb with `nbthread CPUS`
FLOOD = Path(__file__).resolve().parent / "benchlab" / "flood.py"
# Every TCP endpoint of a run (wrk, the balancer, nginx): their retransmissions
# and reordering are told beside each row.
TCP_ROLES = ("client", "lb", "web1", "web2")


@dataclass(frozen=True)
class Load:
    name: str
    path: str
    conns: int
    threads: int = 2
    close: bool = False
    max_seconds: float | None = None  # a shorter run than the others


KEEPALIVE = Load("keep-alive", SMALL, 64)
CLOSE = Load("conn: close", SMALL, 32, close=True)
# One connection at a time, 3 s: new connections as fast as a single client chains
# them, few enough to fit pyxlb's NAT port pool (12768 ports per server; a closed
# flow holds its port 10 s), so that CPU per connection compares like with like.
CLOSE_SLOW = Load("close, 1 conn", SMALL, 1, threads=1, close=True, max_seconds=3)
# Before each `Connection: close` run through pyxlb's layer 4: time for the sweep to
# give the NAT ports of the last run's closed flows back (held 10 s, swept each 5 s).
NAT_SETTLE_S = 16.0
BULK_LOAD = Load("1MiB keep-alive", BULK, 8)
LEGIT = Load("legit keep-alive", SMALL, 4, threads=1)  # 4 conns: under conn_rate's 5


@dataclass
class Row:
    section: str
    load: str
    who: str  # "direct", "routed", "pyxlb" or "haproxy"
    wrk: WrkResult | None  # None: wrk could not run, `note` says why
    cpu: CpuUse
    note: str = ""


# -- running things ----------------------------------------------------------------


def measure(lab: Lab, urls: list[str], load: Load, pids: list[int],
            seconds: float) -> tuple[WrkResult, CpuUse]:
    """wrk with `load` against `urls` at once (the threads and connections shared out).
    WrkError if wrk could not run, e.g. nothing accepted its first connection."""
    urls = urls[:load.conns]  # fewer connections than servers: fewer servers
    seconds = min(seconds, load.max_seconds or seconds)
    n = len(urls)
    print(f"  {load.name} -> {' '.join(urls)}", file=sys.stderr, flush=True)
    argvs = [wrk_argv(url, seconds, max(1, load.conns // n), max(1, load.threads // n),
                      load.close) for url in urls]
    meter = CpuMeter(pids)
    meter.start()
    procs = [start_wrk(lab, argv) for argv in argvs]
    errors: list[str] = []
    results = []
    for p in procs:
        try:
            results.append(finish_wrk(p, seconds + 30))
        except WrkError as e:
            errors.append(str(e))
    cpu = meter.stop()
    if errors:
        raise WrkError("; ".join(errors))
    return combine(results), cpu


@contextmanager
def pyxlb_running(lab: Lab, config: Path, ports: list[int]) -> Iterator[list[int]]:
    lb = LabBalancer(lab, config)
    lb.start()
    try:
        assert lb.proc is not None
        for port in ports:  # kernel services may come some time after "ready"
            wait_listening(lab, lab.topo.addr("lb"), port)
        yield [lb.proc.pid]
    except BaseException:
        print("pyxlb up's log ends:\n" + "\n".join(lb.log().splitlines()[-20:]),
              file=sys.stderr)
        raise
    finally:
        lb.stop()


@contextmanager
def haproxy_running(lab: Lab, config: Path, ports: list[int]) -> Iterator[list[int]]:
    hap = HaproxyInLab(lab, config, ports)
    hap.start()
    try:
        yield [hap.pid]
    finally:
        hap.stop()


@contextmanager
def source_for(lab: Lab, dest: str, source: str) -> Iterator[None]:
    """The client's connections to `dest` leave from `source` (wrk cannot bind)."""
    lab.run("client", ["ip", "route", "add", f"{dest}/32", "dev", lab.topo.iface,
                       "src", source])
    try:
        yield
    finally:
        lab.run("client", ["ip", "route", "del", f"{dest}/32"], check=False)


# What the kernel's layer-4 service did, told beside its rows.
L4_COUNTERS = ("l4_new_flows", "l4_no_nat_port", "l4_no_backend", "l4_no_conn")


def kernel_counters(lab: Lab) -> dict[str, int]:
    """The datapath's counters of the pyxlb instance in the lab's balancer namespace."""
    name = Instance(lab.topo.iface, lab.topo.ns("lb")).name
    out = subprocess.run([sys.executable, "-m", "pyxlb", "maps", "show", "dp_counters",
                          "--json", "-i", name], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return json.loads(out)[0]["value"]


def tune_for_load(lab: Lab) -> None:
    """TIME_WAIT reuse for outgoing connections in the client and the balancer
    namespaces, as HAProxy's tuning advice has it. Without it, from the second
    `Connection: close` run on, connect() in the client crawls: wrk closes first
    behind a balancer, and its TIME_WAITs fill every even port, the ones connect()
    tries first. The servers (nginx) only accept, so they keep the defaults."""
    for role in ("client", "lb"):
        lab.run(role, ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])


def write_config(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.cfg"
    path.write_text(bench_config(name, NGINX_PORT))
    return path


def balancers(lab: Lab, config: Path, ports: list[int], processes: bool = False,
              ) -> Iterator[tuple[str, AbstractContextManager[list[int]]]]:
    """pyxlb, then HAProxy, on the same file and ports: each runs only while used.
    With `processes`, pyxlb also with its l7 tier in one process per CPU
    (`nbthread`, as many as HAProxy runs threads by default)."""
    yield "pyxlb", pyxlb_running(lab, config, ports)
    if processes:
        yield PYXLB_PROCESSES, pyxlb_running(lab, with_nbthread(config, CPUS), ports)
    yield "haproxy", haproxy_running(lab, config, ports)


def with_nbthread(config: Path, count: int) -> Path:
    """A copy of a benchmark config (it has no global section) with `nbthread`."""
    path = config.with_name(f"{config.stem}-nbthread{count}.cfg")
    path.write_text(f"global\n    nbthread {count}\n\n{config.read_text()}")
    return path


# -- the three benchmarks ----------------------------------------------------------


def measured(section: str, who: str, lab: Lab, urls: list[str], load: Load, pids: list[int],
             seconds: float, repeat: int = 1, settle: float = 0.0) -> Row:
    """A row of the table: of `repeat` runs, the one with the median throughput (the
    machine is shared, so single runs wander); a run wrk could not make counts as
    the lowest, and a row of only such runs says why. `settle`: seconds to wait
    before each run. The note tells TCP's retransmissions and reordering over the
    runs, at both ends and in the balancer."""
    runs: list[Row] = []
    tcp_before = tcp_counters(lab, TCP_ROLES)
    for _ in range(repeat):
        time.sleep(settle)
        try:
            res, cpu = measure(lab, urls, load, pids, seconds)
        except WrkError as e:
            runs.append(Row(section, load.name, who, None, CpuUse(0.0, 0.0),
                            " ".join(str(e).split())[:200]))
            continue
        runs.append(Row(section, load.name, who, res, cpu))
    runs.sort(key=lambda r: -1.0 if r.wrk is None else r.wrk.rps)
    row = runs[len(runs) // 2]
    notes = [row.note, tcp_note(tcp_before, tcp_counters(lab, TCP_ROLES))]
    if repeat > 1:
        notes[-1] += f" over {repeat} runs"
        spread = " ".join(f"{r.wrk.rps:.0f}" if r.wrk else "failed" for r in runs)
        notes.append(f"median of {repeat} runs, req/s: {spread}")
    row.note = "; ".join(filter(None, notes))
    return row


# `Connection: close` last: what it leaves behind (NAT ports, TIME_WAIT) must not
# weigh on the other loads.
L4_LOADS = (KEEPALIVE, BULK_LOAD, CLOSE_SLOW, CLOSE)


def bench_ceiling(lab: Lab, nginx: NginxBackends, seconds: float, repeat: int) -> list[Row]:
    """The loads straight to the two servers at once: what a balancer can at best
    deliver, layer 4 or 7."""
    return [measured("none", "direct", lab, nginx.urls(load.path), load, [], seconds, repeat)
            for load in L4_LOADS]


def bench_routed(lab: Lab, nginx: NginxBackends, seconds: float, repeat: int) -> list[Row]:
    """The ceiling's loads, forwarded by the balancer namespace's kernel on the way
    there and back; before any balancer, so no XDP program is on its interface."""
    rows = []
    with routed_via(lab, "lb", "client", nginx.roles):
        for load in L4_LOADS:
            before = read_counters(lab, "lb")
            row = measured("none", "routed", lab, nginx.urls(load.path), load, [], seconds,
                           repeat)
            # Per request only for a single run: `measured` keeps only the median's count.
            requests = row.wrk.requests if row.wrk and repeat == 1 else None
            hop = hop_note("lb", before, read_counters(lab, "lb"), requests)
            if repeat > 1:
                hop += f" over {repeat} runs"
            row.note = "; ".join(filter(None, [hop, row.note]))
            rows.append(row)
    return rows


def bench_l4(lab: Lab, workdir: Path, seconds: float, repeat: int) -> list[Row]:
    rows = []
    config = write_config(workdir, "tcp-nat")
    vip = lab.topo.addr("lb")
    for who, running in balancers(lab, config, [L4_PORT]):
        with running as pids:
            for load in L4_LOADS:
                before = kernel_counters(lab) if who == "pyxlb" else {}
                settle = NAT_SETTLE_S if who == "pyxlb" and load.close else 0.0
                row = measured("L4", who, lab, [f"http://{vip}:{L4_PORT}/{load.path}"],
                               load, pids, seconds, repeat, settle)
                if before:
                    after = kernel_counters(lab)
                    said = ", ".join(f"{c} {after[c] - before[c]}" for c in L4_COUNTERS)
                    runs = f"{repeat} runs" if repeat > 1 else "the run"
                    row.note = f"XDP over {runs}: {said}" + (f"; {row.note}" if row.note else "")
                rows.append(row)
    return rows


def bench_l7(lab: Lab, workdir: Path, seconds: float, repeat: int) -> list[Row]:
    rows = []
    config = write_config(workdir, "basic")
    url = f"http://{lab.topo.addr('lb')}:{L7_PORT}/{SMALL}"
    for who, running in balancers(lab, config, [L7_PORT], processes=True):
        with running as pids:
            for load in (KEEPALIVE, CLOSE):
                rows.append(measured("L7", who, lab, [url], load, pids, seconds, repeat))
    return rows


def bench_flood(lab: Lab, workdir: Path, nginx: NginxBackends, seconds: float,
                repeat: int) -> list[Row]:
    """Goodput of a legitimate client (its own address, 4 keep-alive connections)
    without, then with, another address flooding new connections; of `repeat`
    such pairs, the one with the median share kept. Each pair's client comes from
    two fresh addresses: a second run from the same ones would push them over
    the connection rate. First with no balancer ("direct": the client straight to
    a server, the flood against the balancer's address with nothing listening,
    so its kernel resets each attempt): what the flood costs the machine,
    whoever answers it."""
    config = write_config(workdir, "conn-rate-limit")
    vip = lab.topo.addr("lb")
    with legit_sources(lab, 2 * repeat * 4) as sources:  # direct + 3 balancers
        def median_pair(who: str, url: str, pids: list[int]) -> list[Row]:
            pairs = [flood_pair(lab, who, url, vip, pids, seconds, next(sources), next(sources))
                     for _ in range(repeat)]
            pairs.sort(key=lambda pair: _kept(*pair))
            quiet, flooded = pairs[len(pairs) // 2]
            if repeat > 1:
                kept = ", ".join(f"{100 * _kept(*pair):.0f}%" for pair in pairs)
                flooded.note = f"kept over {repeat} runs: {kept}; {flooded.note}"
            return [quiet, flooded]

        rows = median_pair("direct", nginx.urls(SMALL)[0], [])
        for who, running in balancers(lab, config, [L7_PORT], processes=True):
            with running as pids:
                rows += median_pair(who, f"http://{vip}:{L7_PORT}/{SMALL}", pids)
    return rows


def _kept(quiet: Row, flooded: Row) -> float:
    q, f = _tput(quiet), _tput(flooded)
    return f / q if q and f is not None else 0.0


@contextmanager
def legit_sources(lab: Lab, count: int) -> Iterator[Iterator[str]]:
    """`count` extra addresses on the client's interface, none of them the lab's
    own (conn-rate-limit.cfg trusts .12), removed afterwards."""
    addrs = [str(lab.topo.v4_net[60 + n]) for n in range(count)]
    for addr in addrs:
        lab.run("client", ["ip", "addr", "add", f"{addr}/32", "dev", lab.topo.iface])
    try:
        yield iter(addrs)
    finally:
        for addr in addrs:
            lab.run("client", ["ip", "addr", "del", f"{addr}/32", "dev", lab.topo.iface],
                    check=False)


def flood_pair(lab: Lab, who: str, url: str, vip: str, pids: list[int], seconds: float,
               quiet_src: str, flooded_src: str) -> tuple[Row, Row]:
    """The legitimate client's row without the flood, then with it."""
    flooder = lab.topo.client_addrs[1]
    dest = url.split("/")[2].split(":")[0]
    with source_for(lab, dest, quiet_src):
        quiet = replace(measured("flood", who, lab, [url], LEGIT, pids, seconds),
                        load="no flood")
    flood = lab.exec("client", [lab.python, str(FLOOD), flooder, vip, str(L7_PORT),
                                "--seconds", str(seconds + 3), "--rate", str(FLOOD_RATE)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)  # the flood is on and the table knows the flooder
        with source_for(lab, dest, flooded_src):
            row = measured("flood", who, lab, [url], LEGIT, pids, seconds)
        flood_cpu = tree_cpu_seconds([flood.pid]).get(flood.pid, 0.0)
        out, _ = flood.communicate(timeout=seconds + 30)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    counts = json.loads(out.strip().splitlines()[-1])
    note = (f"flood {counts['attempts'] / counts['seconds']:.0f} conn/s: "
            f"{counts['established']} established, {counts['timed_out']} unanswered"
            f", {counts['refused']} refused or reset; flooder CPU {flood_cpu:.1f} s")
    return quiet, replace(row, load=f"{FLOOD_RATE}/s flood",
                          note=f"{note}; {row.note}" if row.note else note)


# -- output ------------------------------------------------------------------------


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1000:.2f}"


def cpu_per_req_us(row: Row, ceiling: Row | None) -> tuple[float | None, float | None]:
    """(softirq beyond the ceiling's, process + that) per request, in µs; None for
    what cannot be told (no run without a balancer to compare with, no wrk figures)."""
    if row.wrk is None or not row.wrk.requests:
        return None, None
    n = row.wrk.requests
    if ceiling is None or ceiling.wrk is None or not ceiling.wrk.requests:
        return None, row.cpu.process_s / n * 1e6
    extra = max(0.0, row.cpu.softirq_s / n - ceiling.cpu.softirq_s / ceiling.wrk.requests)
    return extra * 1e6, (row.cpu.process_s / n + extra) * 1e6


def _num(v: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def ceiling_of(rows: list[Row], row: Row, who: str = "direct") -> Row | None:
    """The reference row of `who` ("direct" or "routed") for `row`'s load."""
    if row.who == who or row.section == "flood":
        return None
    return next((r for r in rows if r.who == who and r.load == row.load), None)


def print_table(rows: list[Row]) -> None:
    head = (f"{'test':<6}{'load':<17}{'balancer':<9}{'req/s':>9}{'MB/s':>8}{'p50 ms':>8}"
            f"{'p99 ms':>8}{'errors':>7}{'proc s':>8}{'sirq s':>7}{'+sirq µs/req':>13}"
            f"{'CPU µs/req':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        lead = f"{r.section:<6}{r.load:<17}{r.who:<9}"
        if r.wrk is None:
            print(f"{lead}  no figures: {r.note}")
            continue
        extra, total = cpu_per_req_us(r, ceiling_of(rows, r))
        if r.who == "direct":
            extra = total = None
        print(f"{lead}{r.wrk.rps:>9.0f}{r.wrk.bytes_per_s / 1e6:>8.1f}{_ms(r.wrk.p50_s):>8}"
              f"{_ms(r.wrk.p99_s):>8}{r.wrk.errors:>7}{r.cpu.process_s:>8.2f}"
              f"{r.cpu.softirq_s:>7.2f}{_num(extra, 13)}{_num(total, 11)}")
        if r.note:
            print(f"{'':<8}{r.who}: {r.note}")


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def _tput(r: Row | None) -> float | None:
    if r is None or r.wrk is None:
        return None
    return r.wrk.bytes_per_s if r.load == BULK_LOAD.name else r.wrk.rps


def print_ratios(rows: list[Row]) -> None:
    by = {(r.section, r.load, r.who): r for r in rows}
    print("\nratios (throughput: req/s, bytes/s for 1MiB; p99; CPU: CPU µs/req; "
          "routed: no balancer, through its namespace)")
    print(f"{'test':<9}{'load':<17}{'pyxlb/ceil':>11}{'pyxlb/routed':>13}{'routed/ceil':>12}"
          f"{'hap/ceil':>10}{'pyxlb/hap':>10}{'p99 p/h':>9}{'CPU p/h':>9}")
    for section, load, who in ((section, load, who) for section, load in dict.fromkeys(
            (r.section, r.load) for r in rows if r.section != "none")
            for who in ("pyxlb", PYXLB_PROCESSES)):
        p, h = by.get((section, load, who)), by.get((section, load, "haproxy"))
        if p is None or h is None:
            continue
        ceil, routed = ceiling_of(rows, p), ceiling_of(rows, p, "routed")
        p99 = ratio(p.wrk.p99_s if p.wrk else None, h.wrk.p99_s if h.wrk else None)
        cpu = ratio(cpu_per_req_us(p, ceil)[1], cpu_per_req_us(h, ceil)[1])
        label = section if who == "pyxlb" else f"{section}/{CPUS}p"
        print(f"{label:<9}{load:<17}{ratio(_tput(p), _tput(ceil)):>11}"
              f"{ratio(_tput(p), _tput(routed)):>13}{ratio(_tput(routed), _tput(ceil)):>12}"
              f"{ratio(_tput(h), _tput(ceil)):>10}{ratio(_tput(p), _tput(h)):>10}"
              f"{p99:>9}{cpu:>9}")
    for who in ("direct", "pyxlb", PYXLB_PROCESSES, "haproxy"):
        quiet = _tput(by.get(("flood", "no flood", who)))
        flooded = _tput(by.get(("flood", f"{FLOOD_RATE}/s flood", who)))
        if quiet and flooded is not None:
            under = "with no balancer" if who == "direct" else f"under {who}"
            print(f"flood: {under} the legitimate client keeps {100 * flooded / quiet:.0f}%"
                  f" of its goodput")


# -- profile -----------------------------------------------------------------------


def profile_l7(lab: Lab, workdir: Path, seconds: float, top: int,
               save: Path | None, native: bool, load: Load = KEEPALIVE) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        sys.exit("bench_lab: --profile needs py-spy: pip install -e '.[bench]'")
    config = write_config(workdir, "basic")
    url = f"http://{lab.topo.addr('lb')}:{L7_PORT}/{SMALL}"
    out = workdir / "l7.collapsed"
    with pyxlb_running(lab, config, [L7_PORT]) as pids:
        wrk = start_wrk(lab, wrk_argv(url, seconds + 4, load.conns, load.threads,
                                      close=load.close))
        time.sleep(2)
        # --native shows the C frames (uvloop, httptools, syscalls) but must stop the
        # process for each sample; without it py-spy reads Python frames on the fly.
        how = ["--native", "-r", "100"] if native else ["--nonblocking", "-r", "250"]
        rec = subprocess.run([py_spy, "record", *how, "--format", "raw", "-d",
                              str(round(seconds)), "-o", str(out), "-p", str(pids[0])],
                             capture_output=True, text=True)
        res = finish_wrk(wrk, seconds + 40)
    if rec.returncode:
        sys.exit(f"py-spy failed:\n{rec.stderr}")
    if save is not None:
        shutil.copyfile(out, save)
    prof = summarise(out.read_text())
    print(f"pyxlb l7 under wrk {load.name} ({load.conns} connections): "
          f"{res.rps:.0f} req/s while sampled; {prof.samples} samples "
          f"(py-spy {'--native' if native else '--nonblocking, Python frames only'})")
    for which, within in (("self", ""), ("inclusive", "l7/")):
        where = f", functions in {within}" if within else ""
        print(f"\ntop {top} by {which} time (% of samples{where})")
        for func, pct in prof.top(which, top, within):
            print(f"{pct:6.1f}%  {func}")


# -- main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description="pyxlb vs HAProxy vs no balancer, in a lab of its own.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  .venv/bin/python tools/bench_lab.py\n"
               "  .venv/bin/python tools/bench_lab.py --quick\n"
               "  .venv/bin/python tools/bench_lab.py --profile 15")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement, not 10")
    parser.add_argument("--seconds", type=float, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="runs per measurement (flood: per pair); the median is shown")
    parser.add_argument("--only", choices=("l4", "l7", "flood"), action="append",
                        help="run only this part (repeatable)")
    parser.add_argument("--profile", type=float, metavar="SECONDS",
                        help="instead: sample the l7 tier with py-spy under keep-alive load")
    parser.add_argument("--top", type=int, default=25, help="--profile: functions listed")
    parser.add_argument("--profile-close", action="store_true",
                        help="--profile: under `Connection: close` load, not keep-alive")
    parser.add_argument("--python-only", action="store_true",
                        help="--profile: Python frames only, without stopping the process")
    parser.add_argument("--save-profile", type=Path, metavar="FILE",
                        help="--profile: keep py-spy's collapsed stacks there")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    if args.repeat < 1 or seconds < 1:
        parser.error("--repeat wants 1 or more, --seconds 1 or more")
    if reason := lab_unavailable():
        sys.exit(f"bench_lab: {reason}")
    # SIGTERM unwinds like ^C, so the lab always comes down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    reap_stale_labs(PREFIX_BASE)
    lab = Lab(unique_prefix(PREFIX_BASE))
    workdir = Path(tempfile.mkdtemp(prefix=f"pyxlb-bench-{lab.prefix}-"))
    rows: list[Row] = []
    try:
        lab.up()
        tune_for_load(lab)
        nginx = NginxBackends(lab, ["web1", "web2"], NGINX_PORT, workdir)
        nginx.start()
        try:
            if args.profile:
                profile_l7(lab, workdir, args.profile, args.top, args.save_profile,
                           native=not args.python_only,
                           load=CLOSE if args.profile_close else KEEPALIVE)
                return
            parts = args.only or ["l4", "l7", "flood"]
            print(f"lab {lab.prefix}: {seconds:.0f} s per measurement, parts "
                  f"{', '.join(parts)}", file=sys.stderr)
            if "l4" in parts or "l7" in parts:
                rows += bench_ceiling(lab, nginx, seconds, args.repeat)
            if "l4" in parts:
                rows += bench_routed(lab, nginx, seconds, args.repeat)
                rows += bench_l4(lab, workdir, seconds, args.repeat)
            if "l7" in parts:
                rows += bench_l7(lab, workdir, seconds, args.repeat)
            if "flood" in parts:
                rows += bench_flood(lab, workdir, nginx, seconds, args.repeat)
        finally:
            nginx.stop()
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    print_ratios(rows)


if __name__ == "__main__":
    main()
