"""The stats service of a frontend: `stats auth|realm|refresh|hide-version|admin`
and /metrics, against the bytes HAProxy 2.6.12 sends for the same config."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from pyxlb.config import parse_text
from pyxlb.l7.rules.acl import RequestView
from pyxlb.stats.counters import StatsRegistry
from pyxlb.stats.service import StatsRequest, StatsService, headers_of, serves_metrics

CONFIG = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http_front
    bind *:80
    stats uri /haproxy?stats
    default_backend http_back
backend http_back
    server web1 10.0.0.1:80
    server web2 10.0.0.2:80
listen stats
    bind *:8404
    stats enable
    stats uri /
    stats realm Haproxy\\ Statistics
    stats auth admin:secret
    stats refresh 10s
    stats hide-version
    stats admin if { src 10.0.0.0/8 }
"""

# HAProxy 2.6.12, same config, `curl -i http://.../` without credentials.
HAPROXY_401 = (
    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n"
    b"content-type: text/html\r\nwww-authenticate: Basic realm=\"Haproxy Statistics\"\r\n"
    b"\r\n<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to "
    b"access this content.\n</body></html>\n"
)
# ... and after POSTing the admin form.
HAPROXY_303 = (
    b"HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n"
    b"content-length: 0\r\nlocation: /;st=DONE\r\n\r\n"
)
GOOD = b"Basic " + base64.b64encode(b"admin:secret")


class Setup:
    def __init__(self) -> None:
        self.config = parse_text(CONFIG, "t.cfg", env={})
        self.registry = StatsRegistry.build(self.config.frontends, self.config.backends)
        self.changes: list[tuple[str, str, str]] = []
        self.registry.control = lambda b, s, state: self.changes.append((b, s, state))
        has_servers = {name: bool(be.servers) for name, be in self.config.backends.items()}
        self.page = StatsService(self.config.frontends["stats"].stats, self.registry,
                                 serves_metrics(self.config.frontends["stats"],
                                                has_servers.__getitem__))

    def ask(self, url: bytes, auth: bytes | None = GOOD, method: bytes = b"GET",
            body: bytes = b"", src: str = "10.1.2.3", close: bool = False) -> bytes:
        lines = [b"host: lb\r\n"] + ([b"authorization: " + auth + b"\r\n"] if auth else [])
        view = RequestView(method, url, b"1.1", headers_of(lines), ipaddress.ip_address(src),
                           8404)
        assert self.page.wants(method, url)
        request = StatsRequest(view)
        request.add_body(body)
        return self.page.respond(request, method == b"HEAD", close)


@pytest.fixture
def setup() -> Setup:
    return Setup()


def test_without_credentials_haproxys_401(setup):
    assert setup.ask(b"/", auth=None) == HAPROXY_401
    assert setup.ask(b"/;csv", auth=b"Basic " + base64.b64encode(b"admin:wrong")) == HAPROXY_401
    assert setup.ask(b"/", auth=None, close=True).endswith(
        b"www-authenticate: Basic realm=\"Haproxy Statistics\"\r\nconnection: close\r\n\r\n"
        + HAPROXY_401.split(b"\r\n\r\n", 1)[1])


def test_the_csv_with_refresh_as_haproxy_heads_it(setup):
    reply = setup.ask(b"/;csv")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\n"
                           b"content-type: text/plain\r\nrefresh: 10\r\n"
                           b"transfer-encoding: chunked")
    assert body.partition(b"\r\n")[2].startswith(b"# pxname,svname,")
    assert b"\r\nrefresh:" not in setup.ask(b"/;csv;norefresh").partition(b"\r\n\r\n")[0]


def test_hide_version_and_the_admin_form(setup):
    page = setup.ask(b"/").decode()
    assert "<h1>pyxlb</h1>" in page and "version" not in page.split("<h1>")[1][:30]
    assert '<input type="hidden" name="b" value="#2">' in page
    assert "name=\"s\" value=\"web1\"" in page
    # Outside `stats admin if { src 10.0.0.0/8 }`: the page without forms.
    assert "name=\"s\"" not in setup.ask(b"/", src="192.168.1.1").decode()


def test_the_admin_form_changes_servers_and_redirects(setup):
    reply = setup.ask(b"/", method=b"POST", body=b"s=web1&s=web2&action=maint&b=%232")
    assert reply == HAPROXY_303
    assert setup.changes == [("http_back", "web1", "maint"), ("http_back", "web2", "maint")]
    assert b"Action processed successfully." in setup.ask(b"/;st=DONE")


@pytest.mark.parametrize("body, src, outcome", [
    (b"s=web1&action=maint&b=%232", "192.168.1.1", b"DENY"),
    (b"action=drain&b=http_back", "10.1.2.3", b"NONE"),
    (b"s=web1&s=nope&action=ready&b=http_back", "10.1.2.3", b"PART"),
    (b"s=web1&action=shutdown&b=%232", "10.1.2.3", b"ERRP"),
    (b"s=web1&action=ready&b=%239", "10.1.2.3", b"ERRP"),
])
def test_admin_form_outcomes(setup, body, src, outcome):
    reply = setup.ask(b"/", method=b"POST", body=body, src=src)
    assert b"\r\nlocation: /;st=" + outcome + b"\r\n" in reply
    if outcome in (b"DENY", b"NONE", b"ERRP"):
        assert setup.changes == []


def test_a_post_without_credentials_is_refused(setup):
    assert setup.ask(b"/", auth=None, method=b"POST", body=b"s=web1&action=maint&b=%232") \
        == HAPROXY_401
    assert setup.changes == []


def test_metrics_on_the_stats_listener_only(setup):
    reply = setup.ask(b"/metrics", auth=None)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: text/plain; version=0.0.4\r\n" in head
    assert b'haproxy_server_status{proxy="http_back",server="web1",state="UP"} 1\n' in body
    front = setup.config.frontends["http_front"]
    has_servers = {name: bool(be.servers) for name, be in setup.config.backends.items()}
    assert not serves_metrics(front, has_servers.__getitem__)


def test_only_its_own_requests_are_wanted(setup):
    page = setup.page
    assert page.wants(b"POST", b"/")
    assert not page.wants(b"PUT", b"/")
    front = StatsService(setup.config.frontends["http_front"].stats, setup.registry)
    assert front.wants(b"GET", b"/haproxy?stats;csv")
    assert not front.wants(b"GET", b"/metrics")
    assert not front.wants(b"POST", b"/haproxy?stats")  # no `stats admin`
