"""The stats page, side by side: the real HAProxy 2.6 and `pyxlb up` in the lab's
balancer on the same config (each on its own ports), the same traffic from the
client namespace, then the same stats requests. The heads of the answers must be
HAProxy's byte for byte (chunked, header order); the CSV's counters must have
moved as HAProxy's did, column by column.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from side_by_side import BALANCERS, raw_answer, running

from pyxlb.lab.lab import Lab

HERE = Path(__file__).resolve().parent
CLIENT = str(HERE / "raw_http_client.py")

CONFIG = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend http_front
    bind *:{web}
    http-request deny if {{ path /deny }}
    default_backend http_back

backend http_back
    balance roundrobin
    http-request deny if {{ path /bedeny }}
    http-request auth if {{ path /auth }}
    redirect location /x if {{ path /redir }}
    server web1 {web1}:80
    server web2 {web2}:80

listen stats
    bind *:{stats}
    stats enable
    stats uri /
    stats refresh 10s
"""

# Counters that must have moved by the same amounts in both.
COUNTERS = ("stot", "bin", "bout", "dreq", "ereq", "econ", "wretr", "wredis", "lbtot",
            "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
            "req_tot", "conn_tot", "intercepted", "connect")
# And values that must be the same; scur too, but for backends (pyxlb counts the
# requests on their servers, not on the backend itself).
STATES = ("status", "weight", "act", "bck", "mode", "type", "sid", "iid")

ASKS = {
    # name: the raw request, to the stats listener
    "keep-alive": b"GET /;csv HTTP/1.1\r\nHost: x\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "http10": b"GET /;csv;norefresh HTTP/1.0\r\nHost: x\r\n\r\n",
    "head": b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
}


class Side:
    def __init__(self, lab: Lab, web: int, stats: int) -> None:
        self.lab, self.web, self.stats = lab, web, stats

    def raw(self, payload: bytes) -> bytes:
        """The stats listener's answer to ``payload``."""
        return raw_answer(self.lab, self.stats, payload)

    def csv(self) -> dict[tuple[str, str], dict[str, str]]:
        answer = self.raw(b"GET /;csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = dechunk(answer.partition(b"\r\n\r\n")[2]).decode()
        header, *lines = text.splitlines()
        names = header.removeprefix("# ").split(",")
        rows = (dict(zip(names, line.split(","), strict=True)) for line in lines)
        return {(r["pxname"], r["svname"]): r for r in rows}

    def traffic(self) -> None:
        # First (the requests after it leave it time to be seen): a connection
        # closed before its first byte, a bad request in HAProxy 2.6.
        self.lab.run("client", [self.lab.python, "-c",
                                "import socket,sys; socket.create_connection("
                                "(sys.argv[1], int(sys.argv[2]))).close()",
                                self.lab.topo.addr("lb"), str(self.web)])
        base = f"http://{self.lab.topo.addr('lb')}:{self.web}"
        # The last three are answered by the backend's rules: counted there too.
        for path in ("/", "/", "/", "/", "/nope", "/deny", "/bedeny", "/auth", "/redir"):
            self.lab.run("client", ["curl", "-s", "-o", "/dev/null", "-m", "5", base + path])


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        if not n:
            assert body == b"\r\n", "the last chunk ends the message"
            return out
        out += body[:n]
        assert body[n:n + 2] == b"\r\n"
        body = body[n + 2:]


@pytest.fixture(scope="module")
def sides(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    tmp = tmp_path_factory.mktemp("stats")
    with ExitStack() as stack:
        made = []
        for name, web, stats in zip(BALANCERS, (8081, 8082), (8481, 8482), strict=True):
            config = tmp / f"{name}.cfg"
            config.write_text(CONFIG.format(web=web, stats=stats, web1=lab.topo.addr("web1"),
                                            web2=lab.topo.addr("web2")))
            stack.enter_context(running(lab, name, config, [web, stats]))
            made.append(Side(lab, web, stats))
        yield made[0], made[1]


# The rates, times and lastsess (pyxlb.stats.counters: Rate, QueueTime): filled
# where HAProxy fills them; their values depend on when the requests came, so
# they are compared exactly only before any traffic.
TIMING = ("rate", "rate_max", "req_rate", "req_rate_max", "conn_rate", "conn_rate_max",
          "lastsess", "qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max",
          "rtime_max", "ttime_max")


def timing(side: Side) -> dict[tuple[str, str], dict[str, str]]:
    return {key: {c: row[c] for c in TIMING}
            for key, row in side.csv().items() if key[0] != "stats"}


def test_before_traffic_the_rates_and_times_read_as_haproxys(sides):
    haproxy, pyxlb = sides
    theirs, ours = timing(haproxy), timing(pyxlb)
    # Servers and backends exactly (-1, zeros, empty). Not the frontends' values:
    # HAProxy's was probed at start (HaproxyInLab awaits its ports), a
    # connection without a request that its rate_max and req_rate_max count.
    front = ("http_front", "FRONTEND")
    assert {k: v for k, v in ours.items() if k != front} == {
        k: v for k, v in theirs.items() if k != front}
    assert {c for c, v in ours[front].items() if v != ""} == {
        c for c, v in theirs[front].items() if v != ""}
    # The same probe to pyxlb: the maxima of one connection without a request.
    pyxlb.lab.run("client", [pyxlb.lab.python, "-c",
                             "import socket,sys; socket.create_connection("
                             "(sys.argv[1], int(sys.argv[2]))).close()",
                             pyxlb.lab.topo.addr("lb"), str(pyxlb.web)])
    # (seen on another listener than the CSV's: asked again until counted)
    maxima = ("rate_max", "conn_rate_max", "req_rate_max")
    for _ in range(50):
        now = timing(pyxlb)[front]
        if now["req_rate_max"] != "0":
            break
    assert {c: now[c] for c in maxima} == {c: theirs[front][c] for c in maxima} == dict.fromkeys(
        maxima, "1")


@pytest.mark.parametrize("ask", ASKS)
def test_the_stats_answers_are_headed_and_chunked_as_haproxys(sides, ask):
    haproxy, pyxlb = sides
    theirs, ours = haproxy.raw(ASKS[ask]), pyxlb.raw(ASKS[ask])
    head, _, body = ours.partition(b"\r\n\r\n")
    assert head == theirs.partition(b"\r\n\r\n")[0]
    if ask == "head":
        assert body == b""
    else:
        assert dechunk(body)


def test_the_csv_counts_the_traffic_as_haproxy_does(sides):
    deltas = []
    for side in sides:
        before = side.csv()
        side.traffic()
        after = side.csv()
        deltas.append({
            key: {**{c: int(after[key][c] or 0) - int(before[key][c] or 0) for c in COUNTERS},
                  **{c: after[key][c] for c in STATES},
                  **({"scur": after[key]["scur"]} if key[1] != "BACKEND" else {})}
            for key in after if key[0] != "stats"})
    theirs, ours = deltas
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key] == theirs[key], key


def test_after_traffic_the_same_rate_and_time_columns_are_filled(sides):
    filled = []
    for side in sides:
        side.traffic()
        filled.append({key: {c for c, v in row.items() if v != ""}
                       for key, row in timing(side).items()})
        # Every server and the backend had a session just now.
        rows = timing(side)
        assert all(rows[key]["lastsess"] != "-1" for key in rows if key[1] != "FRONTEND")
        assert int(rows[("http_front", "FRONTEND")]["req_rate_max"]) >= 1
    assert filled[1] == filled[0]
