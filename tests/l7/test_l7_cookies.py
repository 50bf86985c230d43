"""Cookie persistence logic against the bytes HAProxy 2.6.12 produced in the lab for
the same configurations (scripted servers, `haproxy -db`)."""

from __future__ import annotations

from pyxlb.config import parse_text
from pyxlb.l7.cookies import CookiePersistence, CookieRequest, cacheable


def persistence(cookie_line: str, servers: tuple[str, ...] = ("a", "b")
                ) -> CookiePersistence[str]:
    text = "defaults\n    mode http\nbackend be\n    " + cookie_line + "\n" + "".join(
        f"    server {s} 10.0.0.{i + 1}:80 cookie {s}\n" for i, s in enumerate(servers))
    be = parse_text(text, "t.cfg", env={}).backends["be"]
    assert be.cookie is not None
    return CookiePersistence(be.cookie, [(s.cookie, s.name) for s in be.servers])


HEAD = [b"host: x\r\n"]
LAST_MODIFIED = [b"content-length: 2\r\n", b"last-modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"]


def request(p: CookiePersistence[str], *cookies: bytes,
            method: bytes = b"GET") -> tuple[list[bytes], CookieRequest[str]]:
    return p.request(HEAD + [b"cookie: " + c + b"\r\n" for c in cookies], method)


def test_insert_indirect_strips_the_cookie_and_names_the_server() -> None:
    p = persistence("cookie SRV insert indirect nocache")
    assert request(p, b"x=1; SRV=b; y=2") == (
        HEAD + [b"cookie: x=1; y=2\r\n"], CookieRequest("b", b"GET"))
    # An emptied header goes; spaces around pairs are normalised as HAProxy does.
    assert request(p, b"SRV=b")[0] == HEAD
    assert request(p, b" a=1 ;SRV=b ;  c=3")[0] == HEAD + [b"cookie: a=1; c=3\r\n"]
    assert request(p, b"a=1", b"SRV=a") == (HEAD + [b"cookie: a=1\r\n"],
                                             CookieRequest("a", b"GET"))
    # Every occurrence goes; the first one names the server.
    assert request(p, b"SRV=b; SRV=a") == (HEAD, CookieRequest("b", b"GET"))
    # Unknown values name no server but are stripped all the same.
    assert request(p, b"SRV=zz; y=2") == (HEAD + [b"cookie: y=2\r\n"],
                                          CookieRequest(None, b"GET"))


def test_a_request_without_the_cookie_is_forwarded_untouched() -> None:
    p = persistence("cookie SRV insert indirect nocache")
    lines = HEAD + [b"cookie: SRVX=a; xSRV=b\r\n"]
    out, req = p.request(lines, b"GET")
    assert out is lines and req.server is None


def test_insert_without_indirect_and_rewrite_forward_the_cookie() -> None:
    for line in ("cookie SRV insert", "cookie SRV rewrite", "cookie SRV"):
        p = persistence(line)
        assert request(p, b"SRV=a") == (HEAD + [b"cookie: SRV=a\r\n"],
                                         CookieRequest("a", b"GET")), line


def test_prefix_forwards_the_value_without_its_prefix() -> None:
    p = persistence("cookie SRV prefix")
    assert request(p, b"SRV=b~app123; z=1") == (
        HEAD + [b"cookie: SRV=app123; z=1\r\n"], CookieRequest("b", b"GET"))


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
