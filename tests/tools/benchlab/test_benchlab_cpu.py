"""CPU meters: /proc/stat's softirq column, and a process tree's CPU seconds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from benchlab.cpu import CpuMeter, softirq_seconds

STAT = """\
cpu  100 0 200 9000 5 0 250 0 0 0
cpu0 50 0 100 4500 2 0 125 0 0 0
intr 12345
"""


def test_softirq_is_the_seventh_column_of_the_aggregate_line_in_clock_ticks():
    assert softirq_seconds(STAT) == pytest.approx(250 / os.sysconf("SC_CLK_TCK"))


def test_a_stat_without_the_aggregate_line_is_an_error():
    with pytest.raises(ValueError, match="'cpu' line"):
        softirq_seconds(STAT.split("\n", 1)[1])


# Waits for a line, does a fixed amount of work, says so, then waits for EOF.
WORKER = ("import sys; sys.stdin.readline(); sum(i * i for i in range(2_000_000)); "
          "print('done', flush=True); sys.stdin.read()")


def test_the_meter_counts_the_cpu_of_a_child_of_the_process_it_watches():
    # `; true` keeps the shell as the parent instead of exec-ing python.
    shell = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{WORKER}"; true'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert shell.stdin is not None and shell.stdout is not None
    try:
        meter = CpuMeter([shell.pid])
        meter.start()
        shell.stdin.write("go\n")
        shell.stdin.flush()
        assert shell.stdout.readline() == "done\n"
        used = meter.stop()
        assert used.process_s > 0
        assert used.softirq_s >= 0
    finally:
        shell.kill()
        shell.wait()


def test_a_process_that_is_gone_counts_nothing():
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout
    meter = CpuMeter([int(gone)])
    meter.start()
    assert meter.stop().process_s == 0
