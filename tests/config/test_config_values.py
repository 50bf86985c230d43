"""Argument values: HAProxy times, integers, names, ports and addresses."""

from __future__ import annotations

import pytest

from pyxlb.config.values import (
    BadValue,
    format_address,
    parse_address,
    parse_int,
    parse_name,
    parse_time_ms,
)


@pytest.mark.parametrize(("text", "ms"), [
    ("0", 0), ("5000", 5000), ("1500us", 2), ("1us", 1), ("250ms", 250), ("30s", 30_000),
    ("2m", 120_000), ("1h", 3_600_000), ("1d", 86_400_000), ("3600s", 3_600_000),
    ("2147483647", 2**31 - 1), ("24d", 2_073_600_000),
])
def test_times_are_milliseconds_rounded_up(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize(("text", "message"), [
    ("", "'' is not a time: write milliseconds, or a number with a unit (us, ms, s, m, h, d)"),
    ("abc", "'abc' is not a time: write milliseconds, or a number with a unit (us, ms, s, m, h, "
            "d)"),
    ("-5", "'-5' is not a time: write milliseconds, or a number with a unit (us, ms, s, m, h, d)"),
    ("5 s", "'5 s' is not a time: write milliseconds, or a number with a unit (us, ms, s, m, h, "
            "d)"),
    ("10sec", "unknown time unit 'sec' in '10sec' (units are us, ms, s, m, h, d)"),
    ("1x", "unknown time unit 'x' in '1x' (units are us, ms, s, m, h, d)"),
    ("25d", "'25d' is too long: timers stop at 2147483647 ms (about 24.8 days)"),
    ("9" * 5000, f"'{'9' * 5000}' is too long: timers stop at 2147483647 ms (about 24.8 days)"),
])
def test_bad_times(text: str, message: str) -> None:
    with pytest.raises(BadValue) as info:
        parse_time_ms(text)
    assert str(info.value) == message


def test_integers_are_decimal_and_bounded() -> None:
    assert parse_int("256", 0, 256) == 256
    for text in ("257", "-1", "0x10", "1e3", "", " 1", "١", "9" * 5000):
        with pytest.raises(BadValue):
            parse_int(text, 0, 256)


def test_names_allow_what_haproxy_allows() -> None:
    assert parse_name("http_back-2.v6:a") == "http_back-2.v6:a"
    with pytest.raises(BadValue, match="character '/' is not permitted in name 'a/b'"):
        parse_name("a/b")


@pytest.mark.parametrize(("text", "need_port", "any_host", "expected"), [
    ("*:80", True, True, (None, 80)),
    (":80", True, True, (None, 80)),
    ("0.0.0.0:80", True, True, ("0.0.0.0", 80)),
    (":::80", True, True, ("::", 80)),
    ("[::]:80", True, True, ("::", 80)),
    ("[::1]:8080", True, True, ("::1", 8080)),
    ("[2001:DB8::0001]:443", True, True, ("2001:db8::1", 443)),
    # As in HAProxy the last colon separates the port.
    ("fe80::1:80", False, False, ("fe80::1", 80)),
    ("[fe80::1]", False, False, ("fe80::1", None)),
    ("10.111.0.21:80", False, False, ("10.111.0.21", 80)),
    ("10.111.0.21", False, False, ("10.111.0.21", None)),
    ("web1.example.com:65535", False, False, ("web1.example.com", 65535)),
    ("private_IP:80", False, False, ("private_IP", 80)),
])
def test_addresses(text: str, need_port: bool, any_host: bool,
                   expected: tuple[str | None, int | None]) -> None:
    assert parse_address(text, need_port=need_port, any_host=any_host) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("127.0.0.1:70000", "invalid port '70000' (expected 1 to 65535)"),
    ("127.0.0.1:0", "invalid port '0' (expected 1 to 65535)"),
    ("127.0.0.1:http", "invalid port 'http' (expected 1 to 65535)"),
    ("127.0.0.1:", "missing port number after ':'"),
    ("*:80", "missing host in address '*:80'"),
    ("256.1.1.1:80", "'256.1.1.1' is not a valid IPv4 address"),
    ("::1", "'::1' reads as host ':' port 1: write IPv6 addresses in brackets, [::1] or "
            "[::1]:PORT"),
    ("[::1", "missing ']' in address '[::1'"),
    ("[::1]80", "unexpected '80' after ']' in address '[::1]80'"),
    ("[web1]:80", "'web1' is not a valid IPv6 address"),
    ("bad/host:80", "'bad/host' is not a valid address or host name"),
    ("-lead:80", "'-lead' is not a valid address or host name"),
    ("1.2.3.4:+1", "port offsets such as '+1' are not supported by pyxlb yet"),
    ("1.2.3.4:80-90", "port ranges such as '80-90' are not supported by pyxlb yet"),
    ("a:80,b:81", "several addresses in 'a:80,b:81' are not supported by pyxlb yet; write one "
                  "per line"),
    ("ipv4@1.2.3.4:80", "address 'ipv4@1.2.3.4:80': socket paths and 'family@' prefixes are "
                        "not supported by pyxlb yet"),
])
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(BadValue) as info:
        parse_address(text, need_port=False, any_host=False)
    assert str(info.value) == message


def test_bind_needs_a_port() -> None:
    with pytest.raises(BadValue, match=r"missing port in '0.0.0.0' \(write ADDRESS:PORT\)"):
        parse_address("0.0.0.0", need_port=True, any_host=True)


def test_format_address_brackets_ipv6() -> None:
    assert format_address("10.0.0.1", 514) == "10.0.0.1:514"
    assert format_address("::1", 514) == "[::1]:514"
