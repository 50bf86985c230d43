"""Pure formatting behind `pyxlb maps`: tables, entries, watch rates."""

from __future__ import annotations

import json

from pyxlb.maps_view import format_entries, format_table, with_rates


def entry(addr: str, **value) -> dict:
    return {"key": {"addr": addr}, "value": value}


def test_rates_appear_only_for_counters_that_grew():
    before = [entry("10.0.0.1", packets=10, syns=2, last_syn_ago_s=0.5)]
    after = [entry("10.0.0.1", packets=30, syns=2, last_syn_ago_s=0.1),
             entry("10.0.0.2", packets=5, syns=1, last_syn_ago_s=0.2)]
    rated = with_rates(before, after, 2.0)
    assert rated[0]["value"] == {"packets": 30, "packets/s": 10.0, "syns": 2,
                                 "last_syn_ago_s": 0.1}
    assert "packets/s" not in rated[1]["value"]


def test_entries_print_one_line_each_or_json():
    entries = [entry("10.0.0.1", packets=3, last_syn_ago_s=None)]
    assert format_entries(entries, False) == "addr=10.0.0.1  packets=3 last_syn_ago_s=-"
    assert json.loads(format_entries(entries, True)) == entries
    assert format_entries([], False) == "(no entries)"


def test_table_columns_line_up():
    text = format_table([{"name": "src_stats", "entries": 12}, {"name": "x", "entries": 1}])
    assert text.splitlines() == ["NAME       ENTRIES", "src_stats  12", "x          1"]
