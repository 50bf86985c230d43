"""wrk from a lab namespace, and its report parsed into numbers."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from pyxlb.lab.lab import Lab

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


class WrkError(RuntimeError):
    pass


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    bytes_per_s: float
    p50_s: float | None  # only with --latency
    p99_s: float | None
    socket_errors: int  # connect + read + write + timeout
    non_2xx_3xx: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx_3xx


def _seconds(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_wrk(text: str) -> WrkResult:
    """Numbers from wrk's report; WrkError naming what is missing."""
    def need(pattern: str) -> re.Match[str]:
        if m := re.search(pattern, text, re.MULTILINE):
            return m
        raise WrkError(f"wrk report has no {pattern!r}:\n{text}")

    done = need(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
    rps = need(r"^Requests/sec:\s*([\d.]+)")
    transfer = need(r"^Transfer/sec:\s*([\d.]+)([KMGT]?B)")
    pct = {p: _seconds(v, u) for p, v, u in
           re.findall(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.MULTILINE)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        requests=int(done[1]), seconds=_seconds(done[2], done[3]), rps=float(rps[1]),
        bytes_per_s=float(transfer[1]) * _SIZE_UNITS[transfer[2]],
        p50_s=pct.get("50"), p99_s=pct.get("99"),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx_3xx=int(non2xx[1]) if non2xx else 0)


def wrk_argv(url: str, seconds: float, conns: int, threads: int = 1,
             close: bool = False) -> list[str]:
    argv = ["wrk", "--latency", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s"]
    if close:
        argv += ["-H", "Connection: close"]
    return [*argv, url]


def start_wrk(lab: Lab, argv: Sequence[str], role: str = "client") -> subprocess.Popen[str]:
    return lab.exec(role, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True)


def finish_wrk(proc: subprocess.Popen[str], timeout: float) -> WrkResult:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise WrkError(f"wrk did not finish within {timeout:.0f}s") from None
    if proc.returncode:
        raise WrkError(f"wrk exited with {proc.returncode}:\n{out}")
    return parse_wrk(out)


def run_wrk(lab: Lab, argv: Sequence[str], seconds: float) -> WrkResult:
    return finish_wrk(start_wrk(lab, argv), seconds + 30)


def combine(results: Sequence[WrkResult]) -> WrkResult:
    """Concurrent runs against different servers as one: counts and rates add up,
    latency percentiles are the worst of the runs (they cannot be merged exactly)."""
    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    return WrkResult(
        requests=sum(r.requests for r in results), seconds=max(r.seconds for r in results),
        rps=sum(r.rps for r in results), bytes_per_s=sum(r.bytes_per_s for r in results),
        p50_s=worst([r.p50_s for r in results]), p99_s=worst([r.p99_s for r in results]),
        socket_errors=sum(r.socket_errors for r in results),
        non_2xx_3xx=sum(r.non_2xx_3xx for r in results))
