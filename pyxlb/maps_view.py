"""Text and JSON views of a running instance's maps, for `pyxlb maps`."""

from __future__ import annotations

import ctypes
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyxlb.datapath.instance import Instance, InstanceError
from pyxlb.datapath.maps import BpfMap


@contextmanager
def open_map(instance: Instance, name: str) -> Iterator[BpfMap]:
    layouts = instance.layouts()
    if name not in layouts:
        raise InstanceError(f"instance {instance.name} has no map {name!r} "
                            f"(maps: {', '.join(sorted(layouts))})")
    with BpfMap.open_pinned(str(instance.pin_dir / name), layouts[name]) as bpf_map:
        yield bpf_map


def list_maps(instance: Instance) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(instance.layouts()):
        with open_map(instance, name) as m:
            rows.append({
                "name": name,
                "type": m.type_name,
                "key_size": ctypes.sizeof(m.layout.key_type),
                "value_size": ctypes.sizeof(m.layout.value_type),
                "max_entries": m.max_entries,
                "entries": len(m),
            })
    return rows


def map_entries(instance: Instance, name: str, address: str | None = None) -> list[dict]:
    with open_map(instance, name) as m:
        entries = [{"key": k, "value": v} for k, v in m.decoded_items()]
    if address:
        entries = [e for e in entries if isinstance(e["key"], dict)
                   and e["key"].get("addr") == address]
    return entries


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if value is None:
        return "-"
    return str(value)


def format_entries(entries: list[dict], as_json: bool) -> str:
    if as_json:
        return json.dumps(entries, indent=1)
    if not entries:
        return "(no entries)"
    return "\n".join(f"{_flat(e['key'])}  {_flat(e['value'])}" for e in entries)


def _entry_id(entry: dict) -> str:
    return json.dumps(entry["key"], sort_keys=True)


def with_rates(previous: list[dict], current: list[dict], seconds: float) -> list[dict]:
    """Current entries with a per-second rate beside every counter that grew
    since `previous` (matched by key); for `pyxlb maps watch`."""
    before = {_entry_id(e): e["value"] for e in previous}
    out = []
    for entry in current:
        old = before.get(_entry_id(entry), {})
        value = dict(entry["value"])
        for name, now in entry["value"].items():
            last = old.get(name)
            if isinstance(now, int) and isinstance(last, int) and now > last and seconds > 0:
                value[f"{name}/s"] = round((now - last) / seconds, 1)
        out.append({"key": entry["key"], "value": value})
    return out
