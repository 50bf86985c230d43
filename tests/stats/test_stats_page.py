"""The stats renderers: HAProxy 2.6.12's CSV column for column, and the HTML page."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.stats.counters import StatsRegistry
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
