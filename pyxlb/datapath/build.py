"""Compiles bpf/ with BCC, pins the program and its maps, records map layouts.

The daemon runs this as a short-lived child (`python -m pyxlb.datapath.build`),
so LLVM and BCC's memory leave with it; unit tests call compile_program()
directly to get a loaded program without pins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from pyxlb.datapath.layout import MapLayout, save_layouts

PROGRAM_SOURCE = "pyxlb_xdp.c"
ENTRY = "pyxlb_xdp"
PROG_PIN = "prog_xdp"


def bpf_source_dir() -> Path:
    return Path(str(files("pyxlb.bpf")))


def compile_program(pin_dir: str | None = None, defines: dict[str, str] | None = None) -> Any:
    """Returns a bcc.BPF with the program compiled and its maps created (or,
    with pin_dir, reused from / pinned under that directory)."""
    from bcc import BPF  # imported here: only the build step and tests need LLVM

    src = bpf_source_dir()
    cflags = [f"-I{src}"]
    if pin_dir:
        cflags.append(f'-DPYXLB_PIN_DIR="{pin_dir}"')
    for name, value in (defines or {}).items():
        cflags.append(f"-D{name}={value}")
    return BPF(src_file=str(src / PROGRAM_SOURCE).encode(), cflags=cflags)


def load_entry(bpf: Any) -> int:
    """Loads the XDP entry point; returns its program fd (owned by bpf)."""
    from bcc import BPF

    return bpf.load_func(ENTRY.encode(), BPF.XDP).fd


def map_layouts(bpf: Any) -> dict[str, MapLayout]:
    import ctypes

    from bcc.libbcc import lib

    # bcc's Python binding does not declare these two of libbcc's functions.
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    layouts = {}
    for i in range(lib.bpf_num_tables(bpf.module)):
        name = lib.bpf_table_name(bpf.module, i)
        key = json.loads(lib.bpf_table_key_desc(bpf.module, name).decode())
        value = json.loads(lib.bpf_table_leaf_desc(bpf.module, name).decode())
        layouts[name.decode()] = MapLayout(name.decode(), key, value)
    return layouts


def build_and_pin(pin_dir: Path, layout_path: Path) -> None:
    from pyxlb.datapath import libbpf

    pin_dir.mkdir(parents=True, exist_ok=True)
    bpf = compile_program(str(pin_dir))
    prog_fd = load_entry(bpf)
    prog_pin = pin_dir / PROG_PIN
    prog_pin.unlink(missing_ok=True)
    libbpf.obj_pin(prog_fd, str(prog_pin))
    save_layouts(map_layouts(bpf), layout_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pin-dir", type=Path, required=True)
    parser.add_argument("--layout", type=Path, required=True)
    args = parser.parse_args(argv)
    # BCC prints compiler diagnostics itself; keep ours to one line.
    try:
        build_and_pin(args.pin_dir, args.layout)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        print(f"pyxlb: building the datapath failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
