"""The stats page as HAProxy serves it at ``stats uri``: HTML for people and CSV
for tools (``;csv``, same format as the CLI's ``show stat``).

Pure renderers over a ``StatsRegistry``: no I/O, no clock. The CSV keeps HAProxy
2.6.12's exact header, column for column (129 columns including the ``-``
separator and the ssl/h2/h1 module columns), so existing parsers find every
column where they expect it. Columns pyxlb does not measure yet stay empty.
"""

from __future__ import annotations

from html import escape
from importlib import metadata

from pyxlb.stats.counters import (
    BackendStats,
    FrontendStats,
    ProxyStats,
    QueueTime,
    QueueView,
    StatsRegistry,
)

_HEADER_NAMES = (
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
    "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
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
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,"
    "h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,"
    "h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,"
    "h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,"
    "h1_spliced_bytes_out"
)
CSV_FIELDS: tuple[str, ...] = tuple(_HEADER_NAMES.split(","))

CSV_HEADER = "# " + ",".join(CSV_FIELDS) + ",\n"
"""The first line of HAProxy 2.6.12's CSV, byte for byte."""

_COL = {name: i for i, name in enumerate(CSV_FIELDS)}

try:
    _VERSION = metadata.version("pyxlb")
except metadata.PackageNotFoundError:  # running from a checkout that is not installed
    _VERSION = "unknown"

# HAProxy's `type` column.
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 0, 1, 2
# Relative process number; one process serves everything until workers exist.
_PID = "1"


def _row(values: dict[str, object]) -> str:
    cells = [""] * len(CSV_FIELDS)
    # The "-" column separates HAProxy's own columns from the modules' and reads
    # "-" on every row.
    cells[_COL["-"]] = "-"
    for name, value in values.items():
        cells[_COL[name]] = str(value)
    return ",".join(cells) + ",\n"


def _frontend_row(proxy: ProxyStats, fe: FrontendStats) -> str:
    return _row({
        "pxname": proxy.name, "svname": "FRONTEND", "stot": fe.connections,
        "bin": fe.bytes_in, "bout": fe.bytes_out,
        "ereq": fe.bad_requests, "status": "OPEN", "pid": _PID, "iid": proxy.iid, "sid": 0,
        "type": TYPE_FRONTEND, "req_tot": fe.requests, "mode": proxy.mode,
        "conn_tot": fe.connections, "intercepted": fe.intercepted,
    })


def _queue_cells(queue: QueueView | None, times: QueueTime, requests: int,
                 limit: str = "") -> dict[str, object]:
    """qcur, qmax, qlimit (a server's maxqueue, empty when unlimited), qtime and
    qtime_max, for a backend or server the l7 tier queues for."""
    if queue is None:
        return {}
    return {"qcur": queue.length, "qmax": queue.peak, "qlimit": limit,
            "qtime": times.average(requests), "qtime_max": times.top}


def _backend_rows(proxy: ProxyStats, be: BackendStats) -> list[str]:
    rows = [
        _row({
            "pxname": proxy.name, "svname": srv.name, "stot": srv.requests,
            "bin": srv.bytes_in, "bout": srv.bytes_out,
            "status": srv.status, "weight": srv.weight, "act": int(not srv.backup),
            "bck": int(srv.backup), "pid": _PID, "iid": proxy.iid, "sid": srv.sid,
            "lbtot": srv.requests, "type": TYPE_SERVER, "req_tot": srv.requests,
            "mode": proxy.mode, "uweight": srv.weight, "wretr": srv.retries,
            "wredis": srv.redispatches, "econ": srv.connect_errors,
            **_queue_cells(srv.queue, srv.queue_time, srv.requests, srv.maxqueue or ""),
        })
        for srv in be.servers
    ]
    weight = be.weight
    rows.append(_row({
        "pxname": proxy.name, "svname": "BACKEND", "stot": be.requests, "status": be.status,
        "bin": be.bytes_in, "bout": be.bytes_out,
        "weight": weight, "act": be.active_up, "bck": be.backup_up, "pid": _PID,
        "iid": proxy.iid, "sid": 0, "lbtot": be.lbtot, "type": TYPE_BACKEND,
        "req_tot": be.requests, "mode": proxy.mode, "uweight": weight,
        "wretr": be.retries, "wredis": be.redispatches, "econ": be.connect_errors,
        **_queue_cells(be.queue, be.queue_time, be.requests),
    }))
    return rows


def render_csv(registry: StatsRegistry) -> str:
    """HAProxy's CSV: the header, then per proxy FRONTEND, servers, BACKEND."""
    lines = [CSV_HEADER]
    for proxy in registry.proxies:
        if proxy.frontend is not None:
            lines.append(_frontend_row(proxy, proxy.frontend))
        if proxy.backend is not None:
            lines.extend(_backend_rows(proxy, proxy.backend))
    return "".join(lines)


_STYLE = """\
body { font-family: arial, helvetica, sans-serif; font-size: 12px; }
table.tbl { border-collapse: collapse; margin-bottom: 1em; }
table.tbl td, table.tbl th { border: 1px solid gray; padding: 2px 3px; }
table.tbl td { text-align: right; }
th.pxname { background: #b00040; color: #ffff40; text-align: left; }
tr.titre { background: #20D0D0; }
tr.frontend, tr.backend { background: #e8e8d0; }
tr.active_no_check, tr.backup_no_check { background: #e0e0e0; }
tr.active_up { background: #c0ffc0; }
tr.backup_up { background: #b0d0ff; }
tr.active_down, tr.backup_down { background: #ff9090; }
td.name, td.ac { text-align: left; }
"""

