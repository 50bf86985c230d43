"""Reading configuration files into a Config: files and directories, sections, and the
checks that need the whole configuration (names that must exist, warnings).

Lines go through the lexer, then to the keyword registry of the section they are in.
A section starts with its keyword (`SECTIONS`); HAProxy sections pyxlb does not read
yet are reported once and their lines skipped. Every error is collected, so one run
reports them all; only ConfigError leaves this module. Once everything is read, names
are resolved (resolve.py) and each proxy is given its tier (tiers.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyxlb.config.acl import PatternReader, read_pattern_file
from pyxlb.config.errors import ConfigError, ConfigErrors, Where
from pyxlb.config.global_section import GLOBAL, GlobalDraft
from pyxlb.config.keywords import UNSUPPORTED, Cap, Kind, Registry, UnknownKeyword, did_you_mean
from pyxlb.config.lexer import Line, lex_line
from pyxlb.config.model import Backend, Config, Frontend, Userlist
from pyxlb.config.proxy_section import PROXY, ProxyDraft, build_defaults, build_proxy
from pyxlb.config.resolve import Resolver
from pyxlb.config.tiers import assign_tiers
from pyxlb.config.userlist import USERLIST, UserlistDraft, build_userlist
from pyxlb.config.values import BadValue, parse_name

# HAProxy sections that pyxlb does not read yet.
UNSUPPORTED_SECTIONS = ("peers", "resolvers", "mailers", "program", "http-errors",
                        "ring", "cache", "fcgi-app", "log-forward", "dynamic-update")


@dataclass
class _Section:
    kind: Kind
    name: str  # for "$.SECTION"
    label: str  # for messages
    registry: Registry[Any] | None  # None: a section whose lines are skipped
    draft: Any


class _Parser:
    """Parsing state across files: HAProxy carries the last defaults from file to file."""

    def __init__(self, env: Mapping[str, str], reader: PatternReader) -> None:
        self.env = env
        self.reader = reader
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []
        self.files: list[str] = []
        self.global_ = GlobalDraft()
        self.defaults: list[ProxyDraft] = []
        self.proxies: list[ProxyDraft] = []
        # Registered proxies by name: for duplicate names and default_backend checks.
        self.frontends: dict[str, ProxyDraft] = {}
        self.backends: dict[str, ProxyDraft] = {}
        self.userlists: dict[str, UserlistDraft] = {}
        # Which kinds of proxy inherit from each defaults section that has rules.
        self.rule_heirs: dict[int, Kind] = {}
        self.section: _Section | None = None

    def feed(self, text: str, file: str) -> None:
        self.files.append(file)
        self.section = None  # as in HAProxy, each file starts outside any section
        for lineno, raw in enumerate(text.split("\n"), 1):
            try:
                line = lex_line(raw, file, lineno, self.env,
                                self.section.name if self.section else "")
                if line is not None:
                    self.statement(line)
            except ConfigError as err:
                self.errors.append(err)

    def statement(self, line: Line) -> None:
        head = line.words[0].text
        if head in SECTIONS:
            SECTIONS[head](self, line)
            return
        if head in UNSUPPORTED_SECTIONS:
            self.section = _Section(Kind.GLOBAL, "", head, None, None)  # skip its lines
            raise ConfigError(f"'{head}' {UNSUPPORTED}", line.where)
        section = self.section
        if section is None:
            hint = did_you_mean(head, [*SECTIONS, *UNSUPPORTED_SECTIONS])
            if hint:
                raise ConfigError(f"unknown keyword '{head}' outside any section{hint}",
                                  line.where)
            raise ConfigError(f"'{head}' appears outside any section; start one first with "
                              "global, defaults, frontend, backend or listen", line.where)
        if section.registry is None:
            return
        try:
            section.registry.run(line, section.kind, section.label, section.draft,
                                 self.warnings)
        except UnknownKeyword as err:
            raise self.misplaced(line, section) or err from None

    def misplaced(self, line: Line, section: _Section) -> ConfigError | None:
        """The error for a keyword that exists, but in another kind of section."""
        texts = line.texts[1:] if line.texts[0] == "no" and len(line.texts) > 1 else line.texts
        for registry in REGISTRIES:
            kw, size = registry.find(texts)
            if registry is not section.registry and kw is not None:
                return ConfigError(f"'{' '.join(texts[:size])}' is not allowed in "
                                   f"{section.label}; it belongs in {registry.home_of(kw)}",
                                   line.where)
        return None

    # Section headers

    def open_global(self, line: Line) -> None:
        self.section = _Section(Kind.GLOBAL, "", "the global section", GLOBAL, self.global_)
        if self.global_.where is None:
            self.global_.where = line.where
        if len(line.words) > 1:
            raise ConfigError(f"unexpected argument '{line.words[1].text}': 'global' takes none",
                              _word_where(line, 1))

    def open_defaults(self, line: Line) -> None:
        words = line.texts
        # `defaults [NAME] [from OTHER]`, and `defaults from OTHER` without a name.
        name = words[1] if len(words) > 1 and not (words[1] == "from" and len(words) == 3) \
            else None
        draft = ProxyDraft(Kind.DEFAULTS, name, line.where, self.reader)
        self.section = _Section(Kind.DEFAULTS, name or "", draft.label, PROXY, draft)
        self.defaults.append(draft)
        if name is not None:
            _check_header_name(line, "defaults")
        parent = self.parent_of(line, 2 if name is not None else 1, draft)
        if parent is not None:
            if parent.has_rules:
                raise ConfigError(f"{draft.label} cannot inherit from {parent.label}, which "
                                  f"has rules (at {parent.where})", line.where)
            draft.inherit(parent)

    def open_proxy(self, line: Line) -> None:
        kind = Kind(line.words[0].text)
        name = line.words[1].text if len(line.words) > 1 else ""
        draft = ProxyDraft(kind, name, line.where, self.reader)
        self.section = _Section(kind, name, draft.label, PROXY, draft)
        parent = self.defaults[-1] if len(line.words) <= 2 and self.defaults else None
        if parent is not None:
            draft.inherit(parent)
        if len(line.words) < 2:
            raise ConfigError(f"'{kind.value}' expects <name>", line.where)
        _check_header_name(line, kind.value)
        if parent is None:
            parent = self.parent_of(line, 2, draft)
            if parent is not None:
                draft.inherit(parent)
        other = (kind.caps & Cap.FE and self.frontends.get(name)) or \
            (kind.caps & Cap.BE and self.backends.get(name))
        if other:
            raise ConfigError(f"{draft.label} has the same name as {other.label} (at "
                              f"{other.where})", _word_where(line, 1))
        self.proxies.append(draft)
        if kind.caps & Cap.FE:
            self.frontends[name] = draft
        if kind.caps & Cap.BE:
            self.backends[name] = draft
        if parent is not None:
            self.check_rule_heir(line, draft, parent)

    def parent_of(self, line: Line, index: int, draft: ProxyDraft) -> ProxyDraft | None:
        """The defaults section named by `from NAME` at words[index], if written."""
        words = line.words
        if len(words) <= index:
            return None
        if words[index].text != "from" or len(words) != index + 2:
            raise ConfigError(f"unexpected argument '{words[index].text}' after the "
                              f"{words[0].text} name (expected 'from <defaults name>')",
                              _word_where(line, index))
        wanted = words[index + 1].text
        found = [d for d in self.defaults if d.name == wanted and d is not draft]
        if not found:
            named = [d.name for d in self.defaults if d.name]
            raise ConfigError(f"no defaults section is named '{wanted}' (for {draft.label})"
                              f"{did_you_mean(wanted, named)}", _word_where(line, index + 1))
        if len(found) > 1:
            raise ConfigError(f"'from {wanted}' is ambiguous: several defaults sections have "
                              f"that name (at {found[0].where} and {found[1].where})",
                              _word_where(line, index + 1))
        return found[0]

    def check_rule_heir(self, line: Line, draft: ProxyDraft, parent: ProxyDraft) -> None:
        """HAProxy's limits on inheriting from a defaults section that has rules."""
        if not parent.has_rules:
            return
        if draft.kind is Kind.LISTEN:
            raise ConfigError(f"{draft.label} cannot inherit from {parent.label}, which has "
                              f"rules (at {parent.where}); only frontends or only backends can",
                              line.where)
        first = self.rule_heirs.setdefault(id(parent), draft.kind)
        if first is not draft.kind:
            raise ConfigError(f"frontends and backends cannot inherit from the same defaults "
                              f"section if it has rules ({parent.label} at {parent.where})",
                              line.where)
        if draft.kind is Kind.BACKEND and parent.tcp_request:
            raise ConfigError(f"{draft.label} cannot inherit from {parent.label}, which has "
                              f"'tcp-request connection' rules (at {parent.where})", line.where)

    def open_userlist(self, line: Line) -> None:
        name = line.words[1].text if len(line.words) > 1 else ""
        draft = UserlistDraft(name, line.where)
        self.section = _Section(Kind.USERLIST, name, draft.label, USERLIST, draft)
        if len(line.words) < 2:
            raise ConfigError("'userlist' expects <name>", line.where)
        _check_header_name(line, "userlist")
        if len(line.words) > 2:
            raise ConfigError(f"unexpected argument '{line.words[2].text}' after the userlist "
                              "name", _word_where(line, 2))
        if name in self.userlists:
            self.section = _Section(Kind.USERLIST, name, draft.label, None, None)
            self.warnings.append(ConfigError(f"ignoring duplicated userlist '{name}' (the first "
                                             f"is at {self.userlists[name].where})",
                                             line.where))
            return
        self.userlists[name] = draft

    # The whole configuration

    def result(self, check_files: bool = False) -> Config:
        """The Config; with `check_files`, certificates must be readable, as HAProxy
        loads them while it reads the configuration."""
        global_ = self.global_.build()
        userlists: dict[str, Userlist] = {name: build_userlist(draft, self.errors)
                                          for name, draft in self.userlists.items()}
        defaults = [build_defaults(d, global_.logs) for d in self.defaults]
        frontends: dict[str, Frontend] = {}
        backends: dict[str, Backend] = {}
        for draft in self.proxies:
            frontend, backend = build_proxy(draft, global_.logs, self.warnings)
            if frontend is not None:
                frontends[frontend.name] = frontend
            if backend is not None:
                backends[backend.name] = backend
        resolver = Resolver(self.proxies, self.frontends, backends, userlists)
        for draft in self.defaults:
            resolver.check(draft)
        for draft in self.proxies:
            front = frontends.get(draft.name or "") if draft.kind.caps & Cap.FE else None
            resolver.check(draft, front.default_backend if front else None)
        self.errors += resolver.errors
        if check_files:
            self.errors += _unreadable_certificates(frontends.values())
        if len(self.errors) == 1:
            raise self.attach(self.errors[0])
        if self.errors:
            raise self.attach(ConfigErrors(self.errors))
        frontends, backends = assign_tiers(frontends, backends)
        return Config(global_=global_, defaults=defaults, frontends=frontends,
                      backends=backends, userlists=userlists, files=list(self.files),
                      warnings=list(self.warnings))

    def attach(self, err: ConfigError) -> ConfigError:
        """The error, carrying the warnings found too (`pyxlb check` shows both)."""
        err.warnings = list(self.warnings)
        return err


