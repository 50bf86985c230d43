"""Loads the datapath onto an interface (at XDP, or at TC ingress) and takes it off again.

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
from dataclasses import dataclass
from pathlib import Path

from pyxlb.datapath import libbpf
from pyxlb.datapath.build import PROG_PINS
from pyxlb.datapath.instance import Instance

LINK_PINS = {"xdp": "link_xdp", "tc": "link_tc"}
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


def build(instance: Instance, src_track_size: int | None = None, hook: str = "xdp") -> None:
    """Compiles the program for `hook` in a child process and pins it with its
    maps; src_track_size is the stick-table's size (the build's default without)."""
    ensure_bpffs()
    instance.pin_dir.mkdir(parents=True, exist_ok=True)
    instance.run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pyxlb.datapath.build", "--hook", hook,
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


@dataclass(frozen=True)
class Attached:
    """Where the program runs: the hook, and XDP's mode (None at TC)."""

    hook: str
    xdp_mode: str | None = None

    def __str__(self) -> str:
        return f"XDP {self.xdp_mode} mode" if self.hook == "xdp" else "TC ingress"


def _create_link(instance: Instance, prog_fd: int, ifindex: int, hook: str,
                 xdp_mode: str) -> Attached:
    if hook == "tc":
        try:
            link_fd = libbpf.link_create_tcx(prog_fd, ifindex)
        except libbpf.BpfError as exc:
            raise DatapathError(f"cannot attach at TC ingress of {instance.iface}: "
                                f"{exc.strerror}") from None
        attached = Attached("tc")
    else:
        errors = []
        for mode in ["native", "generic"] if xdp_mode == "auto" else [xdp_mode]:
            try:
                link_fd = libbpf.link_create_xdp(prog_fd, ifindex, XDP_MODES[mode])
            except libbpf.BpfError as exc:
                errors.append(f"{mode}: {exc.strerror}")
                continue
            attached = Attached("xdp", mode)
            break
        else:
            raise DatapathError(f"cannot attach XDP to {instance.iface}: " + "; ".join(errors))
    try:
        libbpf.obj_pin(link_fd, str(instance.pin_dir / LINK_PINS[hook]))
    finally:
        os.close(link_fd)
    return attached


def attach(instance: Instance, ifindex: int, hook: str = "xdp",
           xdp_mode: str = "auto") -> Attached:
    """Attaches the pinned program for `hook` to the instance's interface. An
    existing pyxlb link there gets the new program in place; one on the other
    hook (an earlier run's) is dropped once this one runs."""
    prog_fd = libbpf.obj_get(str(instance.pin_dir / PROG_PINS[hook]))
    link_pin = instance.pin_dir / LINK_PINS[hook]
    try:
        if link_pin.exists():
            link_fd = libbpf.obj_get(str(link_pin))
            try:
                libbpf.link_update(link_fd, prog_fd)
            finally:
                os.close(link_fd)
            state = instance.state() or {}
            return Attached(hook, state.get("xdp_mode") if hook == "xdp" else None)
        attached = _create_link(instance, prog_fd, ifindex, hook, xdp_mode)
    finally:
        os.close(prog_fd)
    for other, pin in LINK_PINS.items():
        if other != hook:
            (instance.pin_dir / pin).unlink(missing_ok=True)
    return attached


def load(instance: Instance, hook: str = "auto", xdp_mode: str = "auto",
         src_track_size: int | None = None) -> Attached:
    """Builds and attaches at `hook` (xdp, tc, or auto: XDP, and TC ingress
    where XDP cannot attach; a restart stays on the hook it found). On
    failure leaves nothing attached or pinned."""
    ifindex = interface_index(instance.iface)
    first = hook
    if hook == "auto":
        first = "tc" if (instance.pin_dir / LINK_PINS["tc"]).exists() else "xdp"
    try:
        build(instance, src_track_size, first)
        try:
            return attach(instance, ifindex, first, xdp_mode)
        except DatapathError as exc:
            if hook != "auto" or first == "tc":
                raise
            print(f"pyxlb: warning: {exc}; using TC ingress instead", file=sys.stderr)
        build(instance, src_track_size, "tc")
        return attach(instance, ifindex, "tc", xdp_mode)
    except BaseException:
        unload(instance)
        raise


def unload(instance: Instance) -> None:
    """Detaches (by dropping the link's pin) and removes every pin and state
    file of the instance. Safe to call on a half-made or already-gone one,
    and while another process removes the same instance."""
    if instance.pin_dir.is_dir():
        # The links first, so the program stops running before its maps go.
        for pin in LINK_PINS.values():
            (instance.pin_dir / pin).unlink(missing_ok=True)
    _remove_dir(instance.pin_dir)
    _remove_dir(instance.run_dir)


def _remove_dir(path: Path) -> None:
    try:
        for entry in path.iterdir():
            entry.unlink(missing_ok=True)
        path.rmdir()
    except FileNotFoundError:
        pass
