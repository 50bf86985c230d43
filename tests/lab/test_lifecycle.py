"""`Lab.up`/`Lab.down` on labs of their own: down removes everything, also after a
crash or from a half-made lab, and a failed up leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from pyxlb.lab.lab import (
    Lab,
    LabError,
    in_netns,
    lab_unavailable,
    list_netns,
    reap_stale_labs,
    unique_prefix,
)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def assert_clean(lab: Lab) -> None:
    assert [n for n in list_netns() if n.startswith(f"{lab.prefix}-")] == []
    assert not lab.state_path.exists() and not lab.log_dir.exists()
    assert lab.status().absent


@pytest.fixture
def own_lab() -> Iterator[Lab]:
    """A lab (not up) apart from the session's, removed after the test."""
    if reason := lab_unavailable():
        pytest.skip(reason)
    reap_stale_labs("pc")
    lab = Lab(unique_prefix("pc"))
    try:
        yield lab
    finally:
        lab.down()
    assert_clean(lab)


def test_down_removes_namespaces_processes_and_state(own_lab: Lab) -> None:
    assert own_lab.up() is True
    pids = [s.pid for s in own_lab.status().servers]
    assert all(pids) and own_lab.state_path.exists()
    report = own_lab.down()
    assert sorted(report.namespaces) == sorted(own_lab.topo.namespaces)
    assert sorted(report.pids) == sorted(pids) and report.survivors == []
    assert all(gone(pid) for pid in pids if pid)
    assert_clean(own_lab)
    assert own_lab.down().namespaces == []  # again: nothing to do, no error


def test_down_after_a_crash(own_lab: Lab) -> None:
    own_lab.up()
    pids = [s.pid for s in own_lab.status().servers if s.pid]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(5)
    # Something the lab did not start, detached, ignoring SIGTERM: needs SIGKILL.
    stray = own_lab.exec("client", ["sh", "-c", "trap '' TERM; exec sleep 600"],
                         start_new_session=True)
    try:
        wait_until(lambda: in_netns(stray.pid, own_lab.topo.ns("client"))
                   and psutil.Process(stray.pid).name() == "sleep")
        st = own_lab.status()
        assert not st.up and not st.absent
        assert not any(s.alive for s in st.servers)
        fresh = Lab(own_lab.prefix)  # a new process knows only the namespace names
        fresh.state_path.unlink()
        fresh.stop_timeout = 0.5  # the stray ignores SIGTERM; do not wait long for it
        report = fresh.down()
        assert stray.pid in report.pids
        assert stray.wait(5) == -signal.SIGKILL
    finally:
        stray.kill()
        stray.wait()
    assert_clean(own_lab)


def test_down_and_up_over_a_half_made_lab(own_lab: Lab) -> None:
    topo = own_lab.topo
    for role in ("sw", "web1"):
        subprocess.run(["ip", "netns", "add", topo.ns(role)], check=True)
    sleeper = own_lab.exec("web1", ["sleep", "600"])
    try:
        wait_until(lambda: in_netns(sleeper.pid, topo.ns("web1")))
        assert not own_lab.status().up
        assert own_lab.up() is True  # rebuilt from scratch
        assert sleeper.wait(5) is not None
        assert own_lab.status().up
    finally:
        sleeper.kill()
        sleeper.wait()
    own_lab.down()
    assert_clean(own_lab)


def test_failed_up_leaves_nothing(own_lab: Lab) -> None:
    own_lab.python = "/bin/false"  # servers exit at once instead of saying ready
    with pytest.raises(LabError, match="exited before ready"):
        own_lab.up()
    assert_clean(own_lab)


def test_labs_of_dead_test_runs_are_reaped(own_lab: Lab) -> None:
    # A base of this run's own: parallel runs reap "pt"/"pc" labs, not this one.
    base = "g" + own_lab.prefix[-2:]
    dead = subprocess.Popen(["true"])
    dead.wait()
    ghost = Lab(unique_prefix(base, pid=dead.pid))
    alive = Lab(unique_prefix(base))  # ours: must be spared
    try:
        for lab in (ghost, alive):
            for role in ("sw", "lb"):
                subprocess.run(["ip", "netns", "add", lab.topo.ns(role)], check=True)
        assert reap_stale_labs(base) == [ghost.prefix]
        assert ghost.status().absent
        assert all(alive.status().namespaces[alive.topo.ns(r)] for r in ("sw", "lb"))
    finally:
        ghost.down()
        alive.down()
