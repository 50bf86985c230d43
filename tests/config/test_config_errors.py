"""Bad configurations: each gives exactly the messages a user should read, with file:line:col."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from config_files import BAD, messages, stated

from pyxlb.config import ConfigError, ConfigErrors, Where, load_config, parse_text

NOT_YET = "is a HAProxy keyword pyxlb does not support yet"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_configuration(path: Path) -> None:
    """Each file in data/bad/ gives exactly the errors its `# expect:` lines state."""
    expected = stated(path, "expect")
    assert expected, f"{path.name} states no expected error"
    with pytest.raises(ConfigError) as info:
        load_config([str(path)], env={})
    assert messages(info.value) == expected


def test_there_are_many_bad_configurations() -> None:
    assert len(BAD) >= 40


def test_every_error_is_reported_at_once(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        global
            maxconn lots
        frontend f
            bind :99999
            default_backend b
        backend b
            server a 10.0.0.1:80 wieght 2
    """) == [
        "t.cfg:2:13: 'maxconn': expected an integer from 1 to 2147483647, not 'lots'",
        "t.cfg:4:10: 'bind': invalid port '99999' (expected 1 to 65535)",
        "t.cfg:7:26: unknown server option 'wieght'; did you mean 'weight'?",
    ]


def test_config_errors_carries_the_list() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_text("global\n  chrot /x\n  usr haproxy\n", "t.cfg", env={})
    err = info.value
    assert [e.where for e in err.errors] == [Where("t.cfg", 2, 3), Where("t.cfg", 3, 3)]
    assert err.where == Where("t.cfg", 2, 3)
    assert err.message == "2 errors in the configuration"
    assert str(err).splitlines() == [str(e) for e in err.errors]


def test_error_parts() -> None:
    err = ConfigError("boom", Where("a.cfg", 3, 7))
    assert (err.message, str(err.where), str(err)) == ("boom", "a.cfg:3", "a.cfg:3:7: boom")
    assert str(ConfigError("boom", Where("a.cfg", 3))) == "a.cfg:3: boom"
    assert str(ConfigError("boom", Where("a.cfg", 0))) == "a.cfg: boom"
    assert str(ConfigError("boom")) == "boom"


def test_a_bad_section_header_still_reads_its_body(error_lines: Callable[..., list[str]]) -> None:
    """The body's own mistakes are reported; the section does not become a proxy."""
    assert error_lines("""\
        frontend x/y
            bind :80
            mode ftp
        backend x/y
    """) == [
        "t.cfg:1:10: 'frontend' name: character '/' is not permitted in name 'x/y' (use letters, "
        "digits, '-', '_', '.' and ':')",
        "t.cfg:3:10: unknown mode 'ftp' (expected 'http' or 'tcp')",
        "t.cfg:4:9: 'backend' name: character '/' is not permitted in name 'x/y' (use letters, "
        "digits, '-', '_', '.' and ':')",
    ]


def test_an_unsupported_section_is_reported_once(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        peers mypeers
            peer a 10.0.0.1:1024
            peer b 10.0.0.2:1024
        cache static
            total-max-size 4
        backend b
            balance leastconn
    """) == [
        f"t.cfg:1:1: 'peers' {NOT_YET}",
        f"t.cfg:4:1: 'cache' {NOT_YET}",
    ]


def test_errors_carry_the_warnings_found_with_them(error_lines: Callable[..., list[str]]) -> None:
    """`pyxlb check` shows both; the parser attaches the warnings to what it raises."""
    with pytest.raises(ConfigError) as info:
        parse_text("backend b\n  balance fastest\n", "t.cfg", env={})
    assert [str(w) for w in info.value.warnings] == [
        "t.cfg:1:1: missing timeouts for backend 'b': set 'timeout connect', 'timeout server', "
        "or connections can stay open forever"]


def test_resolution_errors_come_after_parse_errors(error_lines: Callable[..., list[str]]) -> None:
    """Names are resolved once everything is read; each unknown name is one error."""
    assert error_lines("""\
        frontend f
            mode http
            bind :80
            bind :81 nope
            acl auth http_auth(users)
            http-request track-sc1 src table t
            use_backend api if auth
            default_backend web
    """) == [
        "t.cfg:4:14: unknown bind option 'nope'",
        "t.cfg:5:14: 'http_auth': no userlist is named 'users'",
        "t.cfg:6:38: 'track-sc1': no stick table is named 't' (a table takes the name of the "
        "proxy that declares it)",
        "t.cfg:7:17: use_backend of frontend 'f': no backend is named 'api'",
        "t.cfg:8:21: default_backend of frontend 'f': no backend is named 'web'",
    ]
