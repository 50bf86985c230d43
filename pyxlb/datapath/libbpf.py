"""A thin ctypes facade over the system's libbpf: the bpf(2) commands pyxlb needs.

The long-running daemon and the CLI use this instead of BCC, so that neither
loads LLVM; only the short-lived build step (build.py) imports BCC.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from dataclasses import dataclass

_lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

BPF_MAP_TYPE_ARRAY = 2
BPF_XDP, BPF_TCX_INGRESS = 37, 46  # enum bpf_attach_type
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)  # enum xdp_action
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7  # linux/pkt_cls.h
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2


class BpfError(OSError):
    """A bpf(2) call failed; the message names the operation and its object."""


def _check(ret: int, what: str) -> int:
    # libbpf 1.x returns -errno from its low-level calls.
    if ret < 0:
        code = -ret
        raise BpfError(code, f"{what}: {os.strerror(code)}")
    return ret


class _TestRunOpts(ctypes.Structure):
    # struct bpf_test_run_opts, libbpf's ABI (bpf.h, libbpf >= 0.7).
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _BatchOpts(ctypes.Structure):
    # struct bpf_map_batch_opts (libbpf's bpf.h).
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


class _LinkCreateOpts(ctypes.Structure):
    # The leading fields of struct bpf_link_create_opts; libbpf accepts a
    # shorter struct than its own (opts->sz tells it how much we know).
    _fields_ = [("sz", ctypes.c_size_t), ("flags", ctypes.c_uint32)]


_lib.bpf_obj_get.argtypes = [ctypes.c_char_p]
_lib.bpf_obj_pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
_lib.bpf_map_lookup_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_lib.bpf_map_update_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_uint64]
_lib.bpf_map_delete_elem.argtypes = [ctypes.c_int, ctypes.c_void_p]
_lib.bpf_map_get_next_key.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_lib.bpf_map_lookup_batch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p]
_lib.bpf_map_update_batch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p]
_lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32,
                               ctypes.c_uint32, ctypes.c_void_p]
_lib.bpf_link_update.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_lib.bpf_prog_test_run_opts.argtypes = [ctypes.c_int, ctypes.POINTER(_TestRunOpts)]
_lib.bpf_link_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.POINTER(_LinkCreateOpts)]


def obj_get(path: str) -> int:
    """Opens a pinned BPF object; the caller owns (and closes) the fd."""
    return _check(_lib.bpf_obj_get(path.encode()), f"open pinned object {path}")


def obj_pin(fd: int, path: str) -> None:
    _check(_lib.bpf_obj_pin(fd, path.encode()), f"pin at {path}")


def map_create(map_type: int, name: str, key_size: int, value_size: int,
               max_entries: int) -> int:
    """Creates an anonymous map; the caller owns (and closes) the fd."""
    return _check(_lib.bpf_map_create(map_type, name.encode(), key_size, value_size,
                                      max_entries, None), f"create map {name}")


def map_lookup(fd: int, key: ctypes.Array | ctypes.Structure, value) -> bool:
    """Fills value for key; False when the key is absent."""
    ret = _lib.bpf_map_lookup_elem(fd, ctypes.byref(key), ctypes.byref(value))
    if ret == -errno.ENOENT:
        return False
    _check(ret, "map lookup")
    return True


def map_update(fd: int, key, value, flags: int = BPF_ANY) -> None:
    _check(_lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), flags),
           "map update")


def map_delete(fd: int, key) -> bool:
    ret = _lib.bpf_map_delete_elem(fd, ctypes.byref(key))
    if ret == -errno.ENOENT:
        return False
    _check(ret, "map delete")
    return True


def map_lookup_batch(fd: int, keys: ctypes.Array, values: ctypes.Array) -> int:
    """Fills keys and values from the start of the map in one call, as many
    as they hold; returns how many it filled."""
    token = ctypes.c_uint32()
    count = ctypes.c_uint32(len(keys))
    ret = _lib.bpf_map_lookup_batch(fd, None, ctypes.byref(token), keys, values,
                                    ctypes.byref(count), None)
    if ret != -errno.ENOENT:  # ENOENT: the map ended before the buffers did
        _check(ret, "map batch lookup")
    return count.value


def map_update_batch(fd: int, keys: ctypes.Array, values: ctypes.Array,
                     flags: int = BPF_ANY) -> None:
    """Writes len(keys) entries in one call; each entry is replaced
    atomically, not the batch."""
    if not len(keys):
        return
    opts = _BatchOpts(sz=ctypes.sizeof(_BatchOpts), elem_flags=flags)
    count = ctypes.c_uint32(len(keys))
    _check(_lib.bpf_map_update_batch(fd, keys, values, ctypes.byref(count),
                                     ctypes.byref(opts)), "map batch update")


def map_next_key(fd: int, key, next_key) -> bool:
    """Writes the key after `key` (the first when key is None); False at the end."""
    ret = _lib.bpf_map_get_next_key(fd, None if key is None else ctypes.byref(key),
                                    ctypes.byref(next_key))
    if ret == -errno.ENOENT:
        return False
    _check(ret, "map iteration")
    return True


def link_create_xdp(prog_fd: int, ifindex: int, flags: int) -> int:
    """Attaches an XDP program through a BPF link (detached when its last
    reference, fd or pin, goes away)."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts), flags=flags)
    return _check(_lib.bpf_link_create(prog_fd, ifindex, BPF_XDP, ctypes.byref(opts)),
                  f"attach XDP to ifindex {ifindex}")


