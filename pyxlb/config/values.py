"""Parsers for argument values: times, integers, ports and addresses, as HAProxy reads them.

Each raises BadValue with a message that says what was expected; the caller adds the
place (file:line:col) because only it knows which word was at fault.
"""

from __future__ import annotations

import ipaddress
import re

# HAProxy's timers are signed 32-bit millisecond counts.
TIMER_MAX_MS = 2**31 - 1
INT_MAX = 2**31 - 1

# Unit -> (multiply, divide) to get milliseconds; no unit means milliseconds.
_TIME_UNITS = {"us": (1, 1000), "ms": (1, 1), "s": (1000, 1), "m": (60_000, 1),
               "h": (3_600_000, 1), "d": (86_400_000, 1)}
_TIME = re.compile(r"([0-9]+)([a-z]*)", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# Longer digit strings than this overflow every limit we check, and Python refuses to
# convert very long ones (int max str digits), so they are rejected before int().
_MAX_DIGITS = 19
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)
# "family@" prefixes HAProxy accepts before an address (str2sa_range).
_FAMILIES = ("ipv4@", "ipv6@", "udp@", "udp4@", "udp6@", "tcp@", "tcp4@", "tcp6@", "unix@",
             "abns@", "fd@", "sockpair@", "uxst@", "uxdg@", "quic4@", "quic6@", "ring@")


class BadValue(ValueError):
    """An argument that does not have the expected form; the message says what would."""


def _time_scale(text: str, default_unit: str) -> tuple[str, int, int] | None:
    """A time's digits and its unit's (multiplier, divisor) to milliseconds;
    `default_unit` ("ms" or "s") when none is written."""
    match = _TIME.fullmatch(text)
    if match is None:
        counted = "milliseconds" if default_unit == "ms" else "seconds"
        raise BadValue(f"'{text}' is not a time: write {counted}, or a number with a unit "
                       "(us, ms, s, m, h, d)")
    digits, unit = match.groups()
    if unit and unit not in _TIME_UNITS:
        raise BadValue(f"unknown time unit '{unit}' in '{text}' (units are us, ms, s, m, h, d)")
    mult, div = _TIME_UNITS[unit or default_unit]
    return (digits, mult, div) if len(digits) <= _MAX_DIGITS else None


def parse_time_ms(text: str) -> int:
    """A HAProxy time (`5000`, `1500us`, `5s`, `2m`, `1h`, `1d`) in milliseconds, rounded up."""
    scale = _time_scale(text, "ms")
    # Rounded up, as HAProxy does, so that 1us is 1ms rather than "no timeout".
    ms = TIMER_MAX_MS + 1 if scale is None else -(-int(scale[0]) * scale[1] // scale[2])
    if ms > TIMER_MAX_MS:
        raise BadValue(f"'{text}' is too long: timers stop at {TIMER_MAX_MS} ms "
                       "(about 24.8 days)")
    return ms


def parse_time_s(text: str) -> int:
    """A HAProxy time counted in seconds (`30`, `1500ms`, `30m`, `8h`): seconds unless
    a unit is given, rounded up, up to INT_MAX seconds (cookie lifetimes)."""
    scale = _time_scale(text, "s")
    seconds = (INT_MAX + 1 if scale is None
               else -(-int(scale[0]) * scale[1] // (scale[2] * 1000)))
    if seconds > INT_MAX:
        raise BadValue(f"'{text}' is too long: the maximum is {INT_MAX} s (about 68 years)")
    return seconds


def parse_positive_time_ms(text: str) -> int:
    """A time that must not be 0 (check intervals, the stats timeout)."""
    ms = parse_time_ms(text)
    if ms == 0:
        raise BadValue(f"expected a time above 0, not '{text}'")
    return ms


def parse_int(text: str, low: int, high: int = INT_MAX) -> int:
    """A decimal integer within [low, high]."""
    if _DIGITS.fullmatch(text) is None or len(text) > _MAX_DIGITS or not low <= int(text) <= high:
        raise BadValue(f"expected an integer from {low} to {high}, not '{text}'")
    return int(text)


def parse_name(text: str) -> str:
    """A proxy or server name: letters, digits and '-', '_', '.', ':' as HAProxy allows."""
    if not text:
        raise BadValue("expected a name, not an empty word")
    for c in text:
        if not (c.isascii() and (c.isalnum() or c in "-_.:")):
            raise BadValue(f"character '{c}' is not permitted in name '{text}' "
                           "(use letters, digits, '-', '_', '.' and ':')")
    return text


def parse_port(text: str) -> int:
    """A TCP/UDP port, 1 to 65535."""
    if text.startswith(("+", "-")):
        raise BadValue(f"port offsets such as '{text}' are not supported by pyxlb yet")
    if "-" in text:
        raise BadValue(f"port ranges such as '{text}' are not supported by pyxlb yet")
    if not text:
        raise BadValue("missing port number after ':'")
    if _DIGITS.fullmatch(text) is None or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise BadValue(f"invalid port '{text}' (expected 1 to 65535)")
    return int(text)


def parse_host(text: str, *, bracketed: bool = False) -> str:
    """An IPv4 or IPv6 address (normalised) or a host name (kept as written)."""
    if bracketed or ":" in text:
        try:
            return str(ipaddress.IPv6Address(text))
        except ValueError:
            raise BadValue(f"'{text}' is not a valid IPv6 address") from None
    if text and all(c in "0123456789." for c in text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise BadValue(f"'{text}' is not a valid IPv4 address") from None
    if len(text) > 253 or _HOSTNAME.fullmatch(text) is None:
        raise BadValue(f"'{text}' is not a valid address or host name")
    return text


def parse_address(text: str, *, need_port: bool, any_host: bool) -> tuple[str | None, int | None]:
    """`host[:port]`, `[ipv6][:port]` or `:::port` into (host, port).

    With `any_host`, `*` or an empty host (`*:80`, `:80`) means every address: host None.
    Like HAProxy, the last colon separates the port, so `:::80` is `::` port 80 and a
    bare `::1` is refused (write `[::1]`).
    """
    if "," in text:
        raise BadValue(f"several addresses in '{text}' are not supported by pyxlb yet; "
                       "write one per line")
    if text.startswith("/") or text.startswith(_FAMILIES):
        raise BadValue(f"address '{text}': socket paths and 'family@' prefixes are not "
                       "supported by pyxlb yet")
    bracketed = text.startswith("[")
    if bracketed:
        end = text.find("]")
        if end < 0:
            raise BadValue(f"missing ']' in address '{text}'")
        host_text, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise BadValue(f"unexpected '{rest}' after ']' in address '{text}'")
        port_text = rest[1:] if rest else None
    elif ":" in text:
        host_text, _, port_text = text.rpartition(":")
    else:
        host_text, port_text = text, None
    if port_text is None:
        if need_port:
            raise BadValue(f"missing port in '{text}' (write ADDRESS:PORT)")
        port = None
    else:
        port = parse_port(port_text)
    if host_text in ("", "*") and not bracketed:
        if not any_host:
            raise BadValue(f"missing host in address '{text}'")
        return None, port
    try:
        return parse_host(host_text, bracketed=bracketed), port
    except BadValue:
        if not bracketed and _is_ipv6(text):
            raise BadValue(f"'{text}' reads as host '{host_text}' port {port}: write IPv6 "
                           f"addresses in brackets, [{text}] or [{text}]:PORT") from None
        raise


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def format_address(host: str, port: int) -> str:
    """host:port, with IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
