"""pyxlb's reader of HAProxy configuration: text and files in, a typed model out.

    config = load_config(["/etc/haproxy/haproxy.cfg"])
    config.frontends["http_front"].binds[0].port

Every problem is a ConfigError naming file:line(:col); several come as ConfigErrors.
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
    StatsSocket,
    Timeouts,
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
    "StatsSocket",
    "Timeouts",
    "Where",
    "load_config",
    "parse_text",
]