def link_create_tcx(prog_fd: int, ifindex: int) -> int:
    """Attaches a SCHED_CLS program at TC ingress through a tcx BPF link
    (Linux 6.6+; no qdisc needed, detached like an XDP link)."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts))
    return _check(_lib.bpf_link_create(prog_fd, ifindex, BPF_TCX_INGRESS, ctypes.byref(opts)),
                  f"attach at TC ingress of ifindex {ifindex}")


def link_update(link_fd: int, prog_fd: int) -> None:
    """Swaps the program behind a link atomically (no moment without one)."""
    _check(_lib.bpf_link_update(link_fd, prog_fd, None), "replace the linked program")


@dataclass(frozen=True)
class TestRun:
    retval: int
    data_out: bytes
    duration_ns: int


class _XdpMd(ctypes.Structure):
    # struct xdp_md, the context an XDP test run may be given.
    _fields_ = [("data", ctypes.c_uint32), ("data_end", ctypes.c_uint32),
                ("data_meta", ctypes.c_uint32), ("ingress_ifindex", ctypes.c_uint32),
                ("rx_queue_index", ctypes.c_uint32), ("egress_ifindex", ctypes.c_uint32)]


# struct __sk_buff as u32 words (192 bytes): a TC test run may set only a few.
_SKB_WORDS, _SKB_INGRESS_IFINDEX, _SKB_IFINDEX = 48, 9, 10


def prog_test_run(prog_fd: int, packet: bytes, repeat: int = 1,
                  ingress_ifindex: int = 0, skb: bool = False) -> TestRun:
    """Runs a loaded program on one packet with BPF_PROG_TEST_RUN: an XDP
    program, or with `skb` a TC (SCHED_CLS) one. With ingress_ifindex (an
    interface of the calling thread's network namespace) the packet comes in
    there, so bpf_fib_lookup sees that namespace's routes; without, it comes
    in on its loopback."""
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 512)
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts),
        data_in=ctypes.cast(data_in, ctypes.c_void_p),
        data_size_in=len(packet),
        data_out=ctypes.cast(data_out, ctypes.c_void_p),
        data_size_out=len(data_out),
        repeat=repeat,
    )
    ctx: ctypes.Structure | ctypes.Array
    if ingress_ifindex and skb:
        ctx = (ctypes.c_uint32 * _SKB_WORDS)()
        ctx[_SKB_INGRESS_IFINDEX] = ctx[_SKB_IFINDEX] = ingress_ifindex
        opts.ctx_in = ctypes.cast(ctypes.byref(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(ctx)
    elif ingress_ifindex:
        ctx = _XdpMd(data_end=len(packet), ingress_ifindex=ingress_ifindex)
        opts.ctx_in = ctypes.cast(ctypes.byref(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(ctx)
    _check(_lib.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "BPF_PROG_TEST_RUN")
    return TestRun(opts.retval, data_out.raw[: opts.data_size_out], opts.duration)


def fd_info(fd: int) -> dict[str, str]:
    """The kernel's description of a BPF fd (map_type, key_size, ...)."""
    info = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            name, _, value = line.partition(":")
            info[name.strip()] = value.strip()
    return info
