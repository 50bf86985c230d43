"""The stats renderers: HAProxy 2.6.12's CSV column for column, and the HTML page."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.stats.counters import StatsRegistry, loop_ms
from pyxlb.stats.page import CSV_FIELDS, CSV_HEADER, render_csv, render_html

# The first line of `GET /haproxy?stats;csv` from Debian's haproxy 2.6.12.
HAPROXY_2_6_12_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,"
    "throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
    "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
    "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
    "agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,"
    "qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
)

CONFIG = """
defaults
    mode http
frontend http_front
    bind *:80
    stats uri /haproxy?stats
    default_backend http_back
backend http_back
    balance roundrobin
    server web1 10.0.0.1:80 check
    server web2 10.0.0.2:80 weight 3
    server spare 10.0.0.3:80 backup
listen both
    bind *:81
    server only 10.0.0.4:80
"""


def registry() -> StatsRegistry:
    config = parse_text(CONFIG)
    return StatsRegistry.build(config.frontends, config.backends)


def rows(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    out = []
    for line in lines[1:]:
        assert line.endswith(",")
        cells = line[:-1].split(",")
        assert len(cells) == len(CSV_FIELDS)
        out.append(dict(zip(CSV_FIELDS, cells, strict=True)))
    return out


def test_header_is_haproxys() -> None:
    assert CSV_HEADER == HAPROXY_2_6_12_HEADER
    assert render_csv(StatsRegistry()) == HAPROXY_2_6_12_HEADER


def test_row_order_frontend_servers_backend_per_proxy_in_declaration_order() -> None:
    got = [(r["pxname"], r["svname"], r["type"]) for r in rows(render_csv(registry()))]
    assert got == [
        ("http_front", "FRONTEND", "0"),
        ("http_back", "web1", "2"),
        ("http_back", "web2", "2"),
        ("http_back", "spare", "2"),
        ("http_back", "BACKEND", "1"),
        ("both", "FRONTEND", "0"),
        ("both", "only", "2"),
        ("both", "BACKEND", "1"),
    ]


def test_counters_and_known_columns() -> None:
    reg = registry()
    fe = reg.frontend("http_front")
    fe.connections, fe.requests, fe.intercepted, fe.bad_requests = 3, 12, 1, 1
    be = reg.backend("http_back")
    be.requests = 10
    be.server("web1").requests = 6
    be.server("web2").requests = 4
    fe.bytes_in, fe.bytes_out = 326, 6207
    be.bytes_in, be.bytes_out = 300, 6000
    be.server("web1").bytes_in, be.server("web1").bytes_out = 200, 5000
    by = {(r["pxname"], r["svname"]): r for r in rows(render_csv(reg))}

    front = by["http_front", "FRONTEND"]
    assert (front["stot"], front["req_tot"], front["conn_tot"]) == ("3", "12", "3")
    assert (front["intercepted"], front["ereq"], front["status"]) == ("1", "1", "OPEN")
    assert (front["pid"], front["iid"], front["sid"], front["mode"]) == ("1", "1", "0", "http")
    assert front["weight"] == front["act"] == front["bck"] == ""

    web1 = by["http_back", "web1"]
    assert (web1["stot"], web1["lbtot"], web1["status"]) == ("6", "6", "no check")
    assert (web1["weight"], web1["act"], web1["bck"], web1["sid"]) == ("1", "1", "0", "1")
    spare = by["http_back", "spare"]
    assert (spare["weight"], spare["act"], spare["bck"], spare["sid"]) == ("1", "0", "1", "3")

    back = by["http_back", "BACKEND"]
    # Weight and act count the active servers; bck the backups that are up.
    assert (back["stot"], back["lbtot"], back["status"]) == ("10", "10", "UP")
    assert (back["weight"], back["act"], back["bck"], back["iid"]) == ("4", "2", "1", "2")

    # Unknown columns stay empty; the separator column reads "-".
    assert web1["qcur"] == web1["dreq"] == web1["check_status"] == ""
    # Bytes in and out (HAProxy's HTX counts, l7.htx).
    assert [(r["bin"], r["bout"]) for r in (front, web1, back)] == [
        ("326", "6207"), ("200", "5000"), ("300", "6000")]
    assert web1["-"] == front["-"] == back["-"] == "-"


def test_backend_down_when_no_server_is_up() -> None:
    reg = registry()
    be = reg.backend("both")
    be.servers[0].status = "MAINT"
    back = next(r for r in rows(render_csv(reg)) if r["pxname"] == "both" and r["type"] == "1")
    assert (back["status"], back["act"], back["weight"]) == ("DOWN", "0", "0")


def test_html_has_one_table_per_proxy_with_every_row() -> None:
    reg = registry()
    reg.backend("http_back").server("web2").requests = 7
    page = render_html(reg, csv_uri="/haproxy?stats;csv")
    assert "<title>Statistics Report for pyxlb</title>" in page
    assert page.count("<table") == 3  # http_front, http_back, both
    for name in ("http_front", "http_back", "both", "web1", "web2", "spare", "only"):
        assert name in page
    assert "<td>7</td>" in page
    assert 'href="/haproxy?stats;csv"' in page


def test_html_escapes_names() -> None:
    reg = StatsRegistry.build([], [_Backend("a<b", [])])
    assert "a&lt;b" in render_html(reg) and "a<b" not in render_html(reg)


class _Backend:
    def __init__(self, name: str, servers: list[object]) -> None:
        self.name = name
        self.servers = servers


# HAProxy 2.6.12 in the lab, 8 requests to the backend (web2 answered them, web1 and
# backup1 none), 1 to the stats uri and 1 connection closed unused (counted as a
# bad request): its FRONTEND, web1 and BACKEND rows for this config.
LAB_CONFIG = """
defaults
    mode http
