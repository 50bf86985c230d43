"""Cookie persistence logic against the bytes HAProxy 2.6.12 produced in the lab for
the same configurations (scripted servers, `haproxy -db`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from pyxlb.config import parse_text
from pyxlb.l7.cookies import CookiePersistence, CookieRequest, b64tos30, cacheable, s30tob64


def persistence(cookie_line: str, servers: tuple[str, ...] = ("a", "b"),
                clock: Callable[[], float] = time.time) -> CookiePersistence[str]:
    text = "defaults\n    mode http\nbackend be\n    " + cookie_line + "\n" + "".join(
        f"    server {s} 10.0.0.{i + 1}:80 cookie {s}\n" for i, s in enumerate(servers))
    be = parse_text(text, "t.cfg", env={}).backends["be"]
    assert be.cookie is not None
    return CookiePersistence(be.cookie, [(s.cookie, s.name) for s in be.servers], clock)


HEAD = [b"host: x\r\n"]
LAST_MODIFIED = [b"content-length: 2\r\n", b"last-modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"]


def request(p: CookiePersistence[str], *cookies: bytes, method: bytes = b"GET",
            up: str = "abc") -> tuple[list[bytes], str | None, str]:
    """The lines forwarded, the server picked (servers named in ``up`` are up) and
    the log's request cookie flag."""
    lines, req = p.request(HEAD + [b"cookie: " + c + b"\r\n" for c in cookies], method)
    return lines, req.pick(lambda s: s in up), req.seen


def test_insert_indirect_strips_the_cookie_and_names_the_server() -> None:
    p = persistence("cookie SRV insert indirect nocache")
    assert request(p, b"x=1; SRV=b; y=2") == (HEAD + [b"cookie: x=1; y=2\r\n"], "b", "V")
    # An emptied header goes; spaces around pairs are normalised as HAProxy does.
    assert request(p, b"SRV=b")[0] == HEAD
    assert request(p, b" a=1 ;SRV=b ;  c=3")[0] == HEAD + [b"cookie: a=1; c=3\r\n"]
    assert request(p, b"a=1", b"SRV=a") == (HEAD + [b"cookie: a=1\r\n"], "a", "V")
    # Every occurrence goes; the first one naming a server that is up takes it.
    assert request(p, b"SRV=b; SRV=a") == (HEAD, "b", "V")
    assert request(p, b"SRV=zz; SRV=a") == (HEAD, "a", "V")
    assert request(p, b"SRV=b; SRV=a", up="a") == (HEAD, "a", "V")
    # Unknown values name no server but are stripped all the same.
    assert request(p, b"SRV=zz; y=2") == (HEAD + [b"cookie: y=2\r\n"], None, "I")
    assert request(p, b"SRV=") == (HEAD, None, "I")
    # A server that is down: the balancer picks (HAProxy's D).
    assert request(p, b"SRV=b", up="a") == (HEAD, None, "D")
    assert request(p, b"SRV=b; SRV=zz", up="a") == (HEAD, None, "D")


def test_servers_sharing_a_cookie_value_take_it_in_turn_of_declaration() -> None:
    text = ("defaults\n    mode http\nbackend be\n    cookie SRV insert indirect\n"
            "    server a 10.0.0.1:80 cookie www\n    server b 10.0.0.2:80 cookie www\n")
    be = parse_text(text, "t.cfg", env={}).backends["be"]
    assert be.cookie is not None
    p = CookiePersistence(be.cookie, [(s.cookie, s.name) for s in be.servers])
    assert request(p, b"SRV=www") == (HEAD, "a", "V")
    assert request(p, b"SRV=www", up="b") == (HEAD, "b", "V")


def test_a_request_without_the_cookie_is_forwarded_untouched() -> None:
    p = persistence("cookie SRV insert indirect nocache")
    lines = HEAD + [b"cookie: SRVX=a; xSRV=b\r\n"]
    out, req = p.request(lines, b"GET")
    assert out is lines and req.pick(lambda s: True) is None and req.seen == "N"


def test_insert_without_indirect_and_rewrite_forward_the_cookie() -> None:
    for line in ("cookie SRV insert", "cookie SRV rewrite", "cookie SRV"):
        p = persistence(line)
        assert request(p, b"SRV=a") == (HEAD + [b"cookie: SRV=a\r\n"], "a", "V"), line


