"""Helpers for config tests: parse dedented text as "t.cfg" with an empty environment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping

import pytest
from config_files import messages

from pyxlb.config import Config, ConfigError, parse_text


def parse(text: str, env: Mapping[str, str] | None = None) -> Config:
    return parse_text(textwrap.dedent(text), "t.cfg", env={} if env is None else env)


def error_lines(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Every error the text has, as the user reads them; fails if it parses."""
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return messages(info.value)


@pytest.fixture(name="parse")
def parse_fixture() -> Callable[..., Config]:
    return parse


@pytest.fixture(name="error_lines")
def error_lines_fixture() -> Callable[..., list[str]]:
    return error_lines
