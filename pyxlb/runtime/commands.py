"""HAProxy's CLI as a pure session: bytes from the `stats socket` in, reply bytes out.

A `CliSession` is one connection. Like HAProxy 2.6 (cli.c), it reads a line,
splits it into commands at unescaped `;`, runs each and ends every reply with an
empty line ("\\n"), or with "\\n> " in interactive mode (`prompt`, what hatop
uses). Without `prompt` the connection ends after the first line; `quit` ends
it at once. The words, error texts and access levels are HAProxy's, so socat
scripts, hatop and exporters read pyxlb as they read HAProxy.

What the commands act on comes through a `Runtime`: the stats registry, the
stick tables and the server changes (pyxlb.runtime.admin in the daemon, a plain
object in the tests). No I/O here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyxlb.config.model import StoreItem
from pyxlb.datapath.src_track import SrcEntry
from pyxlb.stats.counters import ServerStats, StatsRegistry
from pyxlb.stats.page import CSV_FIELDS, render_csv

LEVELS = ("user", "operator", "admin")
USER, OPERATOR, ADMIN = range(3)
MAX_WEIGHT = 256
MAX_LINE = 16384  # HAProxy's default buffer size (tune.bufsize)

PERMISSION_DENIED = "Permission denied\n"
REQUIRE_BACKEND_SERVER = "Require 'backend/server'.\n"
NO_SUCH_BACKEND = "No such backend.\n"
NO_SUCH_SERVER = "No such server.\n"
NO_SUCH_TABLE = "No such table\n"
SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | "
    "agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n"
)
STATE_EXPECTED = "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"


class CommandError(Exception):
    """A command failed; the message is the reply, HAProxy's text."""


@dataclass(frozen=True, slots=True)
class Table:
    """A stick table as `show table` lists it; `entries` are the live ones."""

    name: str
    type: str
    size: int
    store: tuple[StoreItem, ...]
    entries: Sequence[SrcEntry] = ()


class Runtime(Protocol):
    """What the commands read and change."""

    registry: StatsRegistry

    async def refresh(self) -> None:
        """Reads what the next commands show (run before each read's commands)."""
        ...

    def info(self) -> dict[str, object]:
        """`show info` values pyxlb knows (Pid, Uptime_sec, ...); the rest read 0."""
        ...

    def tables(self) -> list[Table]: ...

    def clear_table(self, table: str, key: str | None) -> None:
        """Removes the unused entries of `table` (or only `key`)."""
        ...

    def set_state(self, backend: str, server: str, state: str) -> None:
        """`ready`, `drain`, `maint`, or `enable`: leave maintenance only (a
        drained server stays drained, as after HAProxy's `enable server`)."""
        ...

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        """Raises CommandError with HAProxy's text when the balancer refuses it."""
        ...

    def initial_weight(self, backend: str, server: str) -> int: ...


# HAProxy 2.6's `show info` fields, in its order.
INFO_FIELDS = (
    "Name", "Version", "Release_date", "Nbthread", "Nbproc", "Process_num", "Pid", "Uptime",
    "Uptime_sec", "Memmax_MB", "PoolAlloc_MB", "PoolUsed_MB", "PoolFailed", "Ulimit-n",
    "Maxsock", "Maxconn", "Hard_maxconn", "CurrConns", "CumConns", "CumReq", "MaxSslConns",
    "CurrSslConns", "CumSslConns", "Maxpipes", "PipesUsed", "PipesFree", "ConnRate",
    "ConnRateLimit", "MaxConnRate", "SessRate", "SessRateLimit", "MaxSessRate", "SslRate",
    "SslRateLimit", "MaxSslRate", "SslFrontendKeyRate", "SslFrontendMaxKeyRate",
    "SslFrontendSessionReuse_pct", "SslBackendKeyRate", "SslBackendMaxKeyRate",
    "SslCacheLookups", "SslCacheMisses", "CompressBpsIn", "CompressBpsOut",
    "CompressBpsRateLim", "Tasks", "Run_queue", "Idle_pct", "node", "Stopping", "Jobs",
    "Unstoppable Jobs", "Listeners", "ActivePeers", "ConnectedPeers", "DroppedLogs",
    "BusyPolling", "FailedResolutions", "TotalBytesOut", "TotalSplicdedBytesOut",
    "BytesOutRate", "DebugCommandsIssued", "CumRecvLogs", "Build info", "Memmax_bytes",
    "PoolAlloc_bytes", "PoolUsed_bytes", "Start_time_sec", "Tainted",
)

# The order HAProxy prints an entry's data in (enum stktable_data_type).
_DATA_ORDER = (
    "server_id", "gpt0", "gpc0", "gpc0_rate", "conn_cnt", "conn_rate", "conn_cur", "sess_cnt",
    "sess_rate", "http_req_cnt", "http_req_rate", "http_err_cnt", "http_err_rate",
    "bytes_in_cnt", "bytes_in_rate", "bytes_out_cnt", "bytes_out_rate", "gpc1", "gpc1_rate",
)


