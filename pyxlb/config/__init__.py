"""pyxlb's reader of HAProxy configuration: text and files in, a typed model out.

    config = load_config(["/etc/haproxy/haproxy.cfg"])
    config.frontends["http_front"].binds[0].port
    config.frontends["http_front"].http_request[0].condition   # conditions.py, rules.py
    config.backends["http_back"].tier                          # "kernel" or "l7"

Every problem is a ConfigError naming file:line(:col); several come as ConfigErrors.
Warnings are in Config.warnings (and on a raised error's `warnings`).
"""

from pyxlb.config.errors import ConfigError, ConfigErrors, Where
from pyxlb.config.model import (
    Backend,
    Bind,
    Config,
    Defaults,
    Frontend,
    Global,
    LogTarget,
    Server,
    Stats,
    StatsSocket,
    StickTable,
    Timeouts,
    Userlist,
)
from pyxlb.config.parser import load_config, parse_text

__all__ = [
    "Backend",
    "Bind",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "Defaults",
    "Frontend",
    "Global",
    "LogTarget",
    "Server",
    "Stats",
    "StatsSocket",
    "StickTable",
    "Timeouts",
    "Userlist",
    "Where",
    "load_config",
    "parse_text",
]
