"""Bring the lab up and down, report its state, and run commands inside it.

`Lab.up` makes the namespaces, bridge and veths of `LabTopology` with a few `ip -batch`
calls, starts the backend servers and waits for each to say it is ready. `Lab.down`
finds the lab by its namespace names, not by the state file, so it also cleans up after
a crash or a half-finished `up`: it stops every process inside the lab's namespaces and
deletes them. Nothing is ever created in the root network namespace except the
namespace handles in /run/netns.

Two settings serve the kernel's layer-4 datapath (DESIGN.md, "Layer-4 forwarding"),
whose NAT updates checksums incrementally and so needs full ones from senders: TX
checksum offload is off on the client's and the servers' veths (a veth otherwise
sends a partial checksum that only the receiving stack would have completed). And
the balancer's bridge-side peer runs a pass-through XDP program in native mode: on
veth, a frame sent with native-mode XDP_TX is lost unless the peer runs XDP too.
Deleting the switch namespace with that veth (`down`) removes the program.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import pyxlb
from pyxlb.lab.topology import BRIDGE, DEFAULT_PREFIX, Host, LabTopology, check_prefix

NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/pyxlb")
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0


class LabError(RuntimeError):
    """The lab could not be built or torn down; the message says which step failed."""


@dataclass
class ServerState:
    role: str
    kind: str
    ns: str
    port: int
    pid: int | None
    alive: bool


@dataclass
class LabStatus:
    prefix: str
    namespaces: dict[str, bool]  # every namespace of the topology -> exists
    servers: list[ServerState]

    @property
    def up(self) -> bool:
        return all(self.namespaces.values()) and all(s.alive for s in self.servers)

    @property
    def absent(self) -> bool:
        return not any(self.namespaces.values())


@dataclass
class DownReport:
    namespaces: list[str] = field(default_factory=list)  # deleted
    pids: list[int] = field(default_factory=list)  # stopped
    survivors: list[int] = field(default_factory=list)  # would not die even on SIGKILL


# -- pure: what to tell `ip` -------------------------------------------------------


def switch_batch(topo: LabTopology) -> list[str]:
    """`ip -batch` lines run inside the switch namespace: bridge and all veth pairs."""
    # Snooping off: without an MLD querier the bridge could drop IPv6 neighbour
    # solicitations to groups it has not seen reports for yet.
    lines = ["link set lo up", f"link add {BRIDGE} type bridge mcast_snooping 0",
             f"link set {BRIDGE} up"]
    for h in topo.hosts.values():
        # Created here with the far end placed straight into its namespace, so no
        # interface ever exists in the root namespace, even for a moment.
        lines.append(f"link add {h.peer} type veth peer name {h.iface} address {h.mac} "
                     f"netns {h.ns}")
        lines.append(f"link set {h.peer} master {BRIDGE} up")
    return lines


def host_batch(host: Host, topo: LabTopology) -> list[str]:
    """`ip -batch` lines run inside one host namespace."""
    lines = ["link set lo up"]
    lines += [f"addr add {a}/{topo.v4_net.prefixlen} dev {host.iface}" for a in host.v4]
    # nodad: usable at once, no second of "tentative" after bring-up. Extra v6
    # addresses are made deprecated (preferred_lft 0) so that, as with v4 secondaries,
    # the first one is the default source and the others are used only when bound.
    for i, a in enumerate(host.v6):
        lines.append(f"addr add {a}/{topo.v6_net.prefixlen} dev {host.iface} nodad"
                     + (" preferred_lft 0" if i else ""))
    lines.append(f"link set {host.iface} up")
    return lines


# -- system helpers ----------------------------------------------------------------


def ip(args: Sequence[str], batch: Sequence[str] | None = None, check: bool = True) -> None:
    argv = ["ip", *args]
    if batch is not None:
        argv += ["-batch", "-"]
    res = subprocess.run(argv, input="\n".join(batch or ()) + "\n", capture_output=True,
                         text=True)
    if res.returncode and check:
        raise LabError(f"{' '.join(argv)}: {res.stderr.strip() or res.stdout.strip()}")


# Features the kernel would otherwise leave to the receiver: a partial checksum.
TX_CHECKSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6")
XDP_PASS_PROGRAM = "int pyxlb_lab_pass(struct xdp_md *ctx) { return XDP_PASS; }"


def tx_checksum_off(iface: str) -> None:
    """Turns TX checksum offload off on `iface` in the current network namespace."""
    from pyroute2.ethtool import Ethtool

    ethtool = Ethtool()
    try:
        features = ethtool.get_features(iface)
        for name in TX_CHECKSUM_FEATURES:
            if name in features.features:
                features.features[name].enable = False
        ethtool.set_features(iface, features)
    finally:
        ethtool.close()


def attach_xdp_pass(iface: str) -> None:
    """Attaches a pass-through XDP program (native mode) to `iface` in the current
    network namespace; attached over netlink, it stays after this process exits."""
    from bcc import BPF

    bpf = BPF(text=XDP_PASS_PROGRAM)
    bpf.attach_xdp(iface, bpf.load_func("pyxlb_lab_pass", BPF.XDP), BPF.XDP_FLAGS_DRV_MODE)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _ns_key(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def netns_pids(names: Sequence[str]) -> dict[str, list[int]]:
    """Processes whose network namespace is one of `names` (what `ip netns pids` does,
    but one /proc scan for all of them)."""
    wanted = {key: name for name in names if (key := _ns_key(NETNS_DIR / name))}
    found: dict[str, list[int]] = {name: [] for name in names}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (name := wanted.get(_ns_key(f"/proc/{entry}/ns/net"))):
            found[name].append(int(entry))
    return found


def in_netns(pid: int, ns: str) -> bool:
    """True if `pid` is a live (not zombie) process inside namespace `ns`."""
    key = _ns_key(NETNS_DIR / ns)
    try:
        zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
    return key is not None and not zombie and _ns_key(f"/proc/{pid}/ns/net") == key


def _exited(proc: psutil.Process) -> bool:
    # A zombie has left its namespaces; whoever adopted it reaps it in its own time
    # (this VM's init takes seconds), so do not wait for that.
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop_pids(pids: Sequence[int], timeout: float = STOP_TIMEOUT) -> tuple[list[int], list[int]]:
    """SIGTERM, then SIGKILL what is left. Returns (stopped, survivors)."""
    # Never stop ourselves or our ancestors, e.g. `pyxlb lab down` run inside the lab.
    me = psutil.Process()
    spare = {me.pid, *(p.pid for p in me.parents())}
    procs = []
    for pid in pids:
        if pid in spare:
            continue
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        deadline = time.monotonic() + timeout
        while (procs := [p for p in procs if not _exited(p)]) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not procs:
            break
    survivors = [p.pid for p in procs]
    return [pid for pid in pids if pid not in spare and pid not in survivors], survivors


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    missing = [tool for tool in ("ip", "nsenter") if shutil.which(tool) is None]
    if missing:
        return f"the lab needs {' and '.join(missing)} on PATH"
    return None


_PID_DIGITS = 5  # base 36: covers the largest pid_max, 2**22


def unique_prefix(base: str = "pt", pid: int | None = None) -> str:
    """`base` plus our pid in base 36: labs of concurrent runs never collide, and a lab
    left by a run that died can be recognised (`reap_stale_labs`)."""
    n, digits = os.getpid() if pid is None else pid, ""
    for _ in range(_PID_DIGITS):
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return check_prefix(base + digits)


def reap_stale_labs(*bases: str) -> list[str]:
    """Take down labs named by `unique_prefix(base)` whose process is gone (a test run
    killed before its teardown). Returns their prefixes."""
    stale = set()
    for ns in list_netns():
        prefix = ns.split("-", 1)[0]
        for base in bases:
            tail = prefix[len(base):]
            if (prefix.startswith(base) and len(tail) == _PID_DIGITS and tail.isalnum()
                    and not psutil.pid_exists(int(tail, 36))):
                stale.add(prefix)
    for prefix in sorted(stale):
        Lab(prefix).down()
    return sorted(stale)


# -- the lab -----------------------------------------------------------------------


class Lab:
    """One lab instance, named by its prefix; several can coexist."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, python: str = sys.executable) -> None:
        self.topo = LabTopology(prefix)
        self.prefix = prefix
        self.python = python  # interpreter for the servers and for tests' snippets
        # Environment for `python -m pyxlb.lab...` in the namespaces: pyxlb importable
        # from a source checkout too, not only when installed.
        root = str(Path(pyxlb.__file__).resolve().parent.parent)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self.state_path = STATE_DIR / f"lab-{prefix}.json"
        self.log_dir = STATE_DIR / f"lab-{prefix}"
        self.stop_timeout = STOP_TIMEOUT  # down: grace between SIGTERM and SIGKILL
        self._children: list[subprocess.Popen[bytes]] = []

    # -- running things inside --

    def argv(self, role: str, argv: Sequence[str], keep_mounts: bool = False) -> list[str]:
        """`argv` wrapped to run in `role`'s namespace ("sw" for the switch).

        `ip netns exec` also gives the command a private /sys of the namespace, which
        hides the host's bpffs; `keep_mounts` enters only the network namespace, as a
        balancer that pins maps under /sys/fs/bpf needs.
        """
        ns = self.topo.ns(role)
        if keep_mounts:
            return ["nsenter", f"--net={NETNS_DIR / ns}", "--", *argv]
        return ["ip", "netns", "exec", ns, *argv]

    def exec(self, role: str, argv: Sequence[str], keep_mounts: bool = False,
             **popen: Any) -> subprocess.Popen[Any]:
        """Start `argv` in `role`'s namespace; the caller owns the process."""
        return subprocess.Popen(self.argv(role, argv, keep_mounts), **popen)

    def run(self, role: str, argv: Sequence[str], check: bool = True, timeout: float = 30,
            keep_mounts: bool = False, **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run `argv` in `role`'s namespace to completion; output captured as text."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(role, argv, keep_mounts), check=check,
                              timeout=timeout, **kw)

    # -- lifecycle --

    def up(self) -> bool:
        """Build the lab. False if it was already up; a partial lab is rebuilt."""
        if self.status().up:
            return False
        if self._existing():
            self.down()
        try:
            self._build()
            self._start_servers()
        except BaseException:
            self.down()
            raise
        return True

    def down(self) -> DownReport:
        """Remove everything `up` made, whatever state it is in."""
        names = self._existing()
        pids = sorted(pid for found in netns_pids(names).values() for pid in found)
        stopped, survivors = stop_pids(pids, self.stop_timeout)
        for child in self._children:  # reap the ones this object started
            if child.pid not in survivors:
                child.wait()
        self._children.clear()
        if names:
            # Unchecked: a namespace may vanish meanwhile (another `down`); what matters
            # is whether any is left.
            ip(["-force"], [f"netns del {name}" for name in names], check=False)
        left = self._existing()
        self.state_path.unlink(missing_ok=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        if left:
            raise LabError(f"lab {self.prefix}: could not delete namespaces {', '.join(left)}")
        return DownReport(names, stopped, survivors)

    def status(self) -> LabStatus:
        existing = set(self._existing())
        state = self._read_state().get("servers", {})
        servers = []
        for h in self.topo.servers:
            assert h.server is not None and h.port is not None
            pid = state.get(h.role, {}).get("pid")
            alive = pid is not None and h.ns in existing and in_netns(pid, h.ns)
            servers.append(ServerState(h.role, h.server, h.ns, h.port, pid, alive))
        return LabStatus(self.prefix, {n: n in existing for n in self.topo.namespaces},
                         servers)

    # -- internals --

    def _existing(self) -> list[str]:
        """Namespaces of this lab, found by name: "{prefix}-{role}", role without "-"."""
        head = f"{self.prefix}-"
        return [n for n in list_netns() if n.startswith(head) and "-" not in n[len(head):]]

    def _build(self) -> None:
        ip([], [f"netns add {ns}" for ns in self.topo.namespaces])
        ip(["-n", self.topo.switch_ns], switch_batch(self.topo))
        for host in self.topo.hosts.values():
            ip(["-n", host.ns], host_batch(host, self.topo))
        # In each namespace's own process: ethtool and netlink act on the caller's.
        steps = [(role, f"tx_checksum_off({self.topo.iface!r})")
                 for role in self.topo.hosts if role != "lb"]
        steps.append(("sw", f"attach_xdp_pass({self.topo.lb_peer!r})"))
        head = "from pyxlb.lab.lab import attach_xdp_pass, tx_checksum_off; "
        procs = [(role, self.exec(role, [sys.executable, "-c", head + call],
                                  keep_mounts=True, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
                 for role, call in steps]
        for role, proc in procs:
            out, _ = proc.communicate(timeout=60)
            if proc.returncode:
                raise LabError(f"lab {self.prefix}: setting up {role}'s veth failed:\n"
                               + out.decode(errors="replace").strip()[-2000:])

    def _spawn(self, host: Host) -> subprocess.Popen[bytes]:
        assert host.server is not None
        cmd = [self.python, "-m", "pyxlb.lab.servers", host.server, "--name", host.role,
               "--port", str(host.port)]
        with open(self.log_dir / f"{host.role}.log", "ab") as log:
            # Own session: a ^C in the terminal that ran `lab up` must not reach them.
            proc = self.exec(host.role, cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=log, env=self.env,
                             start_new_session=True)
        self._children.append(proc)
        return proc

    def _start_servers(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = {h.role: self._spawn(h) for h in self.topo.servers}
        self._wait_ready(started)
        self._write_state({role: p.pid for role, p in started.items()})

    def stop_server(self, role: str) -> None:
        """Kills one backend (SIGKILL: a crash, not a shutdown), for failover tests."""
        server = next(s for s in self.status().servers if s.role == role)
        if server.pid is not None and server.alive:
            stop_pids([server.pid], timeout=0)

    def start_server(self, role: str) -> None:
        """Starts one backend again and waits until it listens."""
        proc = self._spawn(self.topo.host(role))
        self._wait_ready({role: proc})
        state = self._read_state().get("servers", {})
        pids = {r: info["pid"] for r, info in state.items()}
        self._write_state({**pids, role: proc.pid})

    def _wait_ready(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        with selectors.DefaultSelector() as sel:
            for role, proc in procs.items():
                assert proc.stdout is not None
                sel.register(proc.stdout, selectors.EVENT_READ, role)
            while sel.get_map():
                left = deadline - time.monotonic()
                events = sel.select(left) if left > 0 else []
                if not events:
                    role = next(iter(sel.get_map().values())).data
                    raise LabError(f"lab {self.prefix}: server {role} not ready after "
                                   f"{READY_TIMEOUT:.0f}s{self._log_tail(role)}")
                for key, _ in events:
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    if not line.startswith(b"ready"):
                        raise LabError(f"lab {self.prefix}: server {key.data} exited before "
                                       f"ready{self._log_tail(key.data)}")

    def _log_tail(self, role: str) -> str:
        # Quoted into the error: the failed `up` removes the log with everything else.
        try:
            lines = (self.log_dir / f"{role}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "".join(f"\n  {line}" for line in lines[-20:])

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_state(self, pids: dict[str, int]) -> None:
        state = {
            "prefix": self.prefix,
            "created": time.time(),
            "namespaces": self.topo.namespaces,
            "servers": {h.role: {"pid": pids[h.role], "kind": h.server, "ns": h.ns,
                                 "port": h.port, "log": str(self.log_dir / f"{h.role}.log")}
                        for h in self.topo.servers},
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_path)

