"""pyxlb.l7.stick over the real src_track map (the program's companion entry
writes it, as in the daemon): what `http-request track-sc0 src` and the
sc0_*/src_* fetches do to and read from a source's entry."""

from __future__ import annotations

from ipaddress import ip_address

from pyxlb.config.fetches import counter_ref
from pyxlb.config.model import StickTable, StoreItem
from pyxlb.config.rules import TrackSc
from pyxlb.datapath.params import DpParams
from pyxlb.l7.rules.acl import RequestView
from pyxlb.l7.stick import StickCounters

TABLE = StickTable(type="ip", size=1024, expire_ms=60_000,
                   store=(StoreItem(name="conn_rate", period_ms=3000), StoreItem(name="gpc0")),
                   where=None)
TRACK = TrackSc(counter=0, key=None, table="fe")


def counters(xdp) -> StickCounters:
    xdp.set_params(DpParams.for_stick_table(TABLE, tracked_ports_only=True))
    return StickCounters(xdp.src_track, TABLE)


def request(src: str | None = "10.111.0.10") -> RequestView:
    return RequestView(b"GET", b"/", src=None if src is None else ip_address(src))


def fetch(stick: StickCounters, name: str, view: RequestView) -> int | None:
    return stick.fetch(counter_ref(name), None, view)


def test_each_tracked_request_is_a_stream_of_its_source(xdp):
    stick = counters(xdp)
    for n in (1, 2, 3):
        view = request()
        stick.track(TRACK, view)
        assert fetch(stick, "sc0_conn_rate", view) == n
        assert fetch(stick, "sc0_conn_cnt", view) == n
        stick.finish(view, 200)
    entry = xdp.src_track.get("10.111.0.10")
    assert (entry.conn_cnt, entry.http_req_cnt, entry.http_err_cnt) == (3, 3, 0)
    assert entry.conn_cur == 0  # the table does not store conn_cur: never counted


def test_sc0_without_a_track_has_no_sample_and_src_reads_create_nothing(xdp):
    stick = counters(xdp)
    view = request()
    assert fetch(stick, "sc0_conn_rate", view) is None
    assert fetch(stick, "src_get_gpc0", view) == 0
    assert xdp.src_track.get("10.111.0.10") is None
    assert fetch(stick, "src_inc_gpc0", view) == 1  # ... except src_inc_gpc0
    assert xdp.src_track.get("10.111.0.10").gpc0 == 1
    stick.finish(view, 404)  # not tracked: no error counted
    assert xdp.src_track.get("10.111.0.10").http_err_cnt == 0


def test_inc_gpc0_answers_the_new_value_and_errors_count_4xx_only(xdp):
    stick = counters(xdp)
    view = request()
    stick.track(TRACK, view)
    assert fetch(stick, "sc0_inc_gpc0", view) == 1
    assert fetch(stick, "src_get_gpc0", view) == 1
    stick.finish(view, 403)
    for status in (200, 302, 404, 503):
        view = request()
        stick.track(TRACK, view)
        stick.finish(view, status)
    assert xdp.src_track.get("10.111.0.10").http_err_cnt == 2  # the 403 and the 404


def test_a_request_without_a_source_address_is_not_tracked(xdp):
    stick = counters(xdp)
    view = request(None)
    stick.track(TRACK, view)
    assert fetch(stick, "sc0_conn_cnt", view) is None
    assert list(xdp.src_track.entries()) == []


def test_a_tarpit_counts_as_an_http_error_whatever_its_status(xdp):
    stick = counters(xdp)
    view = request()
    stick.track(TRACK, view)
    stick.finish(view, 500, error=True)  # `http-request tarpit`: 500 by default
    assert xdp.src_track.get("10.111.0.10").http_err_cnt == 1
