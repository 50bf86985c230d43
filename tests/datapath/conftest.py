"""A freshly compiled XDP program (private maps, nothing pinned or attached)
for BPF_PROG_TEST_RUN tests."""

from __future__ import annotations

import ctypes
import functools
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from pyxlb.datapath import libbpf, params, ports
from pyxlb.datapath.build import (
    APPLY_ENTRY,
    ENTRIES,
    compile_program,
    load_entry,
    map_layouts,
)
from pyxlb.datapath.maps import BpfMap, decode, encode_address, fold_percpu
from pyxlb.datapath.services import MAP_NAMES, L4Maps
from pyxlb.datapath.src_track import SrcTrack


@dataclass
class LoadedProgram:
    bpf: Any
    prog_fd: int
    apply_fd: int
    maps: dict[str, BpfMap]
    # Where test runs' packets come in (an interface of the namespace the
    # test entered); 0: the loopback of the current namespace.
    ingress_ifindex: int = 0
    hook: str = "xdp"

    def run(self, packet: bytes, repeat: int = 1) -> libbpf.TestRun:
        return libbpf.prog_test_run(self.prog_fd, packet, repeat, self.ingress_ifindex,
                                    skb=self.hook == "tc")

    @property
    def l4(self) -> L4Maps:
        return L4Maps({name: self.maps[name] for name in MAP_NAMES})

    def source(self, address: str) -> dict | None:
        """The folded src_stats entry for an address, or None."""
        src = self.maps["src_stats"]
        value = src.lookup(encode_address(address, src.layout.key_type))
        return None if value is None else decode(fold_percpu(value))

    def counters(self) -> dict:
        table = self.maps["dp_counters"]
        return decode(fold_percpu(table.lookup(table.layout.key_type(0))))

    @property
    def src_track(self) -> SrcTrack:
        return SrcTrack(self.maps["src_track"], self.maps["dp_params"], self.apply_fd)

    def set_params(self, dp: params.DpParams) -> None:
        params.write(self.maps["dp_params"], dp)

    def reset(self) -> None:
        """Empties every map, so each test starts from nothing."""
        for name, table in self.maps.items():
            if name == "maglev_table":
                continue  # the shape of the tables `maglev` holds: never written
            if name == "ports":  # 65536 entries, a few set: only those are written
                ports.update_flags(table, 0xFF, {}, {})
            elif table.type_name in ("array", "percpu_array"):
                libbpf.map_update_batch(table.fd, *_array_zeros(
                    table.max_entries, ctypes.sizeof(table._value_buffer())))
            else:
                for key in list(table.keys()):
                    libbpf.map_delete(table.fd, key)


@functools.cache
def _array_zeros(count: int, value_size: int) -> tuple[ctypes.Array, ctypes.Array]:
    """Every key of an array map and a zero value for each, for one batch update."""
    return (ctypes.c_uint32 * count)(*range(count)), (ctypes.c_ubyte * (value_size * count))()


def load_program(defines: dict[str, str] | None = None, hook: str = "xdp") -> LoadedProgram:
    if os.geteuid() != 0:
        pytest.skip("BPF_PROG_TEST_RUN needs root")
    bpf = compile_program(defines=defines, hook=hook)
    prog_fd = load_entry(bpf, ENTRIES[hook])
    apply_fd = load_entry(bpf, APPLY_ENTRY)
    layouts = map_layouts(bpf)
    maps = {name: BpfMap(bpf[name.encode()].map_fd, layout) for name, layout in layouts.items()}
    return LoadedProgram(bpf, prog_fd, apply_fd, maps, hook=hook)


@pytest.fixture(scope="session")
def xdp_program() -> LoadedProgram:
    return load_program()


@pytest.fixture
def xdp(xdp_program: LoadedProgram) -> LoadedProgram:
    xdp_program.reset()
    return xdp_program


@pytest.fixture(scope="session")
def xdp_small_table_program() -> LoadedProgram:
    return load_program({"PYXLB_SRC_TRACK_MAX": "256"})


@pytest.fixture
def xdp_small_table(xdp_small_table_program: LoadedProgram) -> LoadedProgram:
    """The program built with a 256-entry src_track, emptied."""
    xdp_small_table_program.reset()
    return xdp_small_table_program


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@dataclass
class TestNet:
    """A network namespace of the test's own, with routes and neighbours set
    up, so that bpf_fib_lookup answers the same on every machine."""

    name: str

    def ifindex(self, iface: str) -> int:
        with self.entered():
            return socket.if_nametoindex(iface)

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Moves this thread into the namespace for the block (test runs
        resolve their ingress interface in the caller's namespace)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), f"setns into {self.name}")
            try:
                yield
            finally:
                if _libc.setns(home, CLONE_NEWNET):
                    raise OSError(ctypes.get_errno(), "setns back home")
        finally:
            os.close(home)
            os.close(target)


# The balancer's side of two links; clients and servers are only neighbour
# entries. 10.111.0.29 has none (a next hop whose MAC is unknown).
TEST_NET_SETUP = """
link add lb0 address 02:00:00:00:00:02 type veth peer name lb0p
link add lb1 address 02:00:00:00:01:02 type veth peer name lb1p
link set lb0 up
link set lb0p up
link set lb1 up
link set lb1p up
addr add 10.111.0.2/24 dev lb0
addr add fd00:111::2/64 dev lb0 nodad
addr add 10.112.0.2/24 dev lb1
neigh add 10.111.0.10 lladdr 02:00:00:00:00:0a dev lb0 nud permanent
neigh add 10.111.0.21 lladdr 02:00:00:00:00:21 dev lb0 nud permanent
neigh add 10.111.0.22 lladdr 02:00:00:00:00:22 dev lb0 nud permanent
neigh add 10.111.0.23 lladdr 02:00:00:00:00:23 dev lb0 nud permanent
neigh add 10.112.0.21 lladdr 02:00:00:00:01:21 dev lb1 nud permanent
neigh add fd00:111::10 lladdr 02:00:00:00:00:0a dev lb0 nud permanent
neigh add fd00:111::21 lladdr 02:00:00:00:00:21 dev lb0 nud permanent
"""


@pytest.fixture(scope="session")
def test_net() -> Iterator[TestNet]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    name = f"pyxlb-dp-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "-batch", "-"], input=TEST_NET_SETUP.strip() + "\n",
                       text=True, check=True)
        for sysctl in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", sysctl], check=True)
        yield TestNet(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextmanager
def _in_net(program: LoadedProgram, test_net: TestNet) -> Iterator[LoadedProgram]:
    with test_net.entered():
        program.ingress_ifindex = socket.if_nametoindex("lb0")
        try:
            yield program
        finally:
            program.ingress_ifindex = 0


@pytest.fixture
def xdp_in_net(xdp: LoadedProgram, test_net: TestNet) -> Iterator[LoadedProgram]:
    """The emptied program, its test runs coming in on lb0 of test_net."""
    with _in_net(xdp, test_net) as program:
        yield program


@pytest.fixture(scope="session")
def tc_program() -> LoadedProgram:
    return load_program(hook="tc")


@pytest.fixture
def tc_in_net(tc_program: LoadedProgram, test_net: TestNet) -> Iterator[LoadedProgram]:
    """The program built for TC ingress, emptied, its test runs (as skbs)
    coming in on lb0 of test_net."""
    tc_program.reset()
    with _in_net(tc_program, test_net) as program:
        yield program