_TABLE_HEAD = (
    "<tr class=\"titre\"><th></th><th>Queue Cur</th><th>Queue Max</th><th>Queue Limit</th>"
    "<th>Status</th><th>Wght</th><th>Act</th><th>Bck</th>"
    "<th>Sessions total</th><th>LbTot</th><th>Requests</th></tr>\n"
)


def _queue_html(queue: QueueView | None, limit: object = "") -> tuple[object, ...]:
    """The Queue Cur/Max/Limit cells (empty for a frontend and where l7 does not queue)."""
    return ("", "", "") if queue is None else (queue.length, queue.peak, limit)


def _html_row(css: str, name: str, cells: tuple[object, ...], checkbox: str = "") -> str:
    """`checkbox`: the admin form's input before the name (HTML)."""
    tds = "".join(f"<td>{escape(str(c))}</td>" for c in cells)
    return (f"<tr class=\"{css}\"><td class=\"name\">{checkbox}{escape(name)}</td>"
            f"{tds}</tr>\n")


def _server_css(backup: bool, status: str, up: bool) -> str:
    side = "backup" if backup else "active"
    if status == "no check":
        return f"{side}_no_check"
    return f"{side}_up" if up else f"{side}_down"


_ADMIN_ACTIONS = (
    "<select name=action><option value=\"\"></option>"
    "<option value=\"ready\">Set state to READY</option>"
    "<option value=\"drain\">Set state to DRAIN</option>"
    "<option value=\"maint\">Set state to MAINT</option></select>"
)


def _html_table(proxy: ProxyStats, admin: bool = False) -> str:
    """`admin`: a checkbox per server and HAProxy's action form (`stats admin`)."""
    rows = []
    if proxy.frontend is not None:
        fe = proxy.frontend
        rows.append(_html_row("frontend", "Frontend",
                              ("", "", "", "OPEN", "", "", "", fe.connections, "",
                               fe.requests)))
    if proxy.backend is not None:
        be = proxy.backend
        for s in be.servers:
            checkbox = (f"<input class='{escape(proxy.name)}-checkbox' type=\"checkbox\" "
                        f"name=\"s\" value=\"{escape(s.name)}\"> " if admin else "")
            rows.append(_html_row(
                _server_css(s.backup, s.status, s.is_up), s.name,
                (*_queue_html(s.queue, s.maxqueue or ""), s.status, s.weight,
                 "-" if s.backup else "Y", "Y" if s.backup else "-",
                 s.requests, s.requests, s.requests), checkbox,
            ))
        rows.append(_html_row(
            "backend", "Backend",
            (*_queue_html(be.queue), be.status, be.weight, be.active_up, be.backup_up,
             be.requests, be.lbtot, be.requests),
        ))
    name = escape(proxy.name)
    table = (
        f"<table class=\"tbl\">\n<tr><th class=\"pxname\" colspan=11>"
        f"<a name=\"{name}\"></a>{name}</th></tr>\n{_TABLE_HEAD}{''.join(rows)}</table>\n"
    )
    if not admin or proxy.backend is None:
        return table
    return (f"<form method=\"post\">{table}Choose the action to perform on the checked "
            f"servers : {_ADMIN_ACTIONS}<input type=\"hidden\" name=\"b\" "
            f"value=\"#{proxy.iid}\">&nbsp;<input type=\"submit\" value=\"Apply\"></form>\n")


# The admin form's outcomes (`;st=CODE` after its 303), HAProxy's texts and classes.
ADMIN_MESSAGES = {
    "DONE": ("active_up", "Action processed successfully."),
    "NONE": ("active_up", "Nothing has changed."),
    "PART": ("active_down", "Action not processed or only partially processed."),
    "ERRP": ("active_down", "Action not processed because of invalid parameters."),
    "DENY": ("active_down", "Action denied."),
}


def render_html(registry: StatsRegistry, csv_uri: str | None = None, *,
                hide_version: bool = False, admin: bool = False,
                message: str | None = None, home: str = "/") -> str:
    """The human page: one table per proxy (frontend row, server rows, backend row).

    ``csv_uri`` adds a link to the CSV export of the same page; ``hide_version``
    leaves the version out (`stats hide-version`); ``admin`` adds the server action
    forms (`stats admin`); ``message`` is an ADMIN_MESSAGES code to show, with a
    link back to ``home`` that removes it.
    """
    link = (
        f"<p><a href=\"{escape(csv_uri)}\">CSV export</a></p>\n" if csv_uri is not None else ""
    )
    if message in ADMIN_MESSAGES:
        css, text = ADMIN_MESSAGES[message]
        link += (f"<p><div class={css}><a class=lfsb href=\"{escape(home)}\" "
                 f"title=\"Remove this message\">[X]</a> {text}</div>\n")
    tables = "".join(_html_table(p, admin) for p in registry.proxies)
    title = "pyxlb" if hide_version else f"pyxlb version {escape(_VERSION)}"
    return (
        "<!DOCTYPE html>\n<html><head><title>Statistics Report for pyxlb</title>\n"
        "<meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n"
        f"<style type=\"text/css\">\n{_STYLE}</style></head>\n<body>\n"
        f"<h1>{title}</h1>\n"
        f"<h2>Statistics Report</h2>\n{link}{tables}</body></html>\n"
    )
