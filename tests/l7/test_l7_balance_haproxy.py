"""Differential test: the balancers against a live HAProxy on loopback.

One HAProxy runs a `listen` per scenario (127.0.0.1 only) in front of one tiny HTTP
server, and tags each response with the server it chose (``%s``). Each scenario is
a random but seeded mix of servers (weights, backups, ``option allbackups``),
requests (client source address, URI or header as the algorithm needs) and events
sent on the stats socket (``disable server``, ``enable server``, ``set weight``);
the same steps go through our balancer and both must choose the same servers.

leastconn and first depend on connection timing; their literals, taken the same
way, are in test_l7_balance_connections.py.
"""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from balance_fakes import Srv

from pyxlb.config.model import BalanceParams
from pyxlb.l7.balance import make_balancer, source_key

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy is not installed")

HEADER = "x-key"



@dataclass
class Scenario:
    name: str
    algorithm: str
    hash_type: str
    servers: list[Srv]
    allbackups: bool
    params: BalanceParams
    args: str
    # ("req", raw key for HAProxy or None) | ("down"|"up", server) | ("weight", server, w)
    steps: list[tuple] = field(default_factory=list)

    def config(self, backend_port: int) -> str:
        algorithm = f"hdr({HEADER})" if self.algorithm == "hdr" else self.algorithm
        lines = [f"listen {self.name}", "  bind 127.0.0.1:{port}",
                 "  http-response set-header x-srv %s",
                 f"  balance {algorithm} {self.args}".rstrip()]
        if self.hash_type != "map-based":
            lines.append(f"  hash-type {self.hash_type}")
        if self.allbackups:
            lines.append("  option allbackups")
        for s in self.servers:
            lines.append(f"  server {s.name} 127.0.0.1:{backend_port} weight {s.weight}"
                         + (" backup" if s.backup else ""))
        return "\n".join(lines) + "\n"


def _key(rng: random.Random, algorithm: str) -> str | None:
    if algorithm == "source":
        return f"127.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if algorithm == "uri":
        path = "/" + "/".join(rng.choice(["a", "bb", "img", "x.png", "", "index.html"])
                              for _ in range(rng.randint(0, 4)))
        return path + (rng.choice(["?q=1", "?a=b&c=d", "?"]) if rng.random() < 0.4 else "")
    if algorithm == "hdr":
        if rng.random() < 0.15:
            return None
        return rng.choice(["www.example.com", "example.com", "a.b.c.d", "nodot",
                           "foo.org:8080", "x, y", '"a,b", c', " spaced.example.net ",
                           "api.alpha.org", "beta.com", "www.gamma.com"])
    return None


def _scenarios() -> list[Scenario]:
    rng = random.Random(2026)
    families = [("roundrobin", "map-based"), ("static-rr", "map-based"),
                ("source", "map-based"), ("uri", "map-based"), ("hdr", "map-based"),
                ("source", "consistent"), ("uri", "consistent"), ("hdr", "consistent")]
    out = []
    for algorithm, hash_type in families:
        dynamic = algorithm == "roundrobin" or hash_type == "consistent"
        for i in range(10):
            servers = [Srv("abcde"[j], rng.choice([1, 1, 2, 3, 5, 7, 10, 33]))
                       for j in range(rng.randint(2, 5))]
            if rng.random() < 0.4:
                servers += [Srv("x", rng.randint(1, 5), True), Srv("y", rng.randint(1, 5), True)]
            params, args = BalanceParams(header=HEADER), ""
            if algorithm == "uri":
                params, args = rng.choice([
                    (BalanceParams(), ""), (BalanceParams(whole=True), "whole"),
                    (BalanceParams(depth=2), "depth 2"), (BalanceParams(len=4), "len 4"),
                ])
            elif algorithm == "hdr" and i % 2:
                params, args = BalanceParams(header=HEADER, use_domain_only=True), "use_domain_only"
            sc = Scenario(f"{algorithm}_{hash_type}_{i}", algorithm, hash_type, servers,
                          rng.random() < 0.5, params, args)
            for _ in range(rng.randint(3, 6)):
                sc.steps += [("req", _key(rng, algorithm)) for _ in range(rng.randint(1, 15))]
                victim = rng.choice(servers)
                roll = rng.random()
                if roll < 0.35:
                    sc.steps.append(("down", victim))
                elif roll < 0.7:
                    sc.steps.append(("up", victim))
                else:
                    weight = (rng.choice([0, 1, 2, 5, 10, 50]) if dynamic
                              else rng.choice([0, victim.weight]))
                    sc.steps.append(("weight", victim, weight))
            sc.steps += [("req", _key(rng, algorithm)) for _ in range(12)]
            out.append(sc)
    return out


