"""Configurations HAProxy warns about get the same warnings, each naming file:line:col.

Each file in data/warnings/ is valid and states its warnings in `# warning:` lines
(data/warnings/redirect_before_http_request.cfg is the issue's example).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_files import WARNINGS, stated

from pyxlb.config import load_config


@pytest.mark.parametrize("path", WARNINGS, ids=[p.stem for p in WARNINGS])
def test_warnings(path: Path) -> None:
    expected = stated(path, "warning")
    assert expected, f"{path.name} states no warning"
    assert [str(w) for w in load_config([str(path)], env={}).warnings] == expected


def test_the_redirect_warning_uses_haproxys_words() -> None:
    [warning] = stated(next(p for p in WARNINGS if p.stem == "redirect_before_http_request"),
                       "warning")
    assert warning.endswith(":17:5: a 'http-request' rule placed after a 'redirect' rule will "
                            "still be processed before")
