"""The `log TARGET FACILITY [MAX [MIN]]` statement, shared by global and proxy sections."""

from __future__ import annotations

from pyxlb.config.keywords import UNSUPPORTED, Statement, did_you_mean
from pyxlb.config.model import LogTarget
from pyxlb.config.values import BadValue, format_address, parse_address

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "auth2", "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2",
              "local3", "local4", "local5", "local6", "local7")
# Most to least severe; a message is sent when its level is at most `max_level`.
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SYSLOG_PORT = 514
LOG_USAGE = "<target> <facility> [<max level> [<min level>]]"

_UNSUPPORTED_TARGETS = ("stdout", "stderr", "fd@", "ring@", "tcp@", "tcp4@", "tcp6@", "abns@")
_UDP_PREFIXES = ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@")


def log_target(st: Statement) -> LogTarget:
    """The LogTarget a `log` statement names (`log global` is the caller's business)."""
    target_word, *rest = st.args
    target = st.text(target_word)
    if rest and rest[0].text in ("len", "format", "sample"):
        raise st.error(f"'log ... {rest[0].text}' {UNSUPPORTED}", rest[0])
    if not rest:
        hint = ""
        if target in FACILITIES:
            hint = f" ('{target}' is a facility: the target comes first)"
        raise st.error(f"'log' expects {LOG_USAGE}{hint}", target_word)
    facility_word, *levels = rest
    if len(levels) > 2:
        raise st.error(f"unexpected argument '{levels[2].text}': 'log' expects {LOG_USAGE}",
                       levels[2])
    if facility_word.text not in FACILITIES:
        hint = did_you_mean(facility_word.text, FACILITIES)
        raise st.error(f"unknown log facility '{facility_word.text}'{hint}", facility_word)
    for word in levels:
        if word.text not in LEVELS:
            hint = did_you_mean(word.text, LEVELS)
            raise st.error(f"unknown log level '{word.text}' (levels are {', '.join(LEVELS)})"
                           f"{hint}", word)
    max_level = levels[0].text if levels else "debug"
    min_level = levels[1].text if len(levels) > 1 else "emerg"
    if target.startswith(_UNSUPPORTED_TARGETS):
        raise st.error(f"log target '{target}' is not supported by pyxlb yet "
                       "(use a UNIX socket path or a UDP address)", target_word)
    if target.startswith(("/", "unix@")):
        path = target.removeprefix("unix@")
        return LogTarget(kind="unix", target=path, facility=facility_word.text,
                         max_level=max_level, min_level=min_level, where=st.where)
    address = target.split("@", 1)[1] if target.startswith(_UDP_PREFIXES) else target
    try:
        host, port = parse_address(address, need_port=False, any_host=False)
    except BadValue as err:
        raise st.error(f"'log': {err}", target_word) from None
    assert host is not None
    port = port or SYSLOG_PORT
    return LogTarget(kind="udp", target=format_address(host, port), host=host, port=port,
                     facility=facility_word.text, max_level=max_level, min_level=min_level,
                     where=st.where)