frontend http_front
    bind *:8080
    stats uri /haproxy?stats
    default_backend http_back
backend http_back
    balance roundrobin
    server web1 10.111.0.21:80
    server web2 10.111.0.22:80 weight 50
    server backup1 10.111.0.21:81 backup
"""
HAPROXY_ROWS = {
    "FRONTEND": "http_front,FRONTEND,,,0,2,9990,10,715,4760,0,0,1,,,,,OPEN,,,,,,,,,1,1,0,,,,"
    "0,10,0,10,,,,0,9,0,1,0,0,,10,10,10,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,10,10,10,1,0,0,"
    "0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,10,9,718,5118,0,0,",
    "web1": "http_back,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,0,,,1,2,1,,0,,2,0,,0,"
    ",,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,"
    "0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,",
    "BACKEND": "http_back,BACKEND,0,0,0,1,999,8,660,1504,0,0,,0,0,0,0,UP,51,2,1,,0,0,0,,1,2,"
    "0,,8,,1,8,,8,,,,0,8,0,0,0,0,,,,8,0,0,0,0,0,0,0,,,0,0,1,1,,,,,,,,,,,,,,http,,,,,,,,0,8,0,"
    "0,0,,,0,0,1,1,0,,,,,51,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,8,8,1608,636,0,0,",
}
# What HAProxy fills there and pyxlb leaves empty, because it does not measure it
# (yet): rates per second, times, session counts per server, check history,
# idle-connection gauges, the h1 mux's wire bytes, TLS figures of servers.
NOT_MEASURED = {
    "FRONTEND": {"slim", "h1_open_streams", "h1_bytes_in", "h1_bytes_out"},
    "web1": {"srv_icur", "idle_conn_cur",
             "safe_conn_cur", "used_conn_cur", "need_conn_est",
             "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"},
    "BACKEND": {"scur", "smax", "slim", "h1_open_connections", "h1_open_streams",
                "h1_total_connections", "h1_total_streams", "h1_bytes_in", "h1_bytes_out"},
}


class Queue:
    length = peak = 0


def lab_registry() -> StatsRegistry:
    """The lab's counters after the same traffic, as pyxlb's proxy counts them."""
    config = parse_text(LAB_CONFIG)
    reg = StatsRegistry.build(config.frontends, config.backends)
    fe = reg.frontend("http_front")
    fe.connections = fe.requests = 10
    fe.bad_requests, fe.intercepted, fe.peak = 1, 1, 2
    fe.bytes_in, fe.bytes_out = 715, 4760
    fe.hrsp[2], fe.hrsp[4] = 9, 1
    be = reg.backend("http_back")
    be.queue = Queue()
    be.requests, be.bytes_in, be.bytes_out, be.hrsp[2] = 8, 660, 1504, 8
    for srv in be.servers:
        srv.queue = Queue()
    web2 = be.server("web2")
    web2.requests, web2.bytes_in, web2.bytes_out, web2.hrsp[2], web2.connects = (
        8, 660, 1504, 8, 8)
    web2.peak = 1
    # All of it within one second (the rates), the last request just now, as
    # the proxies started (lastchg 0).
    reg.now = 100.0
    for slot in (be, *be.servers):
        slot.clock.last_change = 100
    for _ in range(10):
        fe.rate.hit(loop_ms(reg.now))
        fe.conn_rate.hit(loop_ms(reg.now))
        fe.req_rate.hit(loop_ms(reg.now))
    for slot in (be, web2):
        for _ in range(8):
            slot.session(reg.now)
        # %Tc 0, %Tr 1 and %Tt 1 ms each, as HAProxy measured the lab's requests.
        slot.connect_time.total, slot.response_time.total, slot.total_time.total = 0, 8, 8
        slot.response_time.top = slot.total_time.top = 1
    return reg


def test_the_columns_haproxy_fills_are_filled_but_the_unmeasured_ones() -> None:
    header = CSV_FIELDS
    ours = {r["svname"]: r for r in rows(render_csv(lab_registry()))}
    for svname, line in HAPROXY_ROWS.items():
        theirs = dict(zip(header, line.split(",")[:-1], strict=True))
        filled = {f for f, v in theirs.items() if v != ""}
        ours_filled = {f for f, v in ours[svname].items() if v != ""}
        assert filled - ours_filled == NOT_MEASURED[svname], svname
        assert ours_filled <= filled, svname  # nothing HAProxy leaves empty
        # Where both fill a column, the value is HAProxy's; but its h1 mux does not
        # count the connection closed unused as a stream, where its req_tot does.
        differ = {f: (theirs[f], ours[svname][f]) for f in filled & ours_filled
                  if theirs[f] != ours[svname][f]}
        assert differ == ({"h1_total_streams": ("9", "10")} if svname == "FRONTEND" else {})


def test_sessions_denied_responses_and_connections() -> None:
    reg = lab_registry()
    fe = reg.frontend("http_front")
    fe.current, fe.denied = 1, 2
    be = reg.backend("http_back")
    be.server("web1").connects, be.server("web1").reuses = 1, 3
    by = {r["svname"]: r for r in rows(render_csv(reg))}
    front = by["FRONTEND"]
    assert (front["scur"], front["smax"], front["dreq"], front["h1_open_connections"]) == (
        "1", "2", "2", "1")
    assert [front[f"hrsp_{c}"] for c in ("1xx", "2xx", "3xx", "4xx", "5xx", "other")] == [
        "0", "9", "0", "1", "0", "0"]
    assert (by["web1"]["connect"], by["web1"]["reuse"]) == ("1", "3")
    assert (by["BACKEND"]["connect"], by["BACKEND"]["reuse"]) == ("9", "3")


def test_failed_responses_and_aborts_show_on_backend_and_server_rows() -> None:
    """eresp, cli_abrt and srv_abrt: the backend's own counts (HAProxy's
    be_counters, not its servers' sum) and each server's; HAProxy's FRONTEND
    row leaves them empty, whatever its fe_counters hold."""
    reg = lab_registry()
    fe = reg.frontend("http_front")
    fe.client_aborts, fe.server_aborts = 7, 8
    be = reg.backend("http_back")
    be.failed_responses, be.client_aborts, be.server_aborts = 3, 4, 5
    web1 = be.server("web1")
    web1.failed_responses, web1.client_aborts, web1.server_aborts = 1, 2, 0
    by = {r["svname"]: r for r in rows(render_csv(reg))}
    cells = ("eresp", "cli_abrt", "srv_abrt")
    assert [by["FRONTEND"][c] for c in cells] == ["", "", ""]
    assert [by["BACKEND"][c] for c in cells] == ["3", "4", "5"]
    assert [by["web1"][c] for c in cells] == ["1", "2", "0"]
    assert [by["web2"][c] for c in cells] == ["0", "0", "0"]


def test_a_frontend_with_an_ssl_bind_leaves_its_tls_columns_to_be_measured() -> None:
    config = parse_text("frontend tls\n    mode http\n    bind *:443 ssl crt /x.pem\n"
                        "    maxconn 500\n")
    row = rows(render_csv(StatsRegistry.build(config.frontends, config.backends)))[0]
    assert row["ssl_sess"] == "" and row["h2_headers_rcvd"] == "0"
    assert row["slim"] == "500"


def test_a_backend_without_servers_is_up() -> None:
    config = parse_text("listen stats\n    mode http\n    bind *:8404\n    stats enable\n")
    back = rows(render_csv(StatsRegistry.build(config.frontends, config.backends)))[-1]
    assert (back["svname"], back["status"]) == ("BACKEND", "UP")


def test_html_shows_bytes_and_the_csv_columns() -> None:
    page = render_html(lab_registry())
    assert "<th colspan=2>Bytes</th>" in page
    assert "<th>In</th><th>Out</th>" in page
    # web2's row: queue, sessions (now, at most, no limit, total and lbtot 8),
    # bytes 660 in, 1504 out.
    assert ('<td class="name">web2</td><td>0</td><td>0</td><td></td><td>0</td><td>1</td>'
            '<td></td><td>8</td><td>8</td><td>660</td><td>1504</td>') in page
