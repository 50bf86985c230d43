"""bench_lab's tables from made-up rows: the routed reference's rows and its ratios
beside the no-balancer ceiling's."""

from __future__ import annotations

import pytest
from bench_lab import BULK_LOAD, KEEPALIVE, Row, print_ratios, print_table
from benchlab.cpu import CpuUse
from benchlab.wrk import WrkResult


def row(section: str, load: str, who: str, rps: float, softirq_s: float = 1.0,
        process_s: float = 0.0) -> Row:
    res = WrkResult(requests=int(rps * 10), seconds=10.0, rps=rps, bytes_per_s=rps * 1000,
                    p50_s=0.001, p99_s=0.002, socket_errors=0, non_2xx_3xx=0)
    return Row(section, load, who, res, CpuUse(process_s, softirq_s))


ROWS = [
    row("none", KEEPALIVE.name, "direct", 1000.0, softirq_s=1.0),
    row("none", KEEPALIVE.name, "routed", 800.0, softirq_s=1.6),
    row("L4", KEEPALIVE.name, "pyxlb", 600.0),
    row("L4", KEEPALIVE.name, "haproxy", 500.0),
    row("L4", BULK_LOAD.name, "pyxlb", 5.0),  # no references, no haproxy: no ratios
]


def ratio_line(out: str, section: str) -> list[str]:
    lines = out.split("ratios", 1)[1].splitlines()
    return next(line for line in lines if line.startswith(section)).split()


def test_the_ratio_table_puts_pyxlb_against_the_routed_reference_and_it_against_the_ceiling(
        capsys):
    print_ratios(ROWS)
    out = capsys.readouterr().out
    header = out.split("ratios", 1)[1].splitlines()[1].split()
    assert header[2:5] == ["pyxlb/ceil", "pyxlb/routed", "routed/ceil"]
    # test, load, pyxlb/ceil, pyxlb/routed, routed/ceil, hap/ceil, pyxlb/hap
    assert ratio_line(out, "L4")[2:7] == ["0.60x", "0.75x", "0.80x", "0.50x", "1.20x"]
    assert "none" not in out.split("ratios", 1)[1]  # the references are no test rows


def test_without_routed_rows_their_ratios_are_dashes(capsys):
    print_ratios([r for r in ROWS if r.who != "routed"])
    assert ratio_line(capsys.readouterr().out, "L4")[2:5] == ["0.60x", "-", "-"]


def test_the_routed_row_tells_the_softirq_it_adds_per_request_to_the_ceiling(capsys):
    print_table(ROWS[:2])
    lines = capsys.readouterr().out.splitlines()
    direct = next(line for line in lines if " direct " in line).split()
    routed = next(line for line in lines if " routed " in line).split()
    assert direct[-2:] == ["-", "-"]
    # 1.6 s over 8000 requests, less 1.0 s over 10000: 100 µs each
    assert float(routed[-2]) == pytest.approx(100.0)


def test_pyxlb_in_one_process_per_cpu_gets_its_own_ratio_row(capsys):
    from bench_lab import CPUS, PYXLB_PROCESSES

    rows = [*ROWS, row("L4", KEEPALIVE.name, PYXLB_PROCESSES, 750.0)]
    print_ratios(rows)
    out = capsys.readouterr().out
    assert ratio_line(out, f"L4/{CPUS}p")[2] == "0.75x"
    assert ratio_line(out, "L4")[2] == "0.60x"