def uptime_text(seconds: int) -> str:
    """`0d 0h00m01s`, as `show info` writes it."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h{minutes:02d}m{secs:02d}s"


def info_text(values: dict[str, object]) -> str:
    return "".join(f"{name}: {values.get(name, 0)}\n" for name in INFO_FIELDS)


def entry_line(entry: SrcEntry, store: Sequence[StoreItem]) -> str:
    """One `show table` entry: `0x...: key=K use=N exp=MS` and its data.

    The address is a stable stand-in for HAProxy's pointer (tools only use it as
    an identifier)."""
    periods = {item.name: item.period_ms for item in store}
    address = 0x5600_0000_0000 + (zlib.crc32(entry.src.encode()) << 4)
    parts = [f"0x{address:x}: key={entry.src} use={entry.conn_cur}"]
    parts.append(f"exp={entry.expire_in_ms if entry.expire_in_ms is not None else 0}")
    for name in _DATA_ORDER:
        if name not in periods:
            continue
        value = getattr(entry, name, None)
        if value is None:
            continue
        period = periods[name]
        parts.append(f"{name}({period})={value}" if period is not None else f"{name}={value}")
    return " ".join(parts) + "\n"


def _table_head(table: Table) -> str:
    return (f"# table: {table.name}, type: {table.type}, size:{table.size}, "
            f"used:{len(table.entries)}\n")


def parse_weight(text: str | None, initial: int) -> int:
    """`set weight` / `set server ... weight`: `W` or `W%` of the initial weight
    (server_parse_weight_change_request, server.c)."""
    if not text:
        raise CommandError("Require <weight> or <weight%>.\n")
    digits = len(text) - len(text.lstrip("+-"))
    digits += len(text[digits:]) - len(text[digits:].lstrip("0123456789"))
    number, rest = text[:digits], text[digits:]
    try:
        weight = int(number)
    except ValueError:
        # HAProxy's texts for these two have no newline: the reply's end supplies one.
        raise CommandError("Empty weight string empty or preceded by garbage") from None
    if rest == "%":
        if weight < 0:
            raise CommandError("Relative weight must be positive.\n")
        return min(initial * weight // 100, MAX_WEIGHT)
    if rest:
        raise CommandError("Trailing garbage in weight string")
    if not 0 <= weight <= MAX_WEIGHT:
        raise CommandError("Absolute weight can only be between 0 and 256 inclusive.\n")
    return weight


def split_commands(line: str) -> list[list[str]]:
    """A line's commands (split at `;`) and their words; `\\` escapes the next
    character, as in HAProxy's cli_parse_request."""
    commands: list[list[str]] = [[]]
    word: list[str] | None = None
    chars = iter(line)
    for ch in chars:
        if ch == "\\":
            word = (word or []) + [next(chars, "")]
        elif ch == ";":
            if word is not None:
                commands[-1].append("".join(word))
            word = None
            commands.append([])
        elif ch in " \t":
            if word is not None:
                commands[-1].append("".join(word))
            word = None
        else:
            word = (word or []) + [ch]
    if word is not None:
        commands[-1].append("".join(word))
    return commands


@dataclass(frozen=True, slots=True)
class _Command:
    words: tuple[str, ...]
    usage: str  # HAProxy's help line, without the leading two spaces
    level: int
    run: Callable[[CliSession, list[str]], str]


def _help_line(usage: str) -> str:
    return f"  {usage}\n"


def _filter_stat(csv: str, args: list[str]) -> str:
    """`show stat <iid> <type> <sid>`: proxy id (-1 all), a type mask (1 frontend,
    2 backend, 4 server, -1 all), server id (-1 all)."""
    if len(args) < 3:
        return csv
    try:
        iid, mask, sid = (int(a) for a in args[:3])
    except ValueError:
        return csv
    col = {name: i for i, name in enumerate(CSV_FIELDS)}
    header, *rows = csv.splitlines(keepends=True)
    kept = [header]
    for row in rows:
        cells = row.split(",")
        row_type = 1 << int(cells[col["type"]])
        if iid != -1 and int(cells[col["iid"]]) != iid:
            continue
        if mask != -1 and not mask & row_type:
            continue
        if sid != -1 and int(cells[col["sid"]]) != sid:
            continue
        kept.append(row)
    return "".join(kept)


