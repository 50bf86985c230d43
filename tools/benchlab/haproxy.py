"""HAProxy 2.6 in the lab's balancer namespace, in the foreground, on a config file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pyxlb.lab.lab import Lab, stop_pids

from .netwait import wait_listening


class HaproxyInLab:
    def __init__(self, lab: Lab, config: Path, ports: list[int]) -> None:
        self.lab, self.config, self.ports = lab, config, ports
        self.log_path = config.with_suffix(".haproxy.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = self.lab.run("lb", ["haproxy", "-c", "-q", "-f", str(self.config)], check=False)
        if check.returncode:
            raise RuntimeError(f"haproxy -c -f {self.config}:\n{check.stdout}{check.stderr}")
        with open(self.log_path, "wb") as log:
            self.proc = self.lab.exec("lb", ["haproxy", "-db", "-f", str(self.config)],
                                      stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        for port in self.ports:
            wait_listening(self.lab, self.lab.topo.addr("lb"), port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            stop_pids([self.proc.pid])
            self.proc.wait()
            self.proc = None
