"""`pyxlb check -f FILE...`: HAProxy-like output, every message with file:line:col;
exit 0 when valid, 1 otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from config_files import GOOD_DIR

from pyxlb.cli import main

TUTORIAL = sorted(GOOD_DIR.glob("tutorial_*.cfg"))


def check(*paths: str | Path) -> tuple[int, str, str]:
    args = ["check"]
    for path in paths:
        args += ["-f", str(path)]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path", TUTORIAL, ids=[p.stem for p in TUTORIAL])
def test_each_tutorial_configuration_prints_only_success(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOOD_DIR)  # the test certificate's relative path
    assert check(path.name) == (0, "Configuration file is valid\n", "")


def test_errors_and_warnings_in_file_order(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("frontend f\n"
                   "  mode http\n"
                   "  bind :80\n"
                   "  timeout client 5s\n"
                   "  redirect scheme https\n"
                   "  http-request deny if { src 10.0.0.1 }\n"
                   "  default_backend nope\n"
                   "  balance roundrobin\n")
    code, out, err = check(cfg)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"[WARNING] {cfg}:6:3: a 'http-request' rule placed after a 'redirect' rule will still "
        "be processed before",
        f"[ALERT] {cfg}:7:19: default_backend of frontend 'f': no backend is named 'nope'",
        f"[WARNING] {cfg}:8:3: 'balance' ignored because frontend 'f' has no backend capability",
        "[ALERT] Fatal errors found in configuration.",
    ]


def test_warnings_alone_keep_the_configuration_valid(tmp_path: Path) -> None:
    cfg = tmp_path / "warn.cfg"
    cfg.write_text("backend b\n  server a 10.0.0.1:80\n")
    assert check(cfg) == (
        0, "Configuration file is valid\n",
        f"[WARNING] {cfg}:1:1: missing timeouts for backend 'b': set 'timeout connect', "
        "'timeout server', or connections can stay open forever\nWarnings were found.\n")


def test_several_files_and_unreadable_ones(tmp_path: Path) -> None:
    first = tmp_path / "a.cfg"
    first.write_text("defaults\n  mode http\n  timeout connect 1s\n  timeout server 1s\n")
    second = tmp_path / "b.cfg"
    second.write_text("backend b\n  server a 10.0.0.1:80\n")
    assert check(first, second) == (0, "Configuration file is valid\n", "")
    missing = tmp_path / "missing.cfg"
    code, out, err = check(first, missing)
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"[ALERT] {missing}: cannot read the file: No such file or "
                                "directory", "[ALERT] Fatal errors found in configuration."]


def test_a_certificate_that_cannot_be_read(tmp_path: Path) -> None:
    cfg = tmp_path / "tls.cfg"
    cfg.write_text("frontend f\n  bind :443 ssl crt site.pem\n  timeout client 1s\n")
    code, _, err = check(cfg)
    assert code == 1
    assert err.splitlines()[0] == \
        f"[ALERT] {cfg}:2:3: cannot read certificate 'site.pem': No such file or directory"


def test_a_certificate_directory_is_accepted(tmp_path: Path) -> None:
    # HAProxy loads every certificate of a crt directory; l7/tls.py does too.
    (tmp_path / "certs").mkdir()
    cfg = tmp_path / "tls.cfg"
    cfg.write_text(f"frontend f\n  bind :443 ssl crt {tmp_path / 'certs'}\n"
                   "  timeout client 1s\n")
    assert check(cfg)[0] == 0
