"""ACLs and conditions: criteria, flags, patterns, operators, and the condition AST."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network

import pytest

from pyxlb.config import Config, ConfigError, Where, parse_text
from pyxlb.config.conditions import Acl, Fetch, IntRange, Match
from pyxlb.config.fetches import CounterRef, counter_ref

Parse = Callable[..., Config]


def acl(parse: Parse, *lines: str) -> dict[str, Acl]:
    """The ACLs of a frontend made of these lines."""
    body = "".join(f"    {line}\n" for line in lines)
    return parse(f"frontend f\n    bind :80\n    stick-table type ip size 1k\n{body}"
                 ).frontends["f"].acls


def match(parse: Parse, line: str) -> Match:
    [only] = acl(parse, f"acl a {line}")["a"].matches
    return only


@pytest.mark.parametrize(("criterion", "fetch", "args", "method"), [
    ("hdr(host)", "req.hdr", ("host",), "str"),
    ("req.hdr(host,1)", "req.hdr", ("host", "1"), "str"),
    ("hdr_end(host)", "req.hdr", ("host",), "end"),
    ("hdr_beg(host)", "req.hdr", ("host",), "beg"),
    ("hdr_dom(host)", "req.hdr", ("host",), "dom"),
    ("hdr_sub(user-agent)", "req.hdr", ("user-agent",), "sub"),
    ("path", "path", (), "str"),
    ("path_beg", "path", (), "beg"),
    ("path_end", "path", (), "end"),
    ("path_reg", "path", (), "reg"),
    ("path_dir", "path", (), "dir"),
    ("url", "url", (), "str"),
    ("url_beg", "url", (), "beg"),
    ("method", "method", (), "meth"),
    ("src", "src", (), "ip"),
    ("dst_port", "dst_port", (), "int"),
    ("src_port", "src_port", (), "int"),
    ("req.ver", "req.ver", (), "str"),
    ("sc0_conn_rate", "sc0_conn_rate", (), "int"),
    ("sc1_http_err_rate(t)", "sc1_http_err_rate", ("t",), "int"),
    ("src_conn_rate", "src_conn_rate", ("f",), "int"),
    ("src_http_err_rate(t)", "src_http_err_rate", ("t",), "int"),
])
def test_criteria(parse: Parse, criterion: str, fetch: str, args: tuple[str, ...],
                  method: str) -> None:
    text = f"""\
        frontend f
            bind :80
            stick-table type ip size 1k
            acl a {criterion} x
        backend t
            stick-table type ip size 1k
    """
    if method in ("int", "ip"):
        text = text.replace(" x\n", " 1\n" if method == "int" else " 10.0.0.1\n")
    [m] = parse(text).frontends["f"].acls["a"].matches
    assert (m.criterion, m.fetch.name, m.fetch.args, m.method) == \
        (criterion.split("(")[0], fetch, args, method)


def test_string_patterns_and_flags(parse: Parse) -> None:
    m = match(parse, "hdr_end(host) -i ws.example.com api.example.com")
    assert (m.ignore_case, m.patterns) == (True, ("ws.example.com", "api.example.com"))
    forced = match(parse, "path -m beg -i /api")
    assert (forced.method, forced.ignore_case, forced.patterns) == ("beg", True, ("/api",))
    # After the first pattern, '-i' is a pattern; '--' ends the flags.
    assert match(parse, "path /x -i").patterns == ("/x", "-i")
    assert match(parse, "path -- -i").patterns == ("-i",)
    assert match(parse, "src -n 10.0.0.1").patterns == (ip_network("10.0.0.1/32"),)


def test_integer_patterns_and_operators(parse: Parse) -> None:
    assert match(parse, "dst_port 80 8080:8090 :1023 49152:").patterns == (
        IntRange(80, 80), IntRange(8080, 8090), IntRange(None, 1023), IntRange(49152, None))
    assert match(parse, "sc0_conn_rate gt 60").patterns == (IntRange(61, None),)
    assert match(parse, "sc0_conn_rate ge 60").patterns == (IntRange(60, None),)
    assert match(parse, "sc0_conn_rate lt 60").patterns == (IntRange(None, 59),)
    assert match(parse, "sc0_conn_rate le 60").patterns == (IntRange(None, 60),)
    # An operator applies to every number after it, as in HAProxy.
    assert match(parse, "sc0_conn_rate eq 1 gt 10 20").patterns == (
        IntRange(1, 1), IntRange(11, None), IntRange(21, None))
    assert match(parse, "path_len gt 200").patterns == (IntRange(201, None),)
    assert 5 in IntRange(1, None) and 0 not in IntRange(1, None)
    assert 7 in IntRange(None, None)


def test_address_patterns(parse: Parse) -> None:
    assert match(parse, "src 10.0.0.0/8 192.168.1.7 10.1.0.0/255.255.0.0 2001:db8::/32"
                 ).patterns == (ip_network("10.0.0.0/8"), ip_network("192.168.1.7/32"),
                                ip_network("10.1.0.0/16"), ip_network("2001:db8::/32"))
    # Host bits are dropped, as HAProxy masks them.
    assert match(parse, "src 10.1.2.3/8").patterns == (ip_network("10.0.0.0/8"),)


def test_boolean_fetches(parse: Parse) -> None:
    m = match(parse, "ssl_fc")
    assert (m.fetch, m.method, m.patterns) == \
        (Fetch(name="ssl_fc", where=Where("t.cfg", 4, 11)), "bool", ())
    assert match(parse, "src -m found").method == "found"


def test_pattern_files() -> None:
    files = {"allow.lst": ["10.0.0.0/8", "192.168.0.1"]}
    # Flags come first: after a pattern, '-f' would be a pattern itself.
    with pytest.raises(ConfigError, match="'-f' is not a valid IPv4 or IPv6 address"):
        parse_text("frontend f\n  bind :80\n  acl ok src 127.0.0.1 -f allow.lst\n", "t.cfg",
                   env={}, reader=lambda path: files[path])
    config = parse_text("frontend f\n  bind :80\n  acl ok src -f allow.lst 127.0.0.1\n",
                        "t.cfg", env={}, reader=lambda path: files[path])
    [m] = config.frontends["f"].acls["ok"].matches
    assert (m.files, m.patterns) == (("allow.lst",), (
        ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"), ip_network("192.168.0.1/32")))


def test_several_lines_make_one_acl(parse: Parse) -> None:
    acls = acl(parse, "acl local src 127.0.0.1", "acl other path /x",
               "acl local hdr(host) -i localhost")
    assert list(acls) == ["local", "other"]
    assert [m.fetch.name for m in acls["local"].matches] == ["src", "req.hdr"]
    assert acls["local"].where == Where("t.cfg", 4, 9)


def test_a_condition_sees_lines_added_after_it(parse: Parse) -> None:
    """HAProxy's conditions point at the ACL, which later lines extend."""
    front = parse("""\
        frontend f
            mode http
            bind :80
            acl bad src 10.0.0.1
            http-request deny if bad
            acl bad src 10.0.0.2
    """).frontends["f"]
    condition = front.http_request[0].condition
    assert condition is not None
    [[term]] = condition.alternatives
    assert term.acl is front.acls["bad"]
    assert len(term.acl.matches) == 2


