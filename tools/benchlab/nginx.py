"""nginx as the benchmark's web servers: one private instance per lab namespace,
with its config, pid file, logs and documents under a work directory of ours,
never the system's service."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pyxlb.lab.lab import Lab, stop_pids

from .netwait import wait_listening

SMALL = "small.txt"  # the "small file" of the benchmarks
SMALL_SIZE = 128
BULK = "bulk.bin"  # for bytes/s
BULK_SIZE = 1 << 20

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {{
        listen {port} backlog=4096;
        root {dir}/www;
    }}
}}
"""


def nginx_conf(workdir: Path, port: int) -> str:
    return _CONF.format(dir=workdir, port=port)


class NginxBackends:
    """nginx in each of `roles`' namespaces, listening on `port`."""

    def __init__(self, lab: Lab, roles: list[str], port: int, workdir: Path) -> None:
        self.lab, self.roles, self.port, self.workdir = lab, roles, port, workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for role in self.roles:
            d = self.workdir / f"nginx-{role}"
            (d / "tmp").mkdir(parents=True, exist_ok=True)
            (d / "www").mkdir(exist_ok=True)
            line = f"served by {role}\n".encode()
            (d / "www" / SMALL).write_bytes((line * SMALL_SIZE)[:SMALL_SIZE])
            (d / "www" / BULK).write_bytes(bytes(BULK_SIZE))
            (d / "nginx.conf").write_text(nginx_conf(d, self.port))
            with open(d / "stderr.log", "wb") as log:
                self.procs.append(self.lab.exec(
                    role, ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True))
        for role in self.roles:
            wait_listening(self.lab, self.lab.topo.addr(role), self.port)

    def stop(self) -> None:
        stop_pids([p.pid for p in self.procs])
        for p in self.procs:
            p.wait()
        self.procs.clear()

    def urls(self, path: str) -> list[str]:
        return [f"http://{self.lab.topo.addr(r)}:{self.port}/{path}" for r in self.roles]
