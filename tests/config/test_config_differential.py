"""Differential test against HAProxy: for every configuration under data/, `haproxy -c`
and `pyxlb check` agree on valid or invalid.

Runs when `haproxy` is on PATH (HAProxy 2.6 is the reference). Where pyxlb deliberately
differs (it is stricter, refuses what it does not support yet, or does not resolve
host names while checking) the file says so with its reason, in a `# haproxy: valid
(...)` or `# haproxy: invalid (...)` line, and this test checks that HAProxy does
disagree. Files in data/warnings/ must make both print a warning.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from config_files import BAD, GOOD, WARNINGS, haproxy_note

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")

ALL = [*GOOD, *WARNINGS, *BAD]


@dataclass(frozen=True)
class Verdict:
    valid: bool
    warned: bool
    output: str


def haproxy(path: Path) -> Verdict:
    # Exit status 2: "Configuration file has no error but will not start (no listener)".
    run = subprocess.run(["haproxy", "-c", "-f", path.name], cwd=path.parent,
                         capture_output=True, text=True, timeout=60)
    return Verdict(run.returncode in (0, 2), "[WARNING]" in run.stderr,
                   run.stdout + run.stderr)


def pyxlb(path: Path) -> Verdict:
    run = subprocess.run([sys.executable, "-m", "pyxlb", "check", "-f", path.name],
                         cwd=path.parent, capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 1), run.stderr
    return Verdict(run.returncode == 0, "[WARNING]" in run.stderr, run.stdout + run.stderr)


@pytest.fixture(scope="module")
def verdicts() -> dict[Path, tuple[Verdict, Verdict]]:
    """Both verdicts for every file, computed in parallel."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        theirs = pool.map(haproxy, ALL)
        ours = pool.map(pyxlb, ALL)
        return dict(zip(ALL, zip(theirs, ours, strict=True), strict=True))


def ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def expected_by_haproxy(path: Path) -> bool:
    note = haproxy_note(path)
    return note[0] if note else path.parent.name != "bad"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_haproxy_and_pyxlb_agree(path: Path,
                                 verdicts: dict[Path, tuple[Verdict, Verdict]]) -> None:
    """Both say valid for good files, invalid for bad ones, unless the file explains
    a deliberate difference; then HAProxy must say what the note says."""
    theirs, ours = verdicts[path]
    assert ours.valid == (path.parent.name != "bad"), ours.output
    assert theirs.valid == expected_by_haproxy(path), theirs.output


@pytest.mark.parametrize("path", WARNINGS, ids=ids(WARNINGS))
def test_both_warn(path: Path, verdicts: dict[Path, tuple[Verdict, Verdict]]) -> None:
    theirs, ours = verdicts[path]
    assert theirs.warned, theirs.output
    assert ours.warned, ours.output


# Every file where pyxlb deliberately disagrees with HAProxy, and why (each file's
# `# haproxy:` line gives the details).
NOT_YET = "HAProxy has it; pyxlb refuses it, saying it is not supported yet"
STRICTER = "pyxlb refuses what is almost certainly a mistake"
DELIBERATE_DIFFERENCES = {
    "acl_converter": NOT_YET,
    "acl_fetch_not_supported": NOT_YET,
    "balance_not_supported": NOT_YET,
    "http_request_action_not_supported": NOT_YET,
    "log_format": NOT_YET,
    "option_not_supported": NOT_YET,
    "predefined_acl_not_supported": NOT_YET,
    "section_not_supported": NOT_YET,
    "server_option_not_supported": NOT_YET,
    "stats_uri_in_backend": NOT_YET,
    "stick_table_data_not_supported": NOT_YET,
    "tcp_request_content": NOT_YET,
    "tune_prefix": NOT_YET,
    "bad_time": STRICTER,  # '10sec': HAProxy 2.6 warns, later versions refuse
    "condition_dangling_or": STRICTER,
    "condition_empty": STRICTER,
    "global_maxconn": STRICTER,  # 'maxconn lots' is 0 to HAProxy
    "redirect_two_targets": STRICTER,
    "stats_auth_without_colon": STRICTER,
    "server_host_names": "pyxlb check does not resolve host names; the daemon does at start",
}


def test_deliberate_differences_are_the_listed_ones() -> None:
    notes = {path.stem: haproxy_note(path) for path in ALL if haproxy_note(path) is not None}
    assert notes.keys() == DELIBERATE_DIFFERENCES.keys()
    assert all(reason for _, reason in notes.values())
