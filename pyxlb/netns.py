"""Entering a named network namespace without leaving our mount namespace.

`ip netns exec` also remounts /sys privately, which hides /sys/fs/bpf: pins
made under it would be invisible to every other process. setns(2) on the
network namespace alone keeps the shared bpffs in view.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(Exception):
    pass


def enter_netns(name: str) -> None:
    """Moves the calling thread into /run/netns/NAME. Call it before any
    thread starts: threads made later inherit it, earlier ones do not."""
    path = f"/run/netns/{name}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(f"no network namespace {name!r} ({path} is missing)") from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"cannot enter network namespace {name!r}: {os.strerror(err)}")
    finally:
        os.close(fd)
