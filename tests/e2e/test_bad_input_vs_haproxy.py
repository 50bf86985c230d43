"""Bad HTTP input, side by side: the real HAProxy 2.6 and `pyxlb up` in the lab's
balancer, on the same one-server config (each its own port and its own recording
backend), get the same raw bytes from the client namespace. For each case the
answer, whether the connection stays open, and what reached the backend must be
HAProxy's, or safer: pyxlb never forwards what HAProxy refuses, and refuses a
few things HAProxy forwards where llhttp leaves no choice (the ``stricter`` cases,
each with its reason).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from side_by_side import BALANCERS, running

from pyxlb.l7.responses import BAD_REQUEST, REQUEST_TIMEOUT, UNPROCESSABLE
from pyxlb.lab.lab import Lab

HERE = Path(__file__).resolve().parent
BACKEND = str(HERE / "recording_backend.py")
CLIENT = str(HERE / "raw_http_client.py")
SERVER_ROLE = "web1"

CONFIG = """\
global
    maxconn 1000

defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    timeout http-request 1s
    option http-server-close

frontend fe
    bind *:{port}
    default_backend be

backend be
    server s1 {server}:{server_port}
"""


@dataclass
class Balancer:
    name: str
    port: int
    record: Path

    def send(self, lab: Lab, payload: bytes, slow: float | None = None,
             until_close: bool = False, fin: bool = False) -> dict:
        """The client's view (raw_http_client.py) and, under "forwarded", the
        backend's: per server connection, the requests it framed and raw bytes."""
        offset = self.record.stat().st_size
        argv = [lab.python, CLIENT, lab.topo.addr("lb"), str(self.port), payload.hex()]
        if slow is not None:
            argv += ["--slow", str(slow)]
        if until_close:
            argv.append("--until-close")
        if fin:
            argv.append("--fin")
        seen = json.loads(lab.run("client", argv).stdout)
        seen["forwarded"] = self._forwarded(offset)
        return seen

    def _forwarded(self, offset: int) -> list[list[tuple[str, ...]]]:
        # Every server connection the case opened is closed (http-server-close, or
        # the client gone) once both sides are done: wait for that, not for a time.
        deadline = time.monotonic() + 15
        while True:
            with open(self.record) as f:
                f.seek(offset)
                events = [json.loads(line) for line in f if line.endswith("\n")]
            opened = {e["conn"] for e in events if e["event"] == "open"}
            closed = {e["conn"] for e in events if e["event"] == "close"}
            if opened <= closed or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        conns: dict[int, list[tuple[str, ...]]] = {}
        for e in events:
            if e["event"] == "open":
                conns[e["conn"]] = []
            elif e["event"] == "request":
                conns[e["conn"]].append(("request", lower_names(e["head"]), e["body"]))
            elif e["event"] == "raw":
                conns[e["conn"]].append(("raw", e["data"]))
            elif e["event"] == "close":
                conns[e["conn"]].append(("close",))
        return list(conns.values())


def lower_names(head: str) -> str:
    """A request head with its header names lower-cased, as HAProxy 2.6 forwards them."""
    start, *lines = head.split("\r\n")
    return "\r\n".join([start, *(
        name.lower() + sep + value
        for name, sep, value in (line.partition(":") for line in lines))])