def _unreadable_certificates(frontends: Iterable[Frontend]) -> list[ConfigError]:
    errors = []
    for front in frontends:
        for bind in front.binds:
            if bind.crt is None:
                continue
            try:
                if os.path.isdir(bind.crt):
                    # A directory of certificates, as HAProxy takes (one per file).
                    os.listdir(bind.crt)
                    continue
                with open(bind.crt, "rb"):
                    pass
            except OSError as err:
                errors.append(ConfigError(f"cannot read certificate '{bind.crt}': "
                                          f"{err.strerror or err}", bind.where))
    return errors


def _word_where(line: Line, index: int) -> Where:
    return Where(line.where.file, line.where.line, line.words[index].col)


def _check_header_name(line: Line, kind: str) -> None:
    try:
        parse_name(line.words[1].text)
    except BadValue as err:
        raise ConfigError(f"'{kind}' name: {err}", _word_where(line, 1)) from None


# The registries of every section family, to tell a misplaced keyword from a wrong one.
REGISTRIES: tuple[Registry[Any], ...] = (GLOBAL, PROXY, USERLIST)

SECTIONS: dict[str, Callable[[_Parser, Line], None]] = {
    "global": _Parser.open_global,
    "defaults": _Parser.open_defaults,
    "frontend": _Parser.open_proxy,
    "backend": _Parser.open_proxy,
    "listen": _Parser.open_proxy,
    "userlist": _Parser.open_userlist,
}


