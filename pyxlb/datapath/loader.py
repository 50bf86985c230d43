"""Loads the datapath onto an interface and takes it off again.

Compilation happens in a short-lived child process (build.py) that pins the
program and maps; this process only opens the pinned program and attaches it
through a pinned BPF link, so nothing of LLVM stays resident and the
attachment belongs to the pin, not to a process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from pyxlb.datapath import libbpf
from pyxlb.datapath.build import PROG_PIN
from pyxlb.datapath.instance import Instance

LINK_PIN = "link_xdp"
XDP_MODES = {"native": libbpf.XDP_FLAGS_DRV_MODE, "generic": libbpf.XDP_FLAGS_SKB_MODE}


class DatapathError(Exception):
    """The datapath could not be built, attached or removed."""


def ensure_bpffs() -> None:
    with open("/proc/mounts") as f:
        if any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f):
            return
    result = subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"],
                            capture_output=True, text=True)
    if result.returncode:
        raise DatapathError(f"cannot mount bpffs at /sys/fs/bpf: {result.stderr.strip()}")


def build(instance: Instance, src_track_size: int | None = None) -> None:
    """Compiles the program in a child process and pins it with its maps;
    src_track_size is the stick-table's size (the build's default without)."""
    ensure_bpffs()
    instance.pin_dir.mkdir(parents=True, exist_ok=True)
    instance.run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pyxlb.datapath.build",
               "--pin-dir", str(instance.pin_dir), "--layout", str(instance.layout_path)]
    if src_track_size:
        command += ["--src-track-size", str(src_track_size)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        detail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise DatapathError(f"compiling bpf/ failed:\n{detail}")
    for line in result.stderr.splitlines():
        if line.startswith("pyxlb: warning:"):
            print(line, file=sys.stderr)


def interface_index(iface: str) -> int:
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise DatapathError(f"no interface {iface!r} in this network namespace") from None


def attach(instance: Instance, ifindex: int, xdp_mode: str = "auto") -> str:
    """Attaches the pinned program to the instance's interface; returns the
    XDP mode used. An existing pyxlb link there gets the new program in place."""
    prog_fd = libbpf.obj_get(str(instance.pin_dir / PROG_PIN))
    link_pin = instance.pin_dir / LINK_PIN
    try:
        if link_pin.exists():
            link_fd = libbpf.obj_get(str(link_pin))
            try:
                libbpf.link_update(link_fd, prog_fd)
            finally:
                os.close(link_fd)
            state = instance.state() or {}
            return str(state.get("xdp_mode", "unknown"))
        modes = ["native", "generic"] if xdp_mode == "auto" else [xdp_mode]
        errors = []
        for mode in modes:
            try:
                link_fd = libbpf.link_create_xdp(prog_fd, ifindex, XDP_MODES[mode])
            except libbpf.BpfError as exc:
                errors.append(f"{mode}: {exc.strerror}")
                continue
            try:
                libbpf.obj_pin(link_fd, str(link_pin))
            finally:
                os.close(link_fd)
            return mode
        raise DatapathError(f"cannot attach XDP to {instance.iface}: " + "; ".join(errors))
    finally:
        os.close(prog_fd)


def load(instance: Instance, xdp_mode: str = "auto", src_track_size: int | None = None) -> str:
    """Builds and attaches; on failure leaves nothing attached or pinned."""
    ifindex = interface_index(instance.iface)
    try:
        build(instance, src_track_size)
        return attach(instance, ifindex, xdp_mode)
    except BaseException:
        unload(instance)
        raise


def unload(instance: Instance) -> None:
    """Detaches (by dropping the link's pin) and removes every pin and state
    file of the instance. Safe to call on a half-made or already-gone one."""
    if instance.pin_dir.is_dir():
        # The link first, so the program stops running before its maps go.
        (instance.pin_dir / LINK_PIN).unlink(missing_ok=True)
        for pin in instance.pin_dir.iterdir():
            pin.unlink(missing_ok=True)
        instance.pin_dir.rmdir()
    if instance.run_dir.is_dir():
        for path in instance.run_dir.iterdir():
            path.unlink(missing_ok=True)
        instance.run_dir.rmdir()