def _start_backend(lab: Lab, port: int, record: Path) -> subprocess.Popen[bytes]:
    record.touch()
    proc = lab.exec(SERVER_ROLE, [lab.python, BACKEND, str(port), str(record)],
                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n", "recording backend did not start"
    return proc


@pytest.fixture(scope="module")
def balancers(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Balancer, Balancer]]:
    """(haproxy, pyxlb), each up on its own port before their 1st case."""
    tmp = tmp_path_factory.mktemp("badinput")
    server = lab.topo.addr(SERVER_ROLE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with ExitStack() as stack:
            sides = []
            for name, port, server_port in zip(BALANCERS, (8401, 8402), (8411, 8412),
                                               strict=True):
                record = tmp / f"{name}.jsonl"
                procs.append(_start_backend(lab, server_port, record))
                config = tmp / f"{name}.cfg"
                config.write_text(CONFIG.format(port=port, server=server,
                                                server_port=server_port))
                stack.enter_context(running(lab, name, config, [port]))
                sides.append(Balancer(name, port, record))
            yield sides[0], sides[1]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def head(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")


GOOD = head("GET / HTTP/1.1", "Host: a", "X-Case: good")
CHUNKED_ABC = "3\r\nabc\r\n0\r\n\r\n"

# Where pyxlb refuses (400, close, nothing forwarded) what HAProxy 2.6 forwards,
# and why: llhttp, every leniency off, has no switch for these, and refusing is
# the safe side (a server behind may read them otherwise).
LLHTTP_METHODS = "llhttp knows a fixed list of methods, upper-case only"
LLHTTP_VERSION = "llhttp reads HTTP/0.9, 1.0 and 1.1 only; HAProxy forwards 3.0 as 1.1"
LLHTTP_LENGTHS = "llhttp refuses any repeated Content-Length; HAProxy merges equal ones"
LLHTTP_CL_TE = ("llhttp refuses Content-Length with Transfer-Encoding; HAProxy drops the "
                "length, forwards it chunked and closes; the issue allows either")
LLHTTP_FOLD = "llhttp refuses obs-fold (RFC 9112 allows it); HAProxy turns it into spaces"
LLHTTP_NUL = "llhttp refuses NUL in a header value; HAProxy forwards it"
LLHTTP_BARE_LF = "llhttp wants CRLF line ends; HAProxy takes a bare LF"


def sized(method: str, uri: str, headers: int, over: int) -> bytes:
    """A request head that takes HAProxy's HTX room for it (15311 bytes), plus
    ``over``: the start line 28 bytes and the version besides method and URI,
    each header 8 besides name and value, the end of headers 8."""
    lines = ["Host: a", *(f"X-H{i}: v{i}" for i in range(headers - 1))]
    used = 28 + len(method) + len(uri) + 8 + 8 + sum(
        len(line) - 2 + 8 for line in lines) + len("X-Big") + 8
    return head(f"{method} {uri} HTTP/1.1", *lines, "X-Big: " + "a" * (15311 + over - used))


def case(payload: bytes, id: str, stricter: str | None = None) -> object:
    return pytest.param(payload, stricter, id=id)


CASES = [
    case(GOOD, "good-request"),
    case(head("G(T / HTTP/1.1", "Host: a"), "bad-method-token"),
    case(head("get / HTTP/1.1", "Host: a"), "lower-case-method", LLHTTP_METHODS),
    case(head("FOO / HTTP/1.1", "Host: a"), "unknown-method", LLHTTP_METHODS),
    # A method not ended yet, known or not: both wait for the line (408).
    case(b"ge", "lower-case-method-unfinished"),
    case(b"FOO", "unknown-method-unfinished"),
    case(b"FOO\r\n", "method-ended-by-line-end"),
    case(head("GET / HTTP/1.x", "Host: a"), "bad-version"),
    case(head("GET / HTTP/3.0", "Host: a"), "unknown-version", LLHTTP_VERSION),
    case(head("GET /a b HTTP/1.1", "Host: a"), "space-in-uri"),
    case(head("GET /a#b HTTP/1.1", "Host: a"), "fragment-in-uri"),
    case(head("GET /a?b#c HTTP/1.1", "Host: a"), "fragment-after-query"),
    case(head("GET /\x7f HTTP/1.1", "Host: a"), "del-in-uri"),
    case(head("GET /\xe9 HTTP/1.1", "Host: a"), "non-ascii-in-uri"),
    case(b"\r\n" + GOOD, "empty-line-first"),
    case(head("GET / HTTP/1.1", "Host: a", "Foo"), "header-without-colon"),
    case(head("GET / HTTP/1.1", "Host: a", "Foo : bar"), "space-before-colon"),
    case(head("GET / HTTP/1.1", "Host: a", "Fo@o: bar"), "bad-char-in-name"),
    case(head("GET / HTTP/1.1", "Host: a", "Foo: bar", " baz"), "obs-fold", LLHTTP_FOLD),
    case(head("GET / HTTP/1.1", "Host: a", "Foo: a\0b"), "nul-in-value", LLHTTP_NUL),
    case(head("GET / HTTP/1.1", "Host: a", "Foo: a\rb"), "cr-in-value"),
    case(b"GET / HTTP/1.1\nHost: a\n\n", "bare-lf-line-ends", LLHTTP_BARE_LF),
    case(head("GET / HTTP/1.1", "Host: a", "X-Big: " + "a" * 16400), "head-over-bufsize"),
    case(sized("GET", "/", 1, 0), "head-at-limit"),
    case(sized("GET", "/", 1, 1), "head-over-limit"),
    case(sized("OPTIONS", "/" + "u" * 3000, 30, 0), "long-head-at-limit"),
    case(sized("OPTIONS", "/" + "u" * 3000, 30, 1), "long-head-over-limit"),
    # Lengths and codings.
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 4",
              body="abcd"), "two-different-lengths"),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 3",
              body="abc"), "two-same-lengths", LLHTTP_LENGTHS),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: 3, 3", body="abc"),
         "same-lengths-in-one-header", LLHTTP_LENGTHS),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: +3", body="abc"),
         "length-with-sign"),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: 3x", body="abc"),
         "length-not-digits"),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length:"), "empty-length"),
    case(head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked",
              body=CHUNKED_ABC), "length-and-chunked", LLHTTP_CL_TE),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3",
              body=CHUNKED_ABC), "chunked-and-length", LLHTTP_CL_TE),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked",
              body="zz\r\nabc\r\n0\r\n\r\n"), "bad-chunk-size"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: Chunked", body=CHUNKED_ABC),
         "chunked-in-capitals"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked",
              body=CHUNKED_ABC), "gzip-then-chunked"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip",
              "Transfer-Encoding: chunked", body=CHUNKED_ABC), "gzip-then-chunked-headers"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, gzip",
              body=CHUNKED_ABC), "chunked-not-last"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, chunked",
              body=CHUNKED_ABC), "chunked-twice"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip", body="abc"),
         "gzip-not-chunked"),
    case(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: identity", body="abc"),
         "identity-encoding"),
    case(head("POST / HTTP/1.0", "Host: a", "Transfer-Encoding: chunked", body=CHUNKED_ABC),
         "chunked-in-http10"),
    # Targets and hosts.
    case(head("GET http://a/x?y HTTP/1.1", "Host: a"), "absolute-uri"),
    case(head("GET http://b/x HTTP/1.1", "Host: a"), "absolute-uri-other-host"),
    case(head("GET http://A/x HTTP/1.1", "Host: a"), "absolute-uri-host-in-capitals"),
    case(head("GET http://u@a/x HTTP/1.1", "Host: a"), "absolute-uri-with-user"),
    case(head("GET http://a:80/x HTTP/1.1", "Host: a"), "absolute-uri-default-port"),
    case(head("GET http://a:8080/x HTTP/1.1", "Host: a"), "absolute-uri-other-port"),
    case(head("GET http://b/x HTTP/1.1"), "absolute-uri-without-host"),
    case(head("GET / HTTP/1.0"), "http10-without-host"),
    case(head("GET / HTTP/1.1"), "http11-without-host"),
    case(head("GET / HTTP/1.1", "Host:"), "empty-host"),
    case(head("GET / HTTP/1.1", "Host: a", "Host: b"), "two-hosts"),
    case(head("GET / HTTP/1.1", "Host: a", "X: 1", "host:  A "), "two-same-hosts"),
    case(head("GET / HTTP/1.1", "Host: a, b"), "host-list"),
]