@dataclass(slots=True)
class CliSession:
    """One CLI connection at `level` (the socket's). Feed it what the peer sent;
    `closed` says when to hang up."""

    runtime: Runtime
    level: int = OPERATOR
    interactive: bool = False
    closed: bool = False
    timeout_s: float | None = None  # `set timeout cli`; None: the socket's
    _pending: bytes = field(default=b"", repr=False)

    def feed(self, data: bytes) -> bytes:
        """The replies to every complete line in `data` (and what came before)."""
        self._pending += data
        out: list[str] = []
        while not self.closed and b"\n" in self._pending:
            raw, self._pending = self._pending.split(b"\n", 1)
            out.append(self.line(raw.decode("utf-8", "replace").rstrip("\r")))
        if len(self._pending) > MAX_LINE:
            # HAProxy's buffer cannot hold such a line either: it hangs up.
            self.closed = True
        return "".join(out).encode()

    def eof(self) -> bytes:
        """The peer finished sending: a last line without its newline still runs."""
        if self.closed or not self._pending.strip():
            self.closed = True
            return b""
        raw, self._pending = self._pending, b""
        reply = self.line(raw.decode("utf-8", "replace").rstrip("\r"))
        self.closed = True
        return reply.encode()

    def line(self, text: str) -> str:
        """Runs one line; returns the replies, each framed."""
        out = []
        for words in split_commands(text):
            if self.closed:
                break
            if not words:
                if not self.interactive:
                    self.closed = True
                    break
                out.append(self._end(""))
                continue
            out.append(self._end(self.run(words)))
        if not self.interactive:
            self.closed = True
        return "".join(out)

    def _end(self, reply: str) -> str:
        if self.closed:
            return reply
        return reply + ("\n> " if self.interactive else "\n")

    def run(self, words: list[str]) -> str:
        """One command's reply, without the framing."""
        command = _find(words)
        if command is None:
            return _unknown(words)
        if self.level < command.level:
            return PERMISSION_DENIED
        try:
            return command.run(self, words[len(command.words):])
        except CommandError as exc:
            return str(exc)

    # -- the commands

    def _help(self, args: list[str]) -> str:
        return "The following commands are valid at this level:\n" + _usage_list()

    def _prompt(self, args: list[str]) -> str:
        self.interactive = not self.interactive
        return ""

    def _quit(self, args: list[str]) -> str:
        self.closed = True
        return ""

    def _show_cli_level(self, args: list[str]) -> str:
        return LEVELS[self.level] + "\n"

    def _set_timeout(self, args: list[str]) -> str:
        if len(args) != 2 or args[0] != "cli":
            return "'set timeout' only supports 'cli'.\n"
        try:
            seconds = int(args[1])
        except ValueError:
            return "Expects an integer value.\n"
        if seconds <= 0:
            return "Expects a positive value.\n"
        self.timeout_s = float(seconds)
        return ""

    def _show_info(self, args: list[str]) -> str:
        return info_text(self.runtime.info())

    def _show_stat(self, args: list[str]) -> str:
        return _filter_stat(render_csv(self.runtime.registry.fresh()), args)

    def _show_table(self, args: list[str]) -> str:
        tables = self.runtime.tables()
        if not args:
            return "".join(_table_head(t) for t in tables)
        table = _table(tables, args[0])
        key = _table_key(args)
        entries = [e for e in table.entries if key is None or e.src == key]
        return _table_head(table) + "".join(entry_line(e, table.store) for e in entries)

    def _clear_table(self, args: list[str]) -> str:
        if not args:
            return NO_SUCH_TABLE
        table = _table(self.runtime.tables(), args[0])
        key = _table_key(args)
        # HAProxy checks the level per entry: clearing an empty table is no change.
        if self.level < OPERATOR and (key is not None or table.entries):
            return PERMISSION_DENIED
        self.runtime.clear_table(table.name, key)
        return ""

    def _server(self, args: list[str]) -> ServerStats:
        if not args or "/" not in args[0]:
            raise CommandError(REQUIRE_BACKEND_SERVER)
        backend, _, server = args[0].partition("/")
        try:
            be = self.runtime.registry.backend(backend)
        except KeyError:
            raise CommandError(NO_SUCH_BACKEND) from None
        try:
            return be.server(server)
        except KeyError:
            raise CommandError(NO_SUCH_SERVER) from None

    def _set_server(self, args: list[str]) -> str:
        self._server(args)
        backend, _, server = args[0].partition("/")
        if len(args) < 2:
            return SET_SERVER_USAGE
        if args[1] == "state":
            if len(args) < 3 or args[2] not in ("ready", "drain", "maint"):
                return STATE_EXPECTED
            self.runtime.set_state(backend, server, args[2])
            return ""
        if args[1] == "weight":
            return self._set_weight([args[0], *args[2:]])
        return SET_SERVER_USAGE

    def _set_weight(self, args: list[str]) -> str:
        self._server(args)
        backend, _, server = args[0].partition("/")
        initial = self.runtime.initial_weight(backend, server)
        weight = parse_weight(args[1] if len(args) > 1 else None, initial)
        self.runtime.set_weight(backend, server, weight)
        return ""

    def _get_weight(self, args: list[str]) -> str:
        srv = self._server(args)
        backend, _, server = args[0].partition("/")
        return f"{srv.weight} (initial {self.runtime.initial_weight(backend, server)})\n"