def test_prefix_forwards_the_value_without_its_prefix() -> None:
    p = persistence("cookie SRV prefix")
    assert request(p, b"SRV=b~app123; z=1") == (
        HEAD + [b"cookie: SRV=app123; z=1\r\n"], "b", "V")
    # Without a '~' the whole value is the server's id; no dates in prefix mode.
    assert request(p, b"SRV=b") == (HEAD + [b"cookie: SRV=b\r\n"], "b", "V")
    assert request(p, b"SRV=b|AAAAB") == (HEAD + [b"cookie: SRV=b|AAAAB\r\n"], None, "I")


def test_insert_appends_haproxys_set_cookie_and_private_when_cacheable() -> None:
    p = persistence("cookie SRV insert indirect nocache")
    # Not cacheable (no freshness, no validator): no cache-control.
    assert p.response([b"content-length: 2\r\n"], 200, CookieRequest(None, b"GET"), "a") == [
        b"content-length: 2\r\n", b"set-cookie: SRV=a; path=/\r\n"]
    assert p.response(LAST_MODIFIED, 200, CookieRequest(None, b"GET"), "b") == [
        *LAST_MODIFIED, b"set-cookie: SRV=b; path=/\r\n", b"cache-control: private\r\n"]
    # POST responses are not cacheable.
    assert p.response(LAST_MODIFIED, 200, CookieRequest(None, b"POST"), "b") == [
        *LAST_MODIFIED, b"set-cookie: SRV=b; path=/\r\n"]


def test_a_valid_cookie_gets_no_new_one() -> None:
    for line in ("cookie SRV insert indirect nocache", "cookie SRV insert"):
        p = persistence(line)
        lines = list(LAST_MODIFIED)
        assert p.response(lines, 200, CookieRequest("b", b"GET", valid=True), "b") is lines


def test_a_cookie_for_another_server_gets_replaced() -> None:
    # The cookie named a server that was down; the balancer chose b.
    p = persistence("cookie SRV insert indirect nocache")
    assert p.response([], 200, CookieRequest("a", b"GET"), "b") == [
        b"set-cookie: SRV=b; path=/\r\n"]


def test_insert_options_as_haproxy_writes_them() -> None:
    p = persistence("cookie SRV insert indirect nocache httponly secure domain .example.com "
                    "domain .example.org")
    assert p.response([], 200, CookieRequest(None, b"GET"), "a") == [
        b"set-cookie: SRV=a; path=/; domain=.example.com; domain=.example.org; HttpOnly; "
        b"Secure\r\n"]


def test_postonly_inserts_on_post_only() -> None:
    p = persistence("cookie SRV insert postonly")
    assert p.response([], 200, CookieRequest(None, b"GET"), "a") == []
    assert p.response([], 200, CookieRequest(None, b"POST"), "a") == [
        b"set-cookie: SRV=a; path=/\r\n"]


def test_the_servers_own_cookie_of_that_name() -> None:
    own = [b"set-cookie: SRV=app123; path=/\r\n", b"content-length: 2\r\n"]
    none: CookieRequest[str] = CookieRequest(None, b"GET")
    # preserve: kept, and nothing inserted.
    assert persistence("cookie SRV insert indirect preserve").response(
        own, 200, none, "a") == own
    # insert: replaced by pyxlb's.
    assert persistence("cookie SRV insert indirect").response(own, 200, none, "a") == [
        b"content-length: 2\r\n", b"set-cookie: SRV=a; path=/\r\n"]
    # rewrite and prefix change it in place, valid cookie or not.
    valid = CookieRequest("a", b"GET", valid=True)
    assert persistence("cookie SRV rewrite").response(own, 200, valid, "a") == [
        b"set-cookie: SRV=a; path=/\r\n", b"content-length: 2\r\n"]
    assert persistence("cookie SRV prefix").response(own, 200, valid, "a") == [
        b"set-cookie: SRV=a~app123; path=/\r\n", b"content-length: 2\r\n"]


def test_a_server_without_cookie_value_removes_the_clients() -> None:
    text = ("defaults\n    mode http\nbackend be\n    cookie SRV insert\n"
            "    server a 10.0.0.1:80\n")
    be = parse_text(text, "t.cfg", env={}).backends["be"]
    assert be.cookie is not None
    p = CookiePersistence(be.cookie, [(s.cookie, s.name) for s in be.servers])
    assert p.response([], 200, CookieRequest(None, b"GET"), "a") == [
        b"set-cookie: SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/\r\n"]


