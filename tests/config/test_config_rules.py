"""Rules: http-request and tcp-request connection actions, redirect and use_backend,
in the order HAProxy runs them, and rules inherited from a named defaults section."""

from __future__ import annotations

from collections.abc import Callable

from pyxlb.config import Config, Where
from pyxlb.config.conditions import Fetch
from pyxlb.config.rules import (
    Accept,
    Allow,
    Auth,
    DelHeader,
    Deny,
    Redirect,
    Reject,
    ReplaceHeader,
    ReplacePath,
    SetHeader,
    SetPath,
    TrackSc,
)

Parse = Callable[..., Config]


def http_actions(parse: Parse, *lines: str) -> list[object]:
    body = "".join(f"    {line}\n" for line in lines)
    front = parse(f"frontend f\n    mode http\n    bind :80\n    stick-table type ip size 1k\n"
                  f"{body}backend t\n    stick-table type ip size 1k\n").frontends["f"]
    return [rule.action for rule in front.http_request]


def test_http_request_actions(parse: Parse) -> None:
    assert http_actions(
        parse,
        "http-request allow if { src 10.0.0.1 }",
        "http-request deny if { src 10.0.0.2 }",
        "http-request deny deny_status 429 if { src 10.0.0.3 }",
        "http-request deny status 503 if { src 10.0.0.4 }",
        "http-request auth if { src 10.0.0.5 }",
        'http-request auth realm "Private zone" if { src 10.0.0.6 }',
        "http-request set-header X-Forwarded-Proto https",
        "http-request add-header X-Client %[src]",
        "http-request del-header X-Debug",
        "http-request replace-header User-Agent curl foo",
        "http-request set-path /v2%[path]",
        r"http-request replace-path ^/old/(.*) /new/\1",
        r"http-request replace-uri ^http://(.*) https://\1",
        "http-request redirect prefix /new code 303 drop-query if { path_beg /old }",
    ) == [
        Allow(), Deny(), Deny(status=429), Deny(status=503), Auth(), Auth(realm="Private zone"),
        SetHeader(name="X-Forwarded-Proto", value="https", replace=True),
        SetHeader(name="X-Client", value="%[src]", replace=False),
        DelHeader(name="X-Debug"),
        ReplaceHeader(name="User-Agent", regex="curl", replacement="foo"),
        SetPath(value="/v2%[path]"),
        ReplacePath(regex="^/old/(.*)", replacement=r"/new/\1", whole_uri=False),
        ReplacePath(regex="^http://(.*)", replacement=r"https://\1", whole_uri=True),
        Redirect(kind="prefix", target="/new", code=303, drop_query=True),
    ]


def test_track_actions(parse: Parse) -> None:
    track0, track1, track2 = http_actions(
        parse, "http-request track-sc0 src", "http-request track-sc1 src table t",
        "http-request track-sc2 req.hdr(x-api-key)")
    assert track0 == TrackSc(counter=0, key=Fetch(name="src", where=Where("t.cfg", 5, 28)),
                             table="f")
    assert (track1.counter, track1.table) == (1, "t")  # type: ignore[attr-defined]
    assert track2.key == Fetch(name="req.hdr", args=("x-api-key",),  # type: ignore[attr-defined]
                               where=Where("t.cfg", 7, 28))


def test_tcp_request_connection_rules(parse: Parse) -> None:
    front = parse("""\
        frontend f
            bind :80
            stick-table type ip size 1k store conn_rate(10s),gpc0
            tcp-request connection accept if { src 10.0.0.0/8 }
            tcp-request connection track-sc0 src
            tcp-request connection reject if { sc0_conn_rate gt 10 }
    """).frontends["f"]
    assert [type(rule.action) for rule in front.tcp_request] == [Accept, TrackSc, Reject]
    assert [rule.condition is None for rule in front.tcp_request] == [False, True, False]
    assert [rule.where.line for rule in front.tcp_request] == [4, 5, 6]