def status_line(response: str) -> str:
    return response.partition("\r\n")[0]


@pytest.mark.parametrize(("payload", "stricter"), CASES)
def test_bad_input_is_answered_as_haproxy_answers_it(lab, balancers, payload, stricter):
    hap, pyx = balancers
    want = hap.send(lab, payload)
    got = pyx.send(lab, payload)
    if stricter:
        # HAProxy lets it through; pyxlb refuses it: see the reason named.
        assert status_line(want["first"]) == "HTTP/1.1 200 OK" and want["forwarded"]
        assert got["first"].encode("latin-1") == BAD_REQUEST
        assert got["closed"] and got["forwarded"] == []
        return
    # Generated pages and relayed answers alike, byte for byte.
    assert got["first"] == want["first"]
    if status_line(want["first"])[9:12] in ("400", "422"):
        assert got["first"].encode("latin-1") in (BAD_REQUEST, UNPROCESSABLE)
    assert got["closed"] == want["closed"]
    assert got["forwarded"] == want["forwarded"]
    assert got["second"] == want["second"]


def test_a_head_that_never_ends_gets_408_from_both(lab, balancers):
    slow = head("GET / HTTP/1.1", "Host: a", "X-Slow: " + "a" * 200)[:-4]
    for side in balancers:
        seen = side.send(lab, slow, slow=0.05)
        assert seen["first"].encode("latin-1") == REQUEST_TIMEOUT, side.name
        assert seen["closed"], side.name
        assert seen["forwarded"] == [], side.name
        # `timeout http-request 1s`; a generous bound, not a timing test.
        assert seen["seconds"] < 6, side.name