SCENARIOS = _scenarios()


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.send_header("connection", "close")
        self.end_headers()


class LiveHAProxy:
    def __init__(self, scenarios: list[Scenario], workdir: Path) -> None:
        self.backend = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        self.backend.daemon_threads = True
        threading.Thread(target=self.backend.serve_forever, args=(0.05,), daemon=True).start()
        self.socket_path = str(workdir / "admin.sock")
        self.port_of = dict(zip((sc.name for sc in scenarios), _free_ports(len(scenarios)),
                                strict=True))
        sections = [
            "global\n  nbthread 1\n"
            f"  stats socket {self.socket_path} level admin\n",
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n"
            "  timeout server 10s\n",
        ]
        backend_port = self.backend.server_address[1]
        for sc in scenarios:
            sections.append(sc.config(backend_port).replace("{port}", str(self.port_of[sc.name])))
        cfg = workdir / "haproxy.cfg"
        cfg.write_text("\n".join(sections))
        self.log = workdir / "haproxy.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        pending = set(self.port_of.values())
        while pending or not Path(self.socket_path).exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start listening")
            for port in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    pending.discard(port)
                except OSError:
                    pass
            time.sleep(0.02)

    def request(self, sc: Scenario, key: str | None) -> str:
        source, path, headers = "127.0.0.1", "/", {}
        if sc.algorithm == "source":
            source = key or source
        elif sc.algorithm == "uri":
            path = key or path
        elif key is not None:
            headers[HEADER] = key
        conn = http.client.HTTPConnection("127.0.0.1", self.port_of[sc.name], timeout=10,
                                          source_address=(source, 0))
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.getheader("x-srv") or "-"
        finally:
            conn.close()

    def command(self, line: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path)
            s.sendall(line.encode() + b"\n")
            reply = b"".join(iter(lambda: s.recv(4096), b""))
        assert not reply.strip(), f"{line!r}: {reply!r}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.backend.shutdown()
        self.backend.server_close()


def _free_ports(n: int) -> list[int]:
    held = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHAProxy]:
    live = LiveHAProxy(SCENARIOS, tmp_path_factory.mktemp("haproxy"))
    yield live
    live.close()


def _ours(sc: Scenario) -> str:
    balancer = make_balancer(sc.algorithm, sc.servers, sc.allbackups, sc.params, sc.hash_type)
    out = []
    for step in sc.steps:
        if step[0] == "req":
            raw = step[1]
            key = None if raw is None else (
                source_key(raw) if sc.algorithm == "source" else raw.encode())
            server = balancer.pick(key)
            out.append("-" if server is None else server.name)
        elif step[0] == "weight":
            balancer.set_weight(step[1], step[2])
        else:
            balancer.set_usable(step[1], step[0] == "up")
    return "".join(out)


def _theirs(live: LiveHAProxy, sc: Scenario) -> str:
    out = []
    for step in sc.steps:
        if step[0] == "req":
            out.append(live.request(sc, step[1]))
        elif step[0] == "weight":
            live.command(f"set weight {sc.name}/{step[1].name} {step[2]}")
        else:
            verb = "enable" if step[0] == "up" else "disable"
            live.command(f"{verb} server {sc.name}/{step[1].name}")
    return "".join(out)


@pytest.mark.parametrize("sc", SCENARIOS, ids=[sc.name for sc in SCENARIOS])
def test_same_servers_as_haproxy(haproxy: LiveHAProxy, sc: Scenario) -> None:
    assert _ours(sc) == _theirs(haproxy, sc)