def test_cacheability_as_haproxy_2_6_judges_it() -> None:
    assert cacheable(200, [b"cache-control: max-age=60\r\n"])
    assert cacheable(404, [b"expires: Thu, 01 Jan 2099 00:00:00 GMT\r\n"])
    assert cacheable(200, [b"etag: \"x\"\r\n"])
    assert not cacheable(200, [b"cache-control: public\r\n"])  # no freshness, no validator
    assert not cacheable(200, [b"cache-control: private, max-age=60\r\n"])
    assert not cacheable(200, [b"cache-control: max-age=0\r\n", b"etag: \"x\"\r\n"])
    assert not cacheable(302, [b"cache-control: max-age=60\r\n"])
    assert not cacheable(101, [b"cache-control: max-age=60\r\n"])


def test_indirect_removes_the_servers_cookie_when_the_clients_was_valid() -> None:
    own = [b"set-cookie: SRV=app123; path=/\r\n", b"content-length: 2\r\n"]
    for line in ("cookie SRV indirect", "cookie SRV prefix indirect"):
        p = persistence(line)
        assert p.response(own, 200, CookieRequest("a", b"GET", valid=True), "a") == [
            b"content-length: 2\r\n"], line
    # Without a valid cookie the client learns the server's (prefixed) cookie.
    assert persistence("cookie SRV indirect").response(
        own, 200, CookieRequest(None, b"GET"), "a") == own
    assert persistence("cookie SRV prefix indirect").response(
        own, 200, CookieRequest(None, b"GET"), "a") == [
        b"set-cookie: SRV=a~app123; path=/\r\n", b"content-length: 2\r\n"]


def test_nocache_marks_only_inserted_cookies() -> None:
    own = [b"set-cookie: SRV=app123; path=/\r\n", *LAST_MODIFIED]
    assert persistence("cookie SRV rewrite nocache").response(
        own, 200, CookieRequest(None, b"GET"), "a") == [
        b"set-cookie: SRV=a; path=/\r\n", *LAST_MODIFIED]


# What HAProxy 2.6.12 answered in the lab for `cookie SRV insert indirect nocache
# maxidle 20s maxlife 60s` at Unix time 1795513537 (its first cookie, at
# 1795513532, was SRV=w1|awVcv|awVcv: awVcv is 1795513532 / 4).
LAB_NOW = 1795513537
DATED = "cookie SRV insert indirect nocache maxidle 20s maxlife 60s"


def answer(p: CookiePersistence[str], cookie: bytes, up: str = "ab",
           balanced: str = "a") -> tuple[str | None, list[bytes], str]:
    """(the server the cookie took the request to, what the response added, the
    log's two cookie flags); ``balanced``: the balancer's pick otherwise."""
    _, req = p.request(HEAD + [b"cookie: " + cookie + b"\r\n"], b"GET")
    picked = req.pick(lambda s: s in up)
    added = p.response([], 200, req, picked or balanced)
    return picked, added, req.seen + req.sent


def test_dated_cookies_as_haproxy_refreshes_and_expires_them() -> None:
    p = persistence(DATED, servers=("w1", "w2"), clock=lambda: LAB_NOW)
    refresh = [b"set-cookie: SRV=w1|awVcx|awVcv; path=/\r\n"]
    # Valid, its last date in the past: the same server, the last date moves on.
    assert answer(p, b"SRV=w1|awVcv|awVcv", up="w1 w2") == ("w1", refresh, "VU")
    # No date at all, or one that does not decode: accepted, and dated now.
    fresh_w2 = [b"set-cookie: SRV=w2|awVcx|awVcx; path=/\r\n"]
    for cookie in (b"SRV=w2", b"SRV=w2|", b"SRV=w2|awVc", b"SRV=w2|awV!x"):
        assert answer(p, cookie, up="w1 w2") == ("w2", fresh_w2, "VU"), cookie
    # A last date of 0 is no date; the first date stays.
    assert answer(p, b"SRV=w2|AAAAA|awVcv", up="w1 w2") == (
        "w2", [b"set-cookie: SRV=w2|awVcx|awVcv; path=/\r\n"], "VU")
    # First seen at Unix time 4: older than maxlife, balanced again (OI).
    assert answer(p, b"SRV=w2|awVcv|AAAAB", up="w1 w2", balanced="w1") == (
        None, [b"set-cookie: SRV=w1|awVcx|awVcx; path=/\r\n"], "OI")
    # Last seen far in the future (more than a day ahead): EI.
    assert answer(p, b"SRV=w2|zzzzz", up="w1 w2", balanced="w1") == (
        None, [b"set-cookie: SRV=w1|awVcx|awVcx; path=/\r\n"], "EI")
    # An expired cookie is skipped, the next one counts.
    assert answer(p, b"SRV=w2|zzzzz; SRV=w1", up="w1 w2")[::2] == ("w1", "VU")
    # Later on, only the last date changes.
    later = persistence(DATED, servers=("w1", "w2"), clock=lambda: LAB_NOW + 5)
    assert answer(later, b"SRV=w1|awVcv|awVcv", up="w1 w2")[1] == [
        b"set-cookie: SRV=w1|awVcy|awVcv; path=/\r\n"]