UPGRADE = head("GET /chat HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")
# A client's masked WebSocket text frame, "hello".
FRAME = bytes.fromhex("818501020304") + bytes(
    b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=True))


@pytest.mark.parametrize(("after", "answer"), [
    (b"early", REQUEST_TIMEOUT),
    (FRAME, BAD_REQUEST),
    (FRAME + b"early", BAD_REQUEST),
], ids=["text", "websocket-frame", "frame-then-text"])
def test_bytes_after_a_refused_upgrade_are_the_next_request_for_both(
        lab, balancers, after, answer):
    # The recording backend answers 200 to the Upgrade request: no 101, so what
    # the client sent after the request is read as HTTP, by both, after the 200.
    hap, pyx = balancers
    want = hap.send(lab, UPGRADE + after, until_close=True)
    got = pyx.send(lab, UPGRADE + after, until_close=True)
    assert want["first"].endswith(answer.decode("latin-1"))
    assert got["first"] == want["first"]
    assert got["closed"] and want["closed"]
    assert got["forwarded"] == want["forwarded"]
    assert len(got["forwarded"]) == 1 and got["forwarded"][0][0][0] == "request"


@pytest.mark.parametrize("payload", [
    b"", b"early", b"GET / HT", head("GET / HTTP/1.1", "Host: a")[:-2],
], ids=["nothing", "unfinished-method", "unfinished-line", "unfinished-head"])
def test_a_head_cut_short_by_the_clients_close_gets_400_from_both(lab, balancers, payload):
    hap, pyx = balancers
    want = hap.send(lab, payload, fin=True)
    got = pyx.send(lab, payload, fin=True)
    assert want["first"].encode("latin-1") == BAD_REQUEST
    assert got["first"] == want["first"]
    assert got["closed"] and want["closed"]
    assert got["forwarded"] == want["forwarded"] == []


def test_a_request_then_the_clients_half_close_is_answered_as_by_haproxy(lab, balancers):
    # The client sends a whole request and shuts its sending side: both answer
    # it, with the same head (HAProxy adds no `connection: close`), then close.
    hap, pyx = balancers
    payload = head("GET /half HTTP/1.1", "Host: a")
    want = hap.send(lab, payload, fin=True)
    got = pyx.send(lab, payload, fin=True)
    assert want["first"].startswith("HTTP/1.1 200")
    assert got["first"] == want["first"]
    assert got["closed"] and want["closed"]
    assert got["forwarded"] == want["forwarded"]
