"""A freshly compiled XDP program (private maps, nothing pinned or attached)
for BPF_PROG_TEST_RUN tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from pyxlb.datapath import libbpf
from pyxlb.datapath.build import compile_program, load_entry, map_layouts
from pyxlb.datapath.maps import BpfMap, decode, encode_address, fold_percpu


@dataclass
class LoadedProgram:
    bpf: Any
    prog_fd: int
    maps: dict[str, BpfMap]

    def run(self, packet: bytes, repeat: int = 1) -> libbpf.TestRun:
        return libbpf.prog_test_run(self.prog_fd, packet, repeat)

    def source(self, address: str) -> dict | None:
        """The folded src_stats entry for an address, or None."""
        src = self.maps["src_stats"]
        value = src.lookup(encode_address(address, src.layout.key_type))
        return None if value is None else decode(fold_percpu(value))

    def counters(self) -> dict:
        table = self.maps["dp_counters"]
        return decode(fold_percpu(table.lookup(table.layout.key_type(0))))

    def reset(self) -> None:
        """Empties every map, so each test starts from nothing."""
        for table in self.maps.values():
            if table.type_name.endswith("array"):
                buf = table._value_buffer()
                for key in list(table.keys()):
                    libbpf.map_update(table.fd, key, buf)
            else:
                for key in list(table.keys()):
                    libbpf.map_delete(table.fd, key)


@pytest.fixture(scope="session")
def xdp_program() -> LoadedProgram:
    if os.geteuid() != 0:
        pytest.skip("BPF_PROG_TEST_RUN needs root")
    bpf = compile_program()
    prog_fd = load_entry(bpf)
    layouts = map_layouts(bpf)
    maps = {name: BpfMap(bpf[name.encode()].map_fd, layout) for name, layout in layouts.items()}
    return LoadedProgram(bpf, prog_fd, maps)


@pytest.fixture
def xdp(xdp_program: LoadedProgram) -> LoadedProgram:
    xdp_program.reset()
    return xdp_program