def test_redirect_rules(parse: Parse) -> None:
    front = parse("""\
        frontend f
            mode http
            bind :80
            redirect scheme https code 301 if !{ ssl_fc }
            redirect location /login set-cookie SEEN=1 clear-cookie OLD= if { path /x }
            redirect prefix https://example.com append-slash
    """).frontends["f"]
    assert [rule.redirect for rule in front.redirects] == [
        Redirect(kind="scheme", target="https", code=301),
        Redirect(kind="location", target="/login", set_cookie="SEEN=1", clear_cookie="OLD="),
        Redirect(kind="prefix", target="https://example.com", append_slash=True),
    ]


def test_use_backend_rules_and_the_backends_a_frontend_uses(parse: Parse) -> None:
    front = parse("""\
        frontend f
            mode http
            bind :80
            use_backend api if { path_beg /api }
            use_backend static unless { method POST }
            use_backend api if { path_beg /v2 }
            default_backend web
        backend api
            mode http
        backend static
            mode http
        backend web
            mode http
    """).frontends["f"]
    assert [(rule.backend, rule.condition.polarity) for rule in front.use_backends] == [  # type: ignore[union-attr]
        ("api", "if"), ("static", "unless"), ("api", "if")]
    assert front.backends_used() == ["api", "static", "web"]


def test_a_tcp_frontend_may_switch_to_an_http_backend(parse: Parse) -> None:
    config = parse("""\
        frontend f
            bind :80
            use_backend web if { src 10.0.0.0/8 }
        backend web
            mode http
    """)
    assert config.frontends["f"].use_backends[0].backend == "web"


def test_named_defaults_rules_run_first(parse: Parse) -> None:
    config = parse("""\
        defaults web
            mode http
            acl blocked src 10.66.0.0/16
            http-request deny if blocked
        frontend f from web
            bind :80
            acl blocked path /blocked
            http-request allow if blocked
        frontend g from web
            bind :81
    """)
    f, g = config.frontends["f"], config.frontends["g"]
    assert [(type(r.action), r.inherited, r.where.line) for r in f.http_request] == [
        (Deny, True, 4), (Allow, False, 8)]
    # Each rule keeps the ACL of the section it was written in.
    inherited, own = (r.condition.alternatives[0][0].acl for r in f.http_request)  # type: ignore[union-attr]
    assert (inherited.matches[0].fetch.name, own.matches[0].fetch.name) == ("src", "path")
    assert list(f.acls) == ["blocked"] and f.acls["blocked"] is own
    assert [(type(r.action), r.inherited) for r in g.http_request] == [(Deny, True)]
    assert g.acls == {}


def test_a_listen_has_its_rules_on_both_halves(parse: Parse) -> None:
    config = parse("""\
        listen l
            mode http
            bind :80
            http-request deny if { src 10.0.0.1 }
            redirect scheme https if { path /secure }
            server a 10.0.0.2:80
    """)
    front, back = config.frontends["l"], config.backends["l"]
    assert front.http_request == back.http_request and len(front.http_request) == 1
    assert front.redirects == back.redirects and len(front.redirects) == 1


def test_http_rules_leave_a_tcp_proxy(parse: Parse) -> None:
    config = parse("""\
        frontend f
            bind :80
            timeout client 1s
            http-request deny if { src 10.0.0.1 }
            redirect scheme https
    """)
    front = config.frontends["f"]
    assert (front.http_request, front.redirects) == ([], [])
    assert [str(w) for w in config.warnings][:2] == [
        "t.cfg:4:5: 'http-request' rules ignored for frontend 'f' as they require 'mode http'",
        "t.cfg:5:5: 'redirect' rules ignored for frontend 'f' as they require 'mode http'",
    ]


def test_rules_are_frozen_and_comparable(parse: Parse) -> None:
    text = """\
        frontend f
            mode http
            bind :80
            acl a src 10.0.0.1
            http-request deny if a || { path /x }
    """
    assert parse(text) == parse(text)
    assert hash(parse(text).frontends["f"].http_request[0])