def test_condition_structure(parse: Parse) -> None:
    front = parse("""\
        frontend f
            mode http
            bind :80
            acl a src 10.0.0.1
            acl b path /b
            acl c method GET
            http-request deny if a !b || !!c or ! a { path_beg /x } || TRUE
            http-request deny unless a
    """).frontends["f"]
    cond = front.http_request[0].condition
    assert cond is not None and cond.polarity == "if"
    shape = [[(t.acl.name, t.negate) for t in terms] for terms in cond.alternatives]
    assert shape == [[("a", False), ("b", True)], [("c", False)], [("a", True), ("", False)],
                     [("TRUE", False)]]
    assert cond.alternatives[3][0].acl.predefined
    assert [a.name for a in cond.acls()] == ["a", "b", "c", "", "TRUE"]
    unless = front.http_request[1].condition
    assert unless is not None and unless.polarity == "unless"


def test_predefined_acls(parse: Parse) -> None:
    front = parse("""\
        frontend f
            mode http
            bind :80
            http-request deny if METH_TRACE || LOCALHOST
            http-request allow if METH_GET HTTP_1.1
            http-request deny if METH_TRACE
    """).frontends["f"]
    conditions = [rule.condition for rule in front.http_request]
    trace, localhost = (alt[0].acl for alt in conditions[0].alternatives)  # type: ignore[union-attr]
    assert (trace.name, trace.predefined, trace.matches[0].patterns) == \
        ("METH_TRACE", True, ("TRACE",))
    assert localhost.matches[0].patterns == (ip_network("127.0.0.0/8"), ip_network("::1/128"))
    get = conditions[1].alternatives[0][0].acl  # type: ignore[union-attr]
    assert get.matches[0].patterns == ("GET", "HEAD")
    # One ACL per name in a proxy, shared by the conditions that use it.
    assert conditions[2].alternatives[0][0].acl is trace  # type: ignore[union-attr]
    # Predefined ACLs are not the proxy's own.
    assert front.acls == {}


def test_a_proxy_acl_may_shadow_a_predefined_one(parse: Parse) -> None:
    front = parse("""\
        frontend f
            mode http
            bind :80
            acl TRUE src 10.0.0.1
            http-request deny if TRUE
    """).frontends["f"]
    assert front.http_request[0].condition.acls() == [front.acls["TRUE"]]  # type: ignore[union-attr]


def test_acl_warnings(parse: Parse) -> None:
    config = parse("""\
        frontend f
            bind :80
            acl nothing src
            acl intended src --
            acl flag ssl_fc 1
            acl exists hdr(x-id) -m found
    """)
    assert [str(w) for w in config.warnings] == [
        "t.cfg:3:17: acl 'nothing': no pattern to match 'src' against, so it never matches "
        "(write '--' after the criterion if that is intended, '-m found' to test for existence, "
        "'-m bool' to use a number as a boolean)",
        "t.cfg:5:21: '-m bool' takes no pattern: '1' is ignored",
        "t.cfg:1:1: missing timeouts for frontend 'f': set 'timeout client', or connections can "
        "stay open forever",
    ]


def test_counter_fetches() -> None:
    assert counter_ref("sc0_inc_gpc0") == CounterRef("sc0", "inc", "gpc0")
    assert counter_ref("src_get_gpc0") == CounterRef("src", "get", "gpc0")
    assert counter_ref("sc2_conn_rate") == CounterRef("sc2", "get", "conn_rate")
    assert counter_ref("src_clr_gpc0") == CounterRef("src", "clr", "gpc0")
    assert counter_ref("src") is None
    assert counter_ref("req.hdr") is None
