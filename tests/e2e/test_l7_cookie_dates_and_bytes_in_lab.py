"""`pyxlb up` in the lab with real clients: persistence cookies carrying HAProxy's
dates (`maxidle`/`maxlife`), and bytes counted as HAProxy counts them, a WebSocket's
tunnel included, in the httplog's %B and the stats' bin/bout.

The dates are HAProxy's: Unix time / 4 in 5 base64 characters. Cookies are built
here from the wall clock with wide margins (maxidle 20s, maxlife 60s, dates a minute
or more off), so the outcome never depends on how fast the test runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest

from pyxlb.lab.balancer import LabBalancer

HEADER = r"<134>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: "
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
DATE = r"[A-Za-z0-9+/]{5}"

CONFIG = """
global
    log "{log}" local0
defaults
    log global
    mode http
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind *:80
    stats enable
    stats uri /stats
    use_backend ws if {{ path_beg /chat }}
    default_backend www
backend www
    cookie SRV insert indirect nocache maxidle 20s maxlife 60s
    server web1 {web1}:80 cookie w1
    server web2 {web2}:80 cookie w2
backend ws
    server ws1 {ws1}:80
"""

# A WebSocket client on a raw socket, so that every byte is known: one masked text
# frame, its echo, then a close frame and the server's.
WS_CLIENT = r"""
import base64, json, os, socket, sys
s = socket.create_connection((sys.argv[1], 80), 5)
req = (b"GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
       b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
       + base64.b64encode(os.urandom(16)) + b"\r\n\r\n")
s.sendall(req)
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, _, got = buf.partition(b"\r\n\r\n")
payload, mask = b"through the tunnel", b"\x01\x02\x03\x04"
frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(
    b ^ mask[i % 4] for i, b in enumerate(payload))
s.sendall(frame)
while len(got) < 2 + len(payload):
    got += s.recv(4096)
echo = got[2:2 + len(payload)]
close = bytes([0x88, 0x80]) + mask
s.sendall(close)
while True:
    data = s.recv(4096)
    if not data:
        break
    got += data
print(json.dumps({"request": req.decode(), "head": head.decode(), "echo": echo.decode(),
                  "sent": len(frame) + len(close), "received": len(got)}))
"""


def stamp(t: int) -> str:
    v = t >> 2
    return "".join(BASE64[(v >> shift) & 0x3F] for shift in (24, 18, 12, 6, 0))


def unstamp(text: str) -> int:
    v = 0
    for c in text:
        v = v * 64 + BASE64.index(c)
    return v << 2


def htx(head: str) -> int:
    """A head's size as HAProxy counts it: a 21-byte start, the start line's parts
    without spaces, each header's name and value, no connection close/keep-alive."""
    start, *lines = head.split("\r\n")
    return 21 + len(start) - 2 + sum(len(line) - 2 for line in lines
                                     if not re.match(r"(?i)connection: (close|keep-alive)$",
                                                     line))


@pytest.fixture
def balancer(lab, syslog, tmp_path):
    path = tmp_path / "dates.cfg"
    path.write_text(CONFIG.format(log=syslog.getsockname(), web1=lab.topo.addr("web1"),
                                  web2=lab.topo.addr("web2"), ws1=lab.topo.addr("ws1")))
    lb = LabBalancer(lab, path)
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()


def get(lab, syslog, cookie: str | None = None) -> tuple[str, str, str]:
    """(x-server, set-cookie, the log's %tsc) of a GET through the balancer."""
    argv = ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w",
            "%{http_code} %header{x-server}|%header{set-cookie}"]
    if cookie is not None:
        argv += ["-H", f"Cookie: {cookie}"]
    out = lab.run("client", [*argv, f"http://{lab.topo.addr('lb')}/"]).stdout
    status, _, rest = out.partition(" ")
    assert status == "200", out
    server, _, set_cookie = rest.partition("|")
    line = syslog.recv(4096).decode()
    match = re.fullmatch(rf"{HEADER}\S+ \S+ web www/(\w+) \S+ 200 \d+ - - (\S+) .*\n", line)
    assert match and match[1] == server, line
    return server, set_cookie, match[2]


def test_cookie_dates_as_haproxy_writes_refreshes_and_expires_them(lab, balancer, syslog):
    before = int(time.time())
    server, set_cookie, tsc = get(lab, syslog)
    after = int(time.time())
    # A new cookie: the server, the last and first dates (now + 3, over 4).
    match = re.fullmatch(rf"SRV=(w[12])\|({DATE})\|({DATE}); path=/", set_cookie)
    assert match and match[1] == {"web1": "w1", "web2": "w2"}[server], set_cookie
    assert match[2] == match[3] and before <= unstamp(match[2]) <= after + 3
    assert tsc == "--NI"
    sid = match[1]

    now = int(time.time())
    # A last date still ahead: valid, nothing set again.
    fresh = f"SRV={sid}|{stamp(now + 60)}|{stamp(now - 10)}"
    assert get(lab, syslog, fresh) == (server, "", "--VN")
    # No dates: valid, and dated now, keeping to the same server.
    again, set_cookie, tsc = get(lab, syslog, f"SRV={sid}")
    assert (again, tsc) == (server, "--VU")
    assert re.fullmatch(rf"SRV={sid}\|({DATE})\|\1; path=/", set_cookie), set_cookie
    # The first date is kept when the last one is refreshed.
    first = stamp(now - 30)
    again, set_cookie, tsc = get(lab, syslog, f"SRV={sid}|{stamp(now - 10)}|{first}")
    assert (again, tsc) == (server, "--VU")
    assert re.fullmatch(rf"SRV={sid}\|{DATE}\|{re.escape(first)}; path=/",
                        set_cookie), set_cookie
    # Idle beyond maxidle (20s): ignored and balanced again, a new cookie (EI).
    _, set_cookie, tsc = get(lab, syslog, f"SRV={sid}|{stamp(now - 35)}|{stamp(now - 40)}")
    assert tsc == "--EI" and not set_cookie.endswith(f"|{stamp(now - 40)}; path=/")
    # First seen beyond maxlife (60s), though recently active: too old (OI).
    assert get(lab, syslog, f"SRV={sid}|{stamp(now)}|{stamp(now - 300)}")[2] == "--OI"


def test_websocket_bytes_count_in_the_log_and_the_stats(lab, balancer, syslog):
    result = json.loads(lab.run("client", [lab.python, "-c", WS_CLIENT,
                                           lab.topo.addr("lb")]).stdout)
    assert result["echo"] == "through the tunnel"
    assert result["head"].startswith("HTTP/1.1 101 ")
    line = syslog.recv(4096).decode()
    match = re.fullmatch(rf"{HEADER}\S+ \S+ web ws/ws1 \S+ 101 (\d+) - - ---- .*\n", line)
    assert match, line
    # The 101 as HAProxy counts it, then every byte the server sent through the tunnel.
    bytes_out = htx(result["head"]) + result["received"]
    assert int(match[1]) == bytes_out
    bytes_in = htx(result["request"].removesuffix("\r\n\r\n")) + result["sent"]

    out = lab.run("client", ["curl", "-s", "-m", "5",
                             f"http://{lab.topo.addr('lb')}/stats;csv"]).stdout
    rows = {(r["# pxname"], r["svname"]): r for r in csv.DictReader(io.StringIO(out))}
    # The stats request itself is counted once answered, as HAProxy's CSV shows.
    for key in (("ws", "ws1"), ("ws", "BACKEND"), ("web", "FRONTEND")):
        assert (int(rows[key]["bin"]), int(rows[key]["bout"])) == (bytes_in, bytes_out), key
