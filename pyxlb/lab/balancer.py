"""`pyxlb up` running in a lab's balancer namespace, as a child process.

Shared by the demo and the end-to-end tests, so both drive the real CLI the
way a user would: `pyxlb up --netns NS iface eth0 -f CONFIG`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from pyxlb.daemon import stop_instance
from pyxlb.datapath.instance import Instance
from pyxlb.lab.lab import Lab


def lab_config(name: str) -> Path:
    """A configuration shipped for the lab (pyxlb/lab/configs/NAME.cfg)."""
    return Path(str(files("pyxlb.lab") / "configs" / f"{name}.cfg"))


class BalancerError(RuntimeError):
    pass


class LabBalancer:
    def __init__(self, lab: Lab, config: Path, xdp_mode: str = "auto",
                 hook: str = "auto") -> None:
        self.lab = lab
        self.config = config
        self.xdp_mode = xdp_mode
        self.hook = hook
        self.instance = Instance(lab.topo.iface, lab.topo.ns("lb"))
        self.log_path = lab.log_dir / "pyxlb-up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def pyxlb_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pyxlb", *args]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs `pyxlb ARGS` from the root namespace, as another shell would."""
        return subprocess.run(self.pyxlb_argv(*args), capture_output=True, text=True,
                              check=check, timeout=60)

    def start(self, timeout_s: float = 60.0) -> None:
        """Starts `pyxlb up` and waits until its listeners are open."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.pyxlb_argv("up", "--netns", self.instance.netns or "", "iface",
                               self.instance.iface, "-f", str(self.config),
                               "--xdp-mode", self.xdp_mode, "--hook", self.hook)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BalancerError(f"pyxlb up exited with {self.proc.returncode}:\n{self.log()}")
            state = self.instance.state()
            # A killed daemon's state may still say ready: it must be this one's.
            if state and state.get("pid") == self.proc.pid and state.get("ready"):
                return
            time.sleep(0.05)
        self.stop()
        raise BalancerError(f"pyxlb up was not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> int | None:
        """Stops the daemon as `pyxlb down` does; returns its exit status."""
        stop_instance(self.instance)
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> LabBalancer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
