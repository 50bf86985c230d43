"""Reading and decoding pyxlb's BPF maps from any process.

A `BpfMap` wraps a map fd (opened from its pin, or handed over by BCC in
tests) with the ctypes types from its layout; `decode()` turns keys and values
into plain data (addresses as text, per-CPU values folded).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from pyxlb.datapath import libbpf
from pyxlb.datapath.layout import PERCPU_MAP_TYPES, MapLayout

MAP_TYPE_NAMES = {
    1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
}


@cache
def possible_cpus() -> int:
    """Per-CPU maps hold one value for every possible CPU, not just online ones."""
    with open("/sys/devices/system/cpu/possible") as f:
        last = 0
        for part in f.read().strip().split(","):
            last = max(last, int(part.split("-")[-1]))
    return last + 1


@dataclass
class BpfMap:
    fd: int
    layout: MapLayout
    owns_fd: bool = False

    @classmethod
    def open_pinned(cls, path: str, layout: MapLayout) -> BpfMap:
        return cls(libbpf.obj_get(path), layout, owns_fd=True)

    def close(self) -> None:
        if self.owns_fd:
            os.close(self.fd)
            self.owns_fd = False

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def info(self) -> dict[str, str]:
        return libbpf.fd_info(self.fd)

    @cached_property
    def type_id(self) -> int:
        # Read once: every lookup needs it and /proc fdinfo costs ~10 us.
        return int(self.info["map_type"])

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.type_id, f"type {self.type_id}")

    @property
    def max_entries(self) -> int:
        return int(self.info["max_entries"])

    @property
    def percpu(self) -> bool:
        return self.type_id in PERCPU_MAP_TYPES

    def _value_buffer(self) -> Any:
        value_type = self.layout.value_type
        if not self.percpu:
            return value_type()
        # The kernel pads each CPU's copy to 8 bytes.
        slot = (ctypes.sizeof(value_type) + 7) & ~7
        return (ctypes.c_ubyte * (slot * possible_cpus()))()

    def _split_percpu(self, buf: Any) -> list[Any]:
        value_type = self.layout.value_type
        slot = (ctypes.sizeof(value_type) + 7) & ~7
        raw = bytes(buf)
        return [value_type.from_buffer_copy(raw, i * slot) for i in range(possible_cpus())]

    def keys(self) -> Iterator[Any]:
        key_type = self.layout.key_type
        key = None
        while True:
            next_key = key_type()
            if not libbpf.map_next_key(self.fd, key, next_key):
                return
            yield next_key
            key = next_key

    def lookup(self, key: Any) -> Any | None:
        """The value (a list of per-CPU values for per-CPU maps), or None."""
        buf = self._value_buffer()
        if not libbpf.map_lookup(self.fd, key, buf):
            return None
        return self._split_percpu(buf) if self.percpu else buf

    def items(self) -> Iterator[tuple[Any, Any]]:
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:  # deleted (or evicted) while we walked
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def decoded_items(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        for key, value in self.items():
            yield decode(key), decode(fold_percpu(value) if self.percpu else value)


def fold_percpu(values: list[Any]) -> Any:
    """One value from every CPU's copy: counters add up, `last_*` fields
    (timestamps) keep the latest, nested structs fold the same way, and
    arrays (addresses) are the first CPU's."""
    total = type(values[0])()
    for name, _ in total._fields_:
        if name.startswith("__pad"):
            continue
        column = [getattr(v, name) for v in values]
        if isinstance(column[0], ctypes.Structure):
            folded = fold_percpu(column)
        elif isinstance(column[0], ctypes.Array):
            folded = column[0]
        else:
            folded = max(column) if name.startswith("last_") else sum(column)
        setattr(total, name, folded)
    return total


def _format_address(raw: bytes) -> str:
    addr = ipaddress.IPv6Address(raw)
    return str(addr.ipv4_mapped or addr)


def decode(obj: Any) -> Any:
    """Plain data for a ctypes key or value: `addr` and `*_addr` byte arrays
    become addresses, `last_*_ns` monotonic timestamps become ages in seconds, and
    the `__pad*` fields BCC describes for alignment are left out."""
    if isinstance(obj, int | float):
        return obj
    if isinstance(obj, ctypes._SimpleCData):
        return obj.value
    if isinstance(obj, ctypes.Array):
        return [decode(x) for x in obj]
    out: dict[str, Any] = {}
    now_ns = time.monotonic_ns()
    for name, _ in obj._fields_:
        if name.startswith("__pad"):
            continue
        value = getattr(obj, name)
        if name == "addr" or name.endswith("_addr"):
            out[name] = _format_address(bytes(value))
        elif name.startswith("last_") and name.endswith("_ns"):
            out[name.removesuffix("_ns") + "_ago_s"] = (
                round((now_ns - value) / 1e9, 3) if value else None)
        else:
            out[name] = decode(value)
    return out


def encode_address(text: str, key_type: Any) -> Any:
    """A key of key_type for an address given as text (IPv4 stored mapped)."""
    addr = ipaddress.ip_address(text)
    if addr.version == 4:
        addr = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed)
    key = key_type()
    key.addr[:] = list(addr.packed)
    return key
