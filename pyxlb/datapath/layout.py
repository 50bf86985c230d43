"""Map layouts: ctypes types derived from the C definitions in bpf/structs.h.

When BCC compiles the program it describes every map's key and value type as
JSON; build.py saves those descriptions beside the running instance and this
module turns them back into ctypes types. The C header stays the only
definition of each struct.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

_SCALARS: dict[str, Any] = {
    "_Bool": ctypes.c_bool,
    "char": ctypes.c_char,
    "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short,
    "unsigned short": ctypes.c_ushort,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "long": ctypes.c_long,
    "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong,
}

# enum bpf_map_type values whose values are kept once per possible CPU.
PERCPU_MAP_TYPES = frozenset({5, 6, 10})  # percpu_hash, percpu_array, lru_percpu_hash


def ctype_from_desc(desc: Any) -> Any:
    """Builds the ctypes type for one of BCC's JSON type descriptions."""
    if isinstance(desc, str):
        return _SCALARS[desc]
    name, members = desc[0], desc[1]
    kind = desc[2] if len(desc) > 2 else "struct"
    fields = []
    for member in members:
        member_type = ctype_from_desc(member[1])
        if len(member) == 3 and isinstance(member[2], list):
            member_type = member_type * member[2][0]
        fields.append((member[0], member_type))
    base = ctypes.Union if kind == "union" else ctypes.Structure
    attrs: dict[str, Any] = {"_fields_": fields}
    if kind == "struct_packed":
        attrs["_pack_"] = 1
    return type(name or "anon", (base,), attrs)


@dataclass(frozen=True)
class MapLayout:
    """One map's name and its key/value type descriptions, as BCC gave them."""

    name: str
    key_desc: Any
    value_desc: Any

    @cached_property
    def key_type(self) -> Any:
        return ctype_from_desc(self.key_desc)

    @cached_property
    def value_type(self) -> Any:
        return ctype_from_desc(self.value_desc)


def save_layouts(layouts: dict[str, MapLayout], path: Path) -> None:
    data = {name: {"key": m.key_desc, "value": m.value_desc} for name, m in layouts.items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def load_layouts(path: Path) -> dict[str, MapLayout]:
    data = json.loads(path.read_text())
    return {name: MapLayout(name, d["key"], d["value"]) for name, d in data.items()}
