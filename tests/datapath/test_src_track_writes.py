"""What the l7 tier writes into src_track (through pyxlb_src_track_apply) and
reads back, on the entry XDP counts into."""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyxlb.datapath import loader, params
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.maps import BpfMap
from pyxlb.datapath.params import DpParams
from pyxlb.datapath.src_track import SrcTrack

CLIENT = "10.111.0.10"
CLIENT6 = "fd00:111::10"
T0 = 1_000_000
TABLE = DpParams(expire_ms=120_000, conn_rate_period=3_000, http_req_rate_period=10_000,
                 http_err_rate_period=5_000, gpc0_rate_period=60_000, now_ms_override=T0)


def syn(src: str = CLIENT) -> bytes:
    return bytes(Ether() / IP(src=src, dst="10.111.0.2") / TCP(dport=80, flags="S"))


def test_inc_gpc0_answers_the_new_value(xdp):
    xdp.set_params(TABLE)
    assert [xdp.src_track.inc_gpc0(CLIENT) for _ in range(3)] == [1, 2, 3]
    assert xdp.src_track.get(CLIENT).gpc0_rate == 3


def test_requests_and_errors_count_with_their_rates(xdp):
    xdp.set_params(TABLE)
    track = xdp.src_track
    for _ in range(4):
        track.bump_http_request(CLIENT6)
    entry = track.bump_http_error(CLIENT6)
    assert (entry.http_req_cnt, entry.http_req_rate) == (4, 4)
    assert (entry.http_err_cnt, entry.http_err_rate) == (1, 1)
    assert (entry.conn_cnt, entry.gpc0, entry.expire_in_ms) == (0, 0, 120_000)


def test_a_rate_the_table_does_not_store_is_neither_kept_nor_read(xdp):
    xdp.set_params(TABLE.replace(http_req_rate_period=0))
    entry = xdp.src_track.bump_http_request(CLIENT)
    assert (entry.http_req_cnt, entry.http_req_rate) == (1, None)
    assert entry.counters["http_req_rate"].curr_ctr == 0


def test_l7_and_xdp_write_the_same_entry(xdp):
    xdp.set_params(TABLE.replace(count_syns=True))
    xdp.run(syn())
    xdp.src_track.track_connection(CLIENT)  # `http-request track-sc0 src`
    xdp.src_track.bump_http_request(CLIENT)
    entry = xdp.src_track.get(CLIENT)
    assert (entry.conn_cnt, entry.conn_rate, entry.conn_cur, entry.http_req_cnt) == (2, 2, 1, 1)
    assert len(xdp.maps["src_track"]) == 1


def test_entries_list_live_sources_only(xdp):
    dp = TABLE.replace(expire_ms=1_000)
    xdp.set_params(dp)
    xdp.src_track.bump_http_request(CLIENT)
    xdp.set_params(dp.replace(now_ms_override=T0 + 600))
    xdp.src_track.bump_http_request(CLIENT6)
    assert sorted(e.src for e in xdp.src_track.entries()) == [CLIENT, CLIENT6]
    xdp.set_params(dp.replace(now_ms_override=T0 + 1_000))
    assert [e.src for e in xdp.src_track.entries()] == [CLIENT6]


def test_clearing_a_key_forgets_it(xdp):
    xdp.set_params(TABLE)
    xdp.src_track.inc_gpc0(CLIENT)
    assert xdp.src_track.delete(CLIENT)
    assert xdp.src_track.get(CLIENT) is None
    assert not xdp.src_track.delete(CLIENT)


def test_a_running_instance_is_reached_through_its_pins():
    # Built and pinned as `pyxlb up` does, never attached to an interface.
    if os.geteuid() != 0:
        pytest.skip("pinning BPF objects needs root")
    instance = Instance(f"pyxlbtest{os.getpid()}")
    try:
        loader.build(instance, src_track_size=1_024)
        layouts = instance.layouts()
        with BpfMap.open_pinned(str(instance.pin_dir / "dp_params"),
                                layouts["dp_params"]) as params_map:
            params.write(params_map, TABLE)
        with SrcTrack.open(instance) as track:
            assert track.table.max_entries == 1_024
            assert track.inc_gpc0(CLIENT) == 1
            assert track.get(CLIENT).gpc0 == 1
    finally:
        loader.unload(instance)
    assert not instance.pin_dir.exists()


def test_a_new_table_size_recreates_the_pinned_map(capsys):
    if os.geteuid() != 0:
        pytest.skip("pinning BPF objects needs root")
    instance = Instance(f"pyxlbtest{os.getpid()}")
    try:
        loader.build(instance, src_track_size=1_024)
        loader.build(instance, src_track_size=2_048)
        with SrcTrack.open(instance) as track:
            assert track.table.max_entries == 2_048
    finally:
        loader.unload(instance)
    assert ("pyxlb: warning: pinned map src_track changed (max_entries 1024 -> 2048): "
            "recreated, its entries are lost") in capsys.readouterr().err
