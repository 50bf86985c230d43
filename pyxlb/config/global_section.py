"""The `global` section: process-wide settings (logging, the stats socket, privileges)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyxlb.config.errors import Where
from pyxlb.config.keywords import Registry, Statement, WordOptions
from pyxlb.config.lexer import Word
from pyxlb.config.logs import LOG_USAGE, log_target
from pyxlb.config.model import DEFAULT_STATS_TIMEOUT_MS, Global, LogTarget, StatsSocket
from pyxlb.config.values import BadValue, parse_int, parse_positive_time_ms

STATS_LEVELS = ("user", "operator", "admin")


@dataclass
class GlobalDraft:
    """What the global sections have said so far (several global sections add up)."""

    logs: list[LogTarget] = field(default_factory=list)
    stats_socket: StatsSocket | None = None
    stats_timeout_ms: int = DEFAULT_STATS_TIMEOUT_MS
    maxconn: int | None = None
    nbthread: int | None = None
    chroot: str | None = None
    user: str | None = None
    group: str | None = None
    daemon: bool = False
    where: Where | None = None

    def build(self) -> Global:
        return Global(logs=list(self.logs), stats_socket=self.stats_socket,
                      stats_timeout_ms=self.stats_timeout_ms, maxconn=self.maxconn,
                      nbthread=self.nbthread,
                      chroot=self.chroot, user=self.user, group=self.group, daemon=self.daemon,
                      where=self.where)


GLOBAL: Registry[GlobalDraft] = Registry("the global section")


@GLOBAL.keyword("log", LOG_USAGE, args=(1, None))
def _log(st: Statement, g: GlobalDraft) -> None:
    if st.args[0].text == "global":
        raise st.error("'log global' belongs in a defaults or proxy section: it refers to the "
                       "global section's own log targets", st.args[0])
    g.logs.append(log_target(st))


@GLOBAL.keyword("chroot", "<directory>", args=1)
def _chroot(st: Statement, g: GlobalDraft) -> None:
    g.chroot = st.text(st.args[0])


@GLOBAL.keyword("user", "<user name>", args=1)
def _user(st: Statement, g: GlobalDraft) -> None:
    g.user = st.text(st.args[0])


@GLOBAL.keyword("group", "<group name>", args=1)
def _group(st: Statement, g: GlobalDraft) -> None:
    g.group = st.text(st.args[0])


@GLOBAL.keyword("daemon")
def _daemon(st: Statement, g: GlobalDraft) -> None:
    g.daemon = True


@GLOBAL.keyword("maxconn", "<number>", args=1)
def _maxconn(st: Statement, g: GlobalDraft) -> None:
    g.maxconn = st.parse(st.args[0], parse_int, 1)


# HAProxy's MAX_THREADS on 64-bit builds.
MAX_THREADS = 64


@GLOBAL.keyword("nbthread", "<number>", args=1)
def _nbthread(st: Statement, g: GlobalDraft) -> None:
    g.nbthread = st.parse(st.args[0], parse_int, 1, MAX_THREADS)


@GLOBAL.keyword("stats timeout", "<time>", args=1)
def _stats_timeout(st: Statement, g: GlobalDraft) -> None:
    g.stats_timeout_ms = st.parse(st.args[0], parse_positive_time_ms)


STATS_SOCKET_OPTIONS = WordOptions("stats socket")


def _octal_mode(text: str) -> int:
    if not text or len(text) > 4 or any(c not in "01234567" for c in text):
        raise BadValue(f"'{text}' is not an octal file mode such as 660")
    return int(text, 8)


@STATS_SOCKET_OPTIONS.option("mode", "<octal mode>")
def _socket_mode(fields: dict[str, Any], st: Statement, word: Word) -> None:
    fields["mode"] = st.parse(word, _octal_mode, name="mode")


@STATS_SOCKET_OPTIONS.option("level", "<level>")
def _socket_level(fields: dict[str, Any], st: Statement, word: Word) -> None:
    if word.text not in STATS_LEVELS:
        raise st.error(f"unknown stats socket level '{word.text}' (expected "
                       f"{', '.join(STATS_LEVELS)})", word)
    fields["level"] = word.text


STATS_SOCKET_OPTIONS.unsupported("expose-fd", "gid", "group", "uid", "user", "process", "thread",
                                 "severity-output", "accept-proxy", "name", "id", "maxconn",
                                 "backlog", "ssl", "crt")


@GLOBAL.keyword("stats socket", "<path> [mode <octal>] [level <level>]", args=(1, None))
def _stats_socket(st: Statement, g: GlobalDraft) -> None:
    if g.stats_socket is not None:
        raise st.error("a second 'stats socket' is not supported by pyxlb yet (the first is at "
                       f"{g.stats_socket.where})")
    path, *options = st.args
    if not path.text.startswith(("/", "unix@/")):
        raise st.error(f"stats socket '{path.text}': only UNIX socket paths (starting with '/') "
                       "are supported by pyxlb yet", path)
    g.stats_socket = StatsSocket(path=path.text.removeprefix("unix@"), where=st.where,
                                 **STATS_SOCKET_OPTIONS.parse(st, options))


GLOBAL.unsupported(
    "busy-polling", "ca-base", "close-spread-time", "cluster-secret", "cpu-map", "crt-base",
    "debug", "description", "expose-experimental-directives", "external-check", "fd-hard-limit",
    "gid", "grace", "h1-case-adjust", "h1-case-adjust-file",
    "h2-workaround-bogus-websocket-clients",
    "hard-stop-after", "insecure-fork-wanted", "insecure-setuid-wanted", "issuers-chain-path",
    "localpeer", "log-send-hostname", "log-tag", "master-worker", "max-spread-checks",
    "maxcompcpuusage", "maxcomprate", "maxconnrate", "maxpipes", "maxsessrate", "maxsslconn",
    "maxsslrate", "maxzlibmem", "mworker-max-reloads", "nbproc", "node", "noepoll",
    "noevports", "nogetaddrinfo", "nokqueue", "nopoll", "noreuseport", "nosplice",
    "numa-cpu-mapping", "pidfile", "pp2-never-send-local", "presetenv", "quiet", "resetenv",
    "server-state-base", "server-state-file", "set-dumpable", "set-var", "set-var-fmt", "setenv",
    "spread-checks", "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites",
    "ssl-default-bind-curves", "ssl-default-bind-options", "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites", "ssl-default-server-options", "ssl-dh-param-file",
    "ssl-engine", "ssl-load-extra-del-ext", "ssl-load-extra-files", "ssl-mode-async",
    "ssl-server-verify", "ssl-skip-self-issued-ca", "stats bind-process", "stats maxconn",
    "strict-limits", "thread-group", "thread-groups", "uid", "ulimit-n", "unix-bind", "unsetenv",
    "zero-warning",
    prefixes=("tune.", "lua-", "profiling.", "httpclient.", "wurfl-", "51degrees-",
              "deviceatlas-"),
)
