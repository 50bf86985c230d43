"""The stats page as HAProxy serves it at ``stats uri``: HTML for people and CSV
for tools (``;csv``, same format as the CLI's ``show stat``).

Pure renderers over a ``StatsRegistry``: no I/O, no clock. The CSV keeps HAProxy
2.6.12's exact header, column for column (129 columns including the ``-``
separator and the ssl/h2/h1 module columns), so existing parsers find every
column where they expect it. One table of columns: ``frontend_fields``,
``server_fields`` and ``backend_fields`` give a row by CSV column, for the CSV
(and so the runtime API's `show stat`) and the HTML alike. Columns of features
pyxlb does not have read 0, as HAProxy's do where they are unused; columns pyxlb
does not measure yet stay empty. Rates and lastsess are read as
of the registry's ``now`` (set when the figures are taken), not a clock here.
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
    ServerStats,
    StatsRegistry,
    loop_ms,
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


# Columns of features pyxlb does not have (compression, cache, HTTP/2, header
# rewrites that fail, internal errors, tcp-request session rules): HAProxy fills
# them, and 0 is the truth here. ``_TLS_ZERO``: a proxy without an ssl bind.
_H2 = tuple(name for name in CSV_FIELDS if name.startswith("h2_"))
_COMP = ("comp_in", "comp_out", "comp_byp", "comp_rsp")
_CACHE = ("cache_lookups", "cache_hits")
_TLS_ZERO = ("ssl_sess", "ssl_reused_sess", "ssl_failed_handshake")
_FRONTEND_ZERO = ("dresp", "rate_lim", *_COMP, "dcon", "dses", "wrew", *_CACHE, "eint", *_H2,
                  "h1_spliced_bytes_in", "h1_spliced_bytes_out")
# HAProxy 2.6's CSV writes its agg_* gauges as 0 (only its exporter counts
# servers per state there).
_AGG = ("agg_server_status", "agg_server_check_status", "agg_check_status")
_BACKEND_ZERO = ("dresp", *_COMP, "wrew", *_CACHE, "eint", *_H2,
                 "h1_spliced_bytes_in", "h1_spliced_bytes_out", *_AGG)
_SERVER_ZERO = ("dresp", "wrew", "eint")
_HRSP = ("hrsp_other", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx")


def _zeros(names: tuple[str, ...]) -> dict[str, object]:
    return dict.fromkeys(names, 0)


def _hrsp_cells(hrsp: list[int]) -> dict[str, object]:
    return dict(zip(_HRSP, hrsp, strict=True))


def _row(values: dict[str, object]) -> str:
    cells = [""] * len(CSV_FIELDS)
    # The "-" column separates HAProxy's own columns from the modules' and reads
    # "-" on every row.
    cells[_COL["-"]] = "-"
    for name, value in values.items():
        cells[_COL[name]] = str(value)
    return ",".join(cells) + ",\n"


def _since(now: float, last: int) -> int:
    """lastsess: seconds since the last session, -1 if none."""
    return int(now) - last if last else -1


def _time_cells(slot: ServerStats | BackendStats, mode: str) -> dict[str, object]:
    """ctime, rtime, ttime and their maxima; rtime only in http mode, as HAProxy."""
    n = slot.requests
    cells: dict[str, object] = {
        "ctime": slot.connect_time.average(n), "ttime": slot.total_time.average(n),
        "ctime_max": slot.connect_time.top, "ttime_max": slot.total_time.top,
    }
    if mode == "http":
        cells["rtime"] = slot.response_time.average(n)
        cells["rtime_max"] = slot.response_time.top
    return cells


def frontend_fields(proxy: ProxyStats, fe: FrontendStats, now: float = 0.0) -> dict[str, object]:
    """A FRONTEND row, by CSV column: what the CSV, `show stat` and the HTML show;
    rates as of ``now`` (loop clock, seconds: `StatsRegistry.now`)."""
    ms = loop_ms(now)
    return {
        "rate": fe.rate.read(ms), "rate_max": fe.rate.top,
        "req_rate": fe.req_rate.read(ms), "req_rate_max": fe.req_rate.top,
        "conn_rate": fe.conn_rate.read(ms), "conn_rate_max": fe.conn_rate.top,
        **_zeros(_FRONTEND_ZERO), **({} if proxy.tls else _zeros(_TLS_ZERO)),
        "pxname": proxy.name, "svname": "FRONTEND", "scur": fe.current, "smax": fe.peak,
        "slim": proxy.maxconn or "", "stot": fe.connections,
        "bin": fe.bytes_in, "bout": fe.bytes_out, "dreq": fe.denied,
        "ereq": fe.bad_requests, "status": "OPEN", "pid": _PID, "iid": proxy.iid, "sid": 0,
        "type": TYPE_FRONTEND, **_hrsp_cells(fe.hrsp), "req_tot": fe.requests,
        "mode": proxy.mode, "conn_tot": fe.connections, "intercepted": fe.intercepted,
        "h1_open_connections": fe.current, "h1_total_connections": fe.connections,
        "h1_total_streams": fe.requests,
    }


def _queue_cells(queue: QueueView | None, times: QueueTime, requests: int,
                 limit: str = "") -> dict[str, object]:
    """qcur, qmax, qlimit (a server's maxqueue, empty when unlimited), qtime and
    qtime_max, for a backend or server the l7 tier queues for."""
    if queue is None:
        return {}
    return {"qcur": queue.length, "qmax": queue.peak, "qlimit": limit,
            "qtime": times.average(requests), "qtime_max": times.top}


def server_fields(proxy: ProxyStats, srv: ServerStats, now: float = 0.0) -> dict[str, object]:
    """A server row, by CSV column."""
    return {
        "rate": srv.rate.read(loop_ms(now)), "rate_max": srv.rate.top,
        "lastsess": _since(now, srv.last_session), **_time_cells(srv, proxy.mode),
        **_zeros(_SERVER_ZERO),
        "pxname": proxy.name, "svname": srv.name, "stot": srv.requests,
        "bin": srv.bytes_in, "bout": srv.bytes_out,
        "status": srv.status, "weight": srv.weight, "act": int(not srv.backup),
        "bck": int(srv.backup), "pid": _PID, "iid": proxy.iid, "sid": srv.sid,
        "lbtot": srv.requests, "type": TYPE_SERVER, **_hrsp_cells(srv.hrsp),
        "req_tot": srv.requests, "mode": proxy.mode, "uweight": srv.weight,
        "wretr": srv.retries, "wredis": srv.redispatches, "econ": srv.connect_errors,
        "eresp": srv.failed_responses, "cli_abrt": srv.client_aborts,
        "srv_abrt": srv.server_aborts, "connect": srv.connects, "reuse": srv.reuses,
        "scur": srv.current,
        "smax": srv.peak,
        **_queue_cells(srv.queue, srv.queue_time, srv.requests, srv.maxqueue or ""),
        "slim": srv.maxconn or "", "lastchg": srv.clock.lastchg(int(now)),
        **({"downtime": srv.clock.downtime(int(now))} if srv.checked else {}),
        **srv.check_cells,
    }


def backend_fields(proxy: ProxyStats, be: BackendStats, now: float = 0.0) -> dict[str, object]:
    """A BACKEND row, by CSV column."""
    weight = be.weight
    return {
        "rate": be.rate.read(loop_ms(now)), "rate_max": be.rate.top,
        "lastsess": _since(now, be.last_session), **_time_cells(be, proxy.mode),
        **_zeros(_BACKEND_ZERO), **({} if proxy.tls else _zeros(_TLS_ZERO)),
        "pxname": proxy.name, "svname": "BACKEND", "stot": be.requests, "status": be.status,
        "dreq": be.denied,
        "bin": be.bytes_in, "bout": be.bytes_out,
        "weight": weight, "act": be.active_up, "bck": be.backup_up, "pid": _PID,
        "iid": proxy.iid, "sid": 0, "lbtot": be.lbtot, "type": TYPE_BACKEND,
        **_hrsp_cells(be.hrsp), "req_tot": be.requests, "mode": proxy.mode,
        "uweight": weight, "wretr": be.retries, "wredis": be.redispatches,
        "econ": be.connect_errors, "eresp": be.failed_responses,
        "cli_abrt": be.client_aborts, "srv_abrt": be.server_aborts,
        "connect": sum(s.connects for s in be.servers),
        "reuse": sum(s.reuses for s in be.servers),
        **_queue_cells(be.queue, be.queue_time, be.requests),
        "chkdown": be.clock.down_transitions, "lastchg": be.clock.lastchg(int(now)),
        **({"downtime": be.clock.downtime(int(now))} if be.servers else {}),
    }


def render_csv(registry: StatsRegistry) -> str:
    """HAProxy's CSV: the header, then per proxy FRONTEND, servers, BACKEND."""
    lines = [CSV_HEADER]
    now = registry.now
    for proxy in registry.proxies:
        if proxy.frontend is not None:
            lines.append(_row(frontend_fields(proxy, proxy.frontend, now)))
        if proxy.backend is not None:
            be = proxy.backend
            lines.extend(_row(server_fields(proxy, srv, now)) for srv in be.servers)
            lines.append(_row(backend_fields(proxy, be, now)))
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
tr.active_draining, tr.backup_draining { background: #20a0ff; }
td.name, td.ac { text-align: left; }
"""

# The HTML table: HAProxy's column groups, each column the CSV column it shows
# (the same values as the CSV: one table of columns).
_HTML_COLUMNS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Queue", (("Cur", "qcur"), ("Max", "qmax"), ("Limit", "qlimit"))),
    ("Sessions", (("Cur", "scur"), ("Max", "smax"), ("Limit", "slim"), ("Total", "stot"),
                  ("LbTot", "lbtot"))),
    ("Bytes", (("In", "bin"), ("Out", "bout"))),
    ("Denied", (("Req", "dreq"), ("Resp", "dresp"))),
    ("Errors", (("Req", "ereq"), ("Conn", "econ"), ("Resp", "eresp"))),
    ("Warnings", (("Retr", "wretr"), ("Redis", "wredis"))),
    ("Server", (("Status", "status"), ("LastChk", "last_chk"), ("Wght", "weight"),
                ("Act", "act"), ("Bck", "bck"), ("Chk", "chkfail"), ("Dwn", "chkdown"),
                ("Dwntme", "downtime"))),
)
_HTML_FIELDS = tuple(field for _, cols in _HTML_COLUMNS for _, field in cols)

_TABLE_HEAD = (
    "<tr class=\"titre\"><th rowspan=2></th>"
    + "".join(f"<th colspan={len(cols)}>{group}</th>" for group, cols in _HTML_COLUMNS)
    + "</tr>\n<tr class=\"titre\">"
    + "".join(f"<th>{label}</th>" for _, cols in _HTML_COLUMNS for label, _ in cols)
    + "</tr>\n"
)


def human_time(seconds: int) -> str:
    """HAProxy's human_time (tools.c): at most two units, `0s` for none, e.g.
    `5s`, `1m5s`, `2h3m`, `1d2h`, `2d5s`."""
    out, left = "", 2
    if seconds >= 86400:
        out, left = f"{seconds // 86400}d", 1
    for unit, value in (("h", seconds % 86400 // 3600), ("m", seconds % 3600 // 60)):
        if left and value:
            out, left = f"{out}{value}{unit}", left - 1
    if (left and seconds % 60) or not seconds:
        out += f"{seconds % 60}s"
    return out


def _html_health(fields: dict[str, object]) -> dict[str, object]:
    """The Server group's cells as HAProxy's page writes them: the status after
    the time since its last change (`5s UP`), the last check as `L7OK/200 in 1ms`,
    the downtime as a human time."""
    shown = {"status": f"{human_time(int(fields['lastchg']))} {fields['status']}"}
    if "check_status" in fields:
        code = f"/{fields['check_code']}" if "check_code" in fields else ""
        took = (f" in {fields['check_duration']}ms" if "check_duration" in fields else "")
        shown["last_chk"] = f"{fields['check_status']}{code}{took}"
    else:
        shown["last_chk"] = ""
    if "downtime" in fields:
        shown["downtime"] = human_time(int(fields["downtime"]))
    return {**fields, **shown}


def _html_row(css: str, name: str, fields: dict[str, object], checkbox: str = "") -> str:
    """`fields`: the row by CSV column; `checkbox`: the admin form's input before
    the name (HTML)."""
    tds = "".join(f"<td>{escape(str(fields.get(f, '')))}</td>" for f in _HTML_FIELDS)
    return (f"<tr class=\"{css}\"><td class=\"name\">{checkbox}{escape(name)}</td>"
            f"{tds}</tr>\n")


def _server_css(backup: bool, status: str, up: bool) -> str:
    side = "backup" if backup else "active"
    if status == "no check":
        return f"{side}_no_check"
    if status.startswith("DRAIN"):
        return f"{side}_draining"
    return f"{side}_up" if up else f"{side}_down"


_ADMIN_ACTIONS = (
    "<select name=action><option value=\"\"></option>"
    "<option value=\"ready\">Set state to READY</option>"
    "<option value=\"drain\">Set state to DRAIN</option>"
    "<option value=\"maint\">Set state to MAINT</option></select>"
)


def _html_table(proxy: ProxyStats, admin: bool = False, now: float = 0.0) -> str:
    """`admin`: a checkbox per server and HAProxy's action form (`stats admin`);
    figures as of `now` (StatsRegistry.now)."""
    rows = []
    if proxy.frontend is not None:
        rows.append(_html_row("frontend", "Frontend",
                              frontend_fields(proxy, proxy.frontend, now)))
    if proxy.backend is not None:
        be = proxy.backend
        for s in be.servers:
            checkbox = (f"<input class='{escape(proxy.name)}-checkbox' type=\"checkbox\" "
                        f"name=\"s\" value=\"{escape(s.name)}\"> " if admin else "")
            # HAProxy marks a server active or backup with Y and -.
            fields = {**_html_health(server_fields(proxy, s, now)),
                      "act": "-" if s.backup else "Y", "bck": "Y" if s.backup else "-"}
            rows.append(_html_row(_server_css(s.backup, s.status, s.is_up), s.name, fields,
                                  checkbox))
        rows.append(_html_row("backend", "Backend",
                              _html_health(backend_fields(proxy, be, now))))
    name = escape(proxy.name)
    table = (
        f"<table class=\"tbl\">\n<tr><th class=\"pxname\" colspan={len(_HTML_FIELDS) + 1}>"
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
    tables = "".join(_html_table(p, admin, registry.now) for p in registry.proxies)
    title = "pyxlb" if hide_version else f"pyxlb version {escape(_VERSION)}"
    return (
        "<!DOCTYPE html>\n<html><head><title>Statistics Report for pyxlb</title>\n"
        "<meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n"
        f"<style type=\"text/css\">\n{_STYLE}</style></head>\n<body>\n"
        f"<h1>{title}</h1>\n"
        f"<h2>Statistics Report</h2>\n{link}{tables}</body></html>\n"
    )
