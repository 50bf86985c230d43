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
HOOKS = ("xdp", "tc")
# Per hook: the entry's name (bpf/pyxlb_xdp.c) and its pin.
ENTRIES = {"xdp": "pyxlb_xdp", "tc": "pyxlb_tc"}
PROG_PINS = {"xdp": "prog_xdp", "tc": "prog_tc"}
ENTRY, PROG_PIN = ENTRIES["xdp"], PROG_PINS["xdp"]
# User space's write path into src_track (see bpf/pyxlb_xdp.c).
APPLY_ENTRY = "pyxlb_src_track_apply"
APPLY_PROG_PIN = "prog_src_track_apply"


def bpf_source_dir() -> Path:
    return Path(str(files("pyxlb.bpf")))


def compile_program(pin_dir: str | None = None, defines: dict[str, str] | None = None,
                    hook: str = "xdp") -> Any:
    """Returns a bcc.BPF with the program compiled for `hook` and its maps
    created (or, with pin_dir, reused from / pinned under that directory)."""
    from bcc import BPF  # imported here: only the build step and tests need LLVM

    src = bpf_source_dir()
    cflags = [f"-I{src}"]
    if pin_dir:
        cflags.append(f'-DPYXLB_PIN_DIR="{pin_dir}"')
    for name, value in (defines or {}).items():
        cflags.append(f"-D{name}={value}")
    if hook == "tc":
        cflags.append("-DPYXLB_HOOK_TC")
    return BPF(src_file=str(src / PROGRAM_SOURCE).encode(), cflags=cflags)


def load_entry(bpf: Any, entry: str = ENTRY) -> int:
    """Loads an entry point as an XDP program, or the TC one as SCHED_CLS;
    returns its fd (owned by bpf)."""
    from bcc import BPF

    kind = BPF.SCHED_CLS if entry == ENTRIES["tc"] else BPF.XDP
    return bpf.load_func(entry.encode(), kind).fd


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


def changed_pins(bpf: Any) -> dict[str, str]:
    """The maps BCC reused from a pin whose shape differs from what this build
    declares (a struct grew, the stick-table's size changed): name -> how."""
    import ctypes

    from pyxlb.datapath import libbpf

    changed = {}
    for name, layout in map_layouts(bpf).items():
        table = bpf[name.encode()]
        kernel = libbpf.fd_info(table.map_fd)
        declared = {"key_size": ctypes.sizeof(layout.key_type),
                    "value_size": ctypes.sizeof(layout.value_type),
                    "max_entries": table.max_entries}
        diffs = [f"{field} {kernel[field]} -> {want}" for field, want in declared.items()
                 if int(kernel[field]) != want]
        if diffs:
            changed[name] = ", ".join(diffs)
    return changed


def build_and_pin(pin_dir: Path, layout_path: Path, src_track_size: int | None = None,
                  hook: str = "xdp") -> None:
    from pyxlb.datapath import libbpf

    pin_dir.mkdir(parents=True, exist_ok=True)
    defines = {"PYXLB_SRC_TRACK_MAX": str(src_track_size)} if src_track_size else None
    bpf = compile_program(str(pin_dir), defines, hook)
    if changed := changed_pins(bpf):
        # BCC reuses a pin whatever its shape; the program needs the new one.
        for name, how in changed.items():
            print(f"pyxlb: warning: pinned map {name} changed ({how}): recreated, "
                  "its entries are lost", file=sys.stderr)
            (pin_dir / name).unlink()
        bpf.cleanup()
        bpf = compile_program(str(pin_dir), defines, hook)
    for entry, pin in ((ENTRIES[hook], PROG_PINS[hook]), (APPLY_ENTRY, APPLY_PROG_PIN)):
        prog_fd = load_entry(bpf, entry)
        (pin_dir / pin).unlink(missing_ok=True)
        libbpf.obj_pin(prog_fd, str(pin_dir / pin))
    save_layouts(map_layouts(bpf), layout_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pin-dir", type=Path, required=True)
    parser.add_argument("--layout", type=Path, required=True)
    parser.add_argument("--src-track-size", type=int, default=None,
                        help="entries in src_track (the stick-table's size)")
    parser.add_argument("--hook", choices=HOOKS, default="xdp")
    args = parser.parse_args(argv)
    # BCC prints compiler diagnostics itself; keep ours to one line.
    try:
        build_and_pin(args.pin_dir, args.layout, args.src_track_size, args.hook)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        print(f"pyxlb: building the datapath failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
