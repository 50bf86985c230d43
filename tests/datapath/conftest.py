"""A freshly compiled XDP program (private maps, nothing pinned or attached)
for BPF_PROG_TEST_RUN tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from pyxlb.datapath import libbpf, params
from pyxlb.datapath.build import APPLY_ENTRY, compile_program, load_entry, map_layouts
from pyxlb.datapath.maps import BpfMap, decode, encode_address, fold_percpu
from pyxlb.datapath.src_track import SrcTrack


@dataclass
class LoadedProgram:
    bpf: Any
    prog_fd: int
    apply_fd: int
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

    @property
    def src_track(self) -> SrcTrack:
        return SrcTrack(self.maps["src_track"], self.maps["dp_params"], self.apply_fd)

    def set_params(self, dp: params.DpParams) -> None:
        params.write(self.maps["dp_params"], dp)

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


def load_program(defines: dict[str, str] | None = None) -> LoadedProgram:
    if os.geteuid() != 0:
        pytest.skip("BPF_PROG_TEST_RUN needs root")
    bpf = compile_program(defines=defines)
    prog_fd = load_entry(bpf)
    apply_fd = load_entry(bpf, APPLY_ENTRY)
    layouts = map_layouts(bpf)
    maps = {name: BpfMap(bpf[name.encode()].map_fd, layout) for name, layout in layouts.items()}
    return LoadedProgram(bpf, prog_fd, apply_fd, maps)


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
