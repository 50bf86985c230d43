"""The sample fetches pyxlb knows: what each returns, when it is available, its arguments,
and whether the kernel tier can evaluate it.

ACL criteria are either a fetch (`src`, `req.hdr(host)`) or one of HAProxy's ACL
keywords, a fetch with a match method (`hdr_end(host)` is `req.hdr(host) -m end`).
Stick-counter fetches are built from the counters a stick table can store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyxlb.config.conditions import MatchMethod

SampleType = Literal["str", "int", "ip", "bool", "meth"]
# When a fetch has a value, the earliest first:
# "connection" from `tcp-request connection` on (addresses, per-source counters);
# "session" once the TLS handshake is done (`ssl_fc`); "request" once an HTTP request
# has been parsed; "internal" whenever asked (tracked counters, constants).
Stage = Literal["connection", "session", "request", "internal"]
ArgKind = Literal["str", "int", "table", "userlist"]
_STAGES: tuple[Stage, ...] = ("internal", "connection", "session", "request")


def available(stage: Stage, at: Stage) -> bool:
    """Whether a fetch of `stage` has a value at `at` (a rule's place)."""
    return _STAGES.index(stage) <= _STAGES.index(at)


@dataclass(frozen=True, slots=True)
class FetchSpec:
    name: str
    type: SampleType
    stage: Stage
    args: tuple[ArgKind, ...] = ()
    required: int = 0  # how many of `args` must be given
    kernel: bool = False  # the XDP tier can evaluate it

    @property
    def default_method(self) -> MatchMethod:
        return _DEFAULT_METHODS[self.type]

    def usage(self) -> str:
        if not self.args:
            return self.name
        names = {"str": "name", "int": "occurrence", "table": "table", "userlist": "userlist"}
        required = ",".join(names[a] for a in self.args[:self.required])
        optional = "".join(f"[,{names[a]}]" for a in self.args[self.required:])
        if not required:
            optional = optional.replace("[,", "[", 1)
        return f"{self.name}({required}{optional})"


_DEFAULT_METHODS: dict[SampleType, MatchMethod] = {
    "str": "str", "int": "int", "ip": "ip", "bool": "bool", "meth": "meth"}

# Data a stick table can store (the list): name -> whether it takes a period.
STORE_TYPES = {"conn_cnt": False, "conn_cur": False, "conn_rate": True, "http_req_cnt": False,
               "http_req_rate": True, "http_err_cnt": False, "http_err_rate": True,
               "gpc0": False, "gpc0_rate": True}
# HAProxy's other stick-table data types.
UNSUPPORTED_STORE_TYPES = frozenset({
    "server_id", "server_key", "server_name", "gpt0", "gpt", "gpc", "gpc_rate", "gpc1",
    "gpc1_rate", "sess_cnt", "sess_rate", "bytes_in_cnt", "bytes_in_rate", "bytes_out_cnt",
    "bytes_out_rate", "http_fail_cnt", "http_fail_rate"})
# What the kernel tier counts per source (DESIGN.md: conn_rate on SYN, the gpc0 flag).
KERNEL_STORE_TYPES = frozenset({"conn_rate", "gpc0"})

# Counter fetches: `sc0_conn_rate`, `src_get_gpc0`, ... -> the stored data they read.
_COUNTER_READS = {"conn_cnt": "conn_cnt", "conn_cur": "conn_cur", "conn_rate": "conn_rate",
                  "http_req_cnt": "http_req_cnt", "http_req_rate": "http_req_rate",
                  "http_err_cnt": "http_err_cnt", "http_err_rate": "http_err_rate",
                  "get_gpc0": "gpc0", "inc_gpc0": "gpc0", "clr_gpc0": "gpc0",
                  "gpc0_rate": "gpc0_rate"}
COUNTER_SOURCES = ("sc0", "sc1", "sc2", "src")
MAX_TRACK_COUNTER = 2


@dataclass(frozen=True, slots=True)
class CounterRef:
    """What a stick-counter fetch does: `sc0_inc_gpc0` is ("sc0", "inc", "gpc0")."""

    source: str  # "sc0", "sc1", "sc2" (a tracked entry) or "src" (the client's address)
    op: Literal["get", "inc", "clr"]
    data: str


def counter_ref(name: str) -> CounterRef | None:
    """The counter a fetch reads or changes, or None for other fetches."""
    source, _, rest = name.partition("_")
    if source not in COUNTER_SOURCES or rest not in _COUNTER_READS:
        return None
    op = rest[:3] if rest[:4] in ("inc_", "clr_", "get_") else "get"
    return CounterRef(source, op, _COUNTER_READS[rest])  # type: ignore[arg-type]


def _fetches() -> dict[str, FetchSpec]:
    specs = [
        FetchSpec("always_true", "bool", "internal", kernel=True),
        FetchSpec("always_false", "bool", "internal", kernel=True),
        FetchSpec("src", "ip", "connection", kernel=True),
        FetchSpec("dst", "ip", "connection"),
        FetchSpec("src_port", "int", "connection"),
        FetchSpec("dst_port", "int", "connection"),
        FetchSpec("ssl_fc", "bool", "session"),
        FetchSpec("req.hdr", "str", "request", ("str", "int")),
        FetchSpec("req.ver", "str", "request"),
        FetchSpec("req.proto_http", "bool", "request"),
        FetchSpec("method", "meth", "request"),
        FetchSpec("path", "str", "request"),
        FetchSpec("url", "str", "request"),
        FetchSpec("base", "str", "request"),
        FetchSpec("http_auth", "bool", "request", ("userlist",), required=1),
        FetchSpec("http_auth_group", "str", "request", ("userlist",), required=1),
    ]
    for source in COUNTER_SOURCES:
        for counter, data in _COUNTER_READS.items():
            specs.append(FetchSpec(
                f"{source}_{counter}", "int", "connection" if source == "src" else "internal",
                ("table",), kernel=data in KERNEL_STORE_TYPES))
    return {spec.name: spec for spec in specs}


FETCHES = _fetches()
# Other names HAProxy accepts for some of them.
FETCH_ALIASES = {"hdr": "req.hdr", "req_ver": "req.ver", "req_proto_http": "req.proto_http"}


def _acl_keywords() -> dict[str, tuple[str, MatchMethod]]:
    keywords: dict[str, tuple[str, MatchMethod]] = {}
    suffixes: dict[str, MatchMethod] = {"beg": "beg", "dir": "dir", "dom": "dom", "end": "end",
                                        "len": "len", "reg": "reg", "sub": "sub"}
    for prefix, fetch in (("hdr", "req.hdr"), ("path", "path"), ("url", "url"),
                          ("base", "base")):
        keywords[prefix] = (fetch, "str")
        for suffix, method in suffixes.items():
            keywords[f"{prefix}_{suffix}"] = (fetch, method)
    keywords["method"] = ("method", "meth")
    keywords["http_auth_group"] = ("http_auth_group", "group")
    keywords["req_ver"] = ("req.ver", "str")
    return keywords


# ACL keywords: criterion -> (fetch, default match method).
ACL_KEYWORDS = _acl_keywords()

# Predefined ACLs (HAProxy's default_acl_list) pyxlb supports, as the words of an acl line.
PREDEFINED_ACLS = {
    "TRUE": ("always_true",),
    "FALSE": ("always_false",),
    "LOCALHOST": ("src", "127.0.0.1/8", "::1"),
    "HTTP": ("req.proto_http",),
    "HTTP_1.0": ("req.ver", "1.0"),
    "HTTP_1.1": ("req.ver", "1.1"),
    "HTTP_2.0": ("req.ver", "2.0"),
    "METH_CONNECT": ("method", "CONNECT"),
    "METH_DELETE": ("method", "DELETE"),
    "METH_GET": ("method", "GET", "HEAD"),
    "METH_HEAD": ("method", "HEAD"),
    "METH_OPTIONS": ("method", "OPTIONS"),
    "METH_POST": ("method", "POST"),
    "METH_PUT": ("method", "PUT"),
    "METH_TRACE": ("method", "TRACE"),
    "HTTP_URL_ABS": ("url_reg", "^[^/:]*://"),
    "HTTP_URL_SLASH": ("url_beg", "/"),
    "HTTP_URL_STAR": ("url", "*"),
}
UNSUPPORTED_PREDEFINED_ACLS = frozenset({"HTTP_CONTENT", "RDP_COOKIE", "REQ_CONTENT",
                                         "WAIT_END"})

# `-m` methods a user may ask for; "bin" exists in HAProxy but not in pyxlb yet.
USER_METHODS: tuple[MatchMethod, ...] = ("found", "bool", "int", "ip", "len", "str", "sub",
                                         "reg", "beg", "end", "dir", "dom")
# Which forced methods each sample type can feed (HAProxy's sample casts, simplified).
_CASTS: dict[SampleType, frozenset[MatchMethod]] = {
    "str": frozenset(USER_METHODS),
    "int": frozenset(USER_METHODS),
    "ip": frozenset(USER_METHODS),
    "bool": frozenset(USER_METHODS) - {"ip"},
    "meth": frozenset(USER_METHODS) - {"int", "ip", "bool"},
}


def method_allowed(sample: SampleType, method: MatchMethod) -> bool:
    """Whether `-m METHOD` can apply to a fetch returning `sample`."""
    return method in _CASTS[sample]
