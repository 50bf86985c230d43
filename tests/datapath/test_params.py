"""dp_params: from a config's stick-table, checked, and round-tripped through the map."""

from __future__ import annotations

import pytest

from pyxlb.config import StickTable, Where
from pyxlb.config.model import StoreItem
from pyxlb.datapath import params
from pyxlb.datapath.params import DpParams


def table(*store: StoreItem, expire_ms: int | None = 120_000) -> StickTable:
    return StickTable(type="ip", size=204_800, expire_ms=expire_ms, store=store,
                      where=Where("haproxy.cfg", 3))


def rate(name: str, period_ms: int) -> StoreItem:
    return StoreItem(name=name, period_ms=period_ms)


def test_periods_and_expire_come_from_the_stick_table():
    # stick-table type ip size 200k expire 2m store conn_rate(3s),gpc0,http_err_rate(5s)
    dp = DpParams.for_stick_table(
        table(rate("conn_rate", 3_000), StoreItem(name="gpc0"), rate("http_err_rate", 5_000)),
        count_syns=True, conn_rate_gt=60)
    assert dp == DpParams(expire_ms=120_000, conn_rate_period=3_000, http_err_rate_period=5_000,
                          count_syns=True, conn_rate_gt=60)
    assert dp.period("http_req_rate") == 0


def test_a_table_without_expire_keeps_entries_for_good():
    assert DpParams.for_stick_table(table(StoreItem(name="gpc0"), expire_ms=None)).expire_ms == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"conn_rate_gt": 10}, "does not store conn_rate"),
    ({"http_err_rate_gt": 10}, "does not store http_err_rate"),
    ({"conn_rate_period": 1 << 31}, "conn_rate_period=2147483648: a period is"),
    ({"gpc0_gt": -1}, "gpc0_gt=-1: out of range"),
    ({"expire_ms": 1 << 32}, "expire_ms=4294967296: out of range"),
    ({"track_frontend": 64}, "track_frontend=64: a tracked frontend's number"),
])
def test_impossible_parameters_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        DpParams(**fields)


def test_parameters_round_trip_through_the_map(xdp):
    table_map = xdp.maps["dp_params"]
    assert params.read(table_map) == DpParams()  # all zero: nothing counted or enforced
    dp = DpParams(expire_ms=120_000, conn_rate_period=3_000, http_err_rate_period=5_000,
                  gpc0_rate_period=1_000, count_syns=True, conn_rate_gt=0, gpc0_gt=0,
                  src_rules=True, track_frontend=0, now_ms_override=42)
    params.write(table_map, dp)
    assert params.read(table_map) == dp
    raw = table_map.lookup(table_map.layout.key_type(0))
    assert (raw.reject_conn_rate, raw.reject_http_err_rate, raw.reject_gpc0) == (1, 0, 1)
    assert (raw.src_rules, raw.track_frontend) == (1, 1)  # 0 in the map: every frontend