def _table_key(args: list[str]) -> str | None:
    """The `key K` after a table's name (`show table T key K`), None without."""
    if len(args) < 2:
        return None
    if args[1] != "key":
        raise CommandError("Optional argument only supports \"data.<store_data_type>\" "
                           "<operator> <value> and key <key>\n")
    if len(args) < 3:
        raise CommandError("Key value expected\n")
    return args[2]


def _table(tables: list[Table], name: str) -> Table:
    for table in tables:
        if table.name == name:
            return table
    raise CommandError(NO_SUCH_TABLE)


def _lower(level: int) -> Callable[[CliSession, list[str]], str]:
    """`operator`, `user`: the session drops to `level` (never rises)."""
    def run(session: CliSession, args: list[str]) -> str:
        session.level = min(session.level, level)
        return ""
    return run


def _state(state: str) -> Callable[[CliSession, list[str]], str]:
    """`disable server` (maint) and `enable server`."""
    def run(session: CliSession, args: list[str]) -> str:
        session._server(args)
        backend, _, server = args[0].partition("/")
        session.runtime.set_state(backend, server, state)
        return ""
    return run


_COMMANDS = (
    _Command(("clear", "table"), "clear table <table> [<filter>]*         : "
             "remove an entry from a table (filter: data/key)", USER,
             CliSession._clear_table),
    _Command(("disable", "server"), "disable server (DEPRECATED)             : "
             "disable a server for maintenance (use 'set server' instead)", ADMIN,
             _state("maint")),
    _Command(("enable", "server"), "enable server  (DEPRECATED)             : "
             "enable a disabled server (use 'set server' instead)", ADMIN,
             _state("enable")),
    _Command(("get", "weight"), "get weight <bk>/<srv>                   : "
             "report a server's current weight", USER, CliSession._get_weight),
    _Command(("operator",), "operator                                : "
             "lower the level of the current CLI session to operator", OPERATOR,
             _lower(OPERATOR)),
    _Command(("set", "server"), "set server <bk>/<srv> [opts]            : "
             "change a server's state, weight, address or ssl", ADMIN, CliSession._set_server),
    _Command(("set", "timeout"), "set timeout [cli] <delay>               : "
             "change a timeout setting", USER, CliSession._set_timeout),
    _Command(("set", "weight"), "set weight <bk>/<srv>  (DEPRECATED)     : "
             "change a server's weight (use 'set server' instead)", ADMIN,
             CliSession._set_weight),
    _Command(("show", "cli", "level"), "show cli level                          : "
             "display the level of the current CLI session", USER,
             CliSession._show_cli_level),
    _Command(("show", "info"), "show info [desc|json|typed|float]*      : "
             "report information about the running process", USER, CliSession._show_info),
    _Command(("show", "stat"), "show stat [desc|json|no-maint|typed|up]*: "
             "report counters for each proxy and server", USER, CliSession._show_stat),
    _Command(("show", "table"), "show table <table> [<filter>]*          : "
             "report table usage stats or dump this table's contents (filter: data/key)",
             USER, CliSession._show_table),
    _Command(("user",), "user                                    : "
             "lower the level of the current CLI session to user", USER,
             _lower(USER)),
    _Command(("help",), "help [<command>]                        : "
             "list matching or all commands", USER, CliSession._help),
    _Command(("prompt",), "prompt                                  : "
             "toggle interactive mode with prompt", USER, CliSession._prompt),
    _Command(("quit",), "quit                                    : disconnect", USER,
             CliSession._quit),
)


def _find(words: list[str]) -> _Command | None:
    for command in _COMMANDS:
        if tuple(words[:len(command.words)]) == command.words:
            return command
    return None


def _usage_list(commands: Sequence[_Command] = _COMMANDS) -> str:
    return "".join(_help_line(c.usage) for c in commands)


_ALWAYS = ("help", "prompt", "quit")


def _unknown(words: list[str]) -> str:
    """HAProxy lists the commands sharing the first word, or all of them."""
    close = [c for c in _COMMANDS if c.words[0] == words[0] and c.words[0] not in _ALWAYS]
    tail = [c for c in _COMMANDS if c.words[0] in _ALWAYS]
    if close:
        return ("Unknown command, but maybe one of the following ones is a better match:\n"
                + _usage_list([*close, *tail]))
    return "Unknown command. Please enter one of the following commands only:\n" + _usage_list()