def test_a_fresh_dated_cookie_is_not_set_again() -> None:
    # The last date is now + 3 rounded down to 4 s: no refresh until it is past.
    stamp = s30tob64((LAB_NOW + 3) >> 2)
    assert stamp == b"awVcx" and b64tos30(stamp) << 2 == 1795513540
    for now in range(LAB_NOW, 1795513541):
        p = persistence(DATED, servers=("w1", "w2"), clock=lambda now=now: now)
        assert answer(p, b"SRV=w1|awVcx|awVcv", up="w1") == ("w1", [], "VN"), now
    p = persistence(DATED, servers=("w1", "w2"), clock=lambda: 1795513541)
    assert answer(p, b"SRV=w1|awVcx|awVcv", up="w1")[2] == "VU"


def test_idle_and_life_limits_are_inclusive() -> None:
    last = 1795513540  # awVcx
    idle = persistence("cookie SRV insert maxidle 20s", servers=("w1",),
                       clock=lambda: last + 20)
    assert answer(idle, b"SRV=w1|awVcx", up="w1") == (
        "w1", [b"set-cookie: SRV=w1|awVc2; path=/\r\n"], "VU")
    idle = persistence("cookie SRV insert maxidle 20s", servers=("w1",),
                       clock=lambda: last + 21)
    assert answer(idle, b"SRV=w1|awVcx", up="w1", balanced="w1")[2] == "EI"
    life = persistence("cookie SRV insert maxlife 1m", servers=("w1",),
                       clock=lambda: last + 61)
    assert answer(life, b"SRV=w1|awVcx|awVcx", up="w1", balanced="w1") == (
        None, [b"set-cookie: SRV=w1|awVdB|awVdB; path=/\r\n"], "OI")


def test_dates_are_dropped_when_the_config_has_none() -> None:
    # A cookie written under maxidle/maxlife, read by a config without them: set
    # again without dates, so it lasts for ever.
    p = persistence("cookie SRV insert indirect", servers=("w1",), clock=lambda: LAB_NOW)
    assert answer(p, b"SRV=w1|awVcv|awVcv", up="w1") == (
        "w1", [b"set-cookie: SRV=w1; path=/\r\n"], "VU")
    # Only maxidle: no first date; one the cookie carries is dropped.
    p = persistence("cookie SRV insert maxidle 20s", servers=("w1",), clock=lambda: LAB_NOW)
    assert answer(p, b"SRV=w1|awVcx|awVcv", up="w1") == (
        "w1", [b"set-cookie: SRV=w1|awVcx; path=/\r\n"], "VU")


def test_the_log_flags_for_server_cookies() -> None:
    own = [b"set-cookie: SRV=app123; path=/\r\n"]
    for line, flags in (("cookie SRV insert indirect", "NI"), ("cookie SRV rewrite", "NR"),
                        ("cookie SRV prefix", "NR"), ("cookie SRV", "NP"),
                        ("cookie SRV insert preserve", "NP")):
        p = persistence(line)
        _, req = p.request(HEAD, b"GET")
        req.pick(lambda s: True)
        p.response(own, 200, req, "a")
        assert req.seen + req.sent == flags, line
    p = persistence("cookie SRV insert indirect")
    _, req = p.request(HEAD + [b"cookie: SRV=a\r\n"], b"GET")
    req.pick(lambda s: True)
    assert p.response(own, 200, req, "a") == [] and req.seen + req.sent == "VD"