def parse_text(text: str, filename: str = "<string>", env: Mapping[str, str] | None = None,
               reader: PatternReader = read_pattern_file) -> Config:
    """Parse configuration text. `env` (default: the process environment) is what
    `"$NAME"` expands to; `reader` reads the pattern files of `acl ... -f FILE`.
    Raises ConfigError, or ConfigErrors when there are several."""
    parser = _Parser(os.environ if env is None else env, reader)
    parser.feed(text, filename)
    return parser.result()


def load_config(paths: Sequence[str] | str, env: Mapping[str, str] | None = None) -> Config:
    """Read configuration files in order, as `haproxy -f A -f B` does; a directory stands
    for its *.cfg files in lexical order. Raises ConfigError or ConfigErrors."""
    parser = _Parser(os.environ if env is None else env, read_pattern_file)
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise ConfigError("no configuration file given")
    for path in _expand(paths, parser.errors):
        try:
            text = _read(path)
        except ConfigError as err:
            parser.errors.append(err)
            continue
        parser.feed(text, path)
    return parser.result(check_files=True)


def _expand(paths: Sequence[str], errors: list[ConfigError]) -> Iterator[str]:
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as err:
            errors.append(ConfigError(f"cannot list the directory: {err.strerror or err}",
                                      Where(path, 0)))
            continue
        for name in names:
            full = os.path.join(path, name)
            if name.endswith(".cfg") and not os.path.isdir(full):
                yield full


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ConfigError(f"cannot read the file: {err.strerror or err}", Where(path, 0)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError("the file is not valid UTF-8", Where(path, line)) from None
