"""Reading configuration files into a Config: files and directories, sections, and the
checks that need the whole configuration (names that must exist, warnings).

Lines go through the lexer, then to the keyword registry of the section they are in.
A section starts with its keyword (`SECTIONS`); HAProxy sections pyxlb does not read
yet are reported once and their lines skipped. Every error is collected, so one run
reports them all; only ConfigError leaves this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyxlb.config.errors import ConfigError, ConfigErrors, Where
from pyxlb.config.global_section import GLOBAL, GlobalDraft
from pyxlb.config.keywords import UNSUPPORTED, Cap, Kind, Registry, UnknownKeyword, did_you_mean
from pyxlb.config.lexer import Line, lex_line
from pyxlb.config.model import Backend, Config, Frontend
from pyxlb.config.proxy_section import PROXY, ProxyDraft, build_defaults, build_proxy
from pyxlb.config.values import BadValue, parse_name

# HAProxy sections that pyxlb does not read yet.
UNSUPPORTED_SECTIONS = ("userlist", "peers", "resolvers", "mailers", "program", "http-errors",
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

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []
        self.files: list[str] = []
        self.global_ = GlobalDraft()
        self.defaults: list[ProxyDraft] = []
        self.proxies: list[ProxyDraft] = []
        # Registered proxies by name: for duplicate names and default_backend checks.
        self.frontends: dict[str, ProxyDraft] = {}
        self.backends: dict[str, ProxyDraft] = {}
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
        name = line.words[1].text if len(line.words) > 1 else None
        draft = ProxyDraft(Kind.DEFAULTS, name, line.where)
        self.section = _Section(Kind.DEFAULTS, name or "", draft.label, PROXY, draft)
        self.defaults.append(draft)
        if name is not None:
            _check_header_name(line, "defaults")
        _check_header_rest(line, 2)

    def open_proxy(self, line: Line) -> None:
        kind = Kind(line.words[0].text)
        name = line.words[1].text if len(line.words) > 1 else ""
        draft = ProxyDraft(kind, name, line.where)
        if self.defaults:
            draft.inherit(self.defaults[-1])
        self.section = _Section(kind, name, draft.label, PROXY, draft)
        if len(line.words) < 2:
            raise ConfigError(f"'{kind.value}' expects <name>", line.where)
        _check_header_name(line, kind.value)
        _check_header_rest(line, 2)
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

    # The whole configuration

    def result(self) -> Config:
        global_ = self.global_.build()
        defaults = [build_defaults(d, global_.logs) for d in self.defaults]
        frontends: dict[str, Frontend] = {}
        backends: dict[str, Backend] = {}
        for draft in self.proxies:
            frontend, backend = build_proxy(draft, global_.logs, self.warnings)
            if frontend is not None:
                frontends[frontend.name] = frontend
            if backend is not None:
                backends[backend.name] = backend
        for name, draft in self.frontends.items():
            target = frontends[name].default_backend
            if target is not None:
                self.check_default_backend(draft, target, backends)
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)
        return Config(global_=global_, defaults=defaults, frontends=frontends,
                      backends=backends, userlists={}, files=list(self.files),
                      warnings=list(self.warnings))

    def check_default_backend(self, draft: ProxyDraft, target: str,
                              backends: Mapping[str, Backend]) -> None:
        where = draft.origins.get("default_backend", draft.where)
        backend = backends.get(target)
        if backend is not None:
            # HAProxy upgrades a tcp frontend's streams to an http backend, not the reverse.
            if draft.mode == "http" and backend.mode == "tcp":
                self.errors.append(ConfigError(
                    f"http {draft.label} cannot use tcp backend '{target}' (at {backend.where}) "
                    "as its default_backend: give both the same 'mode'", where))
            return
        if target in self.frontends:
            reason = f"'{target}' is a frontend, not a backend"
        else:
            reason = f"no backend is named '{target}'{did_you_mean(target, backends)}"
        self.errors.append(ConfigError(f"default_backend of {draft.label}: {reason}", where))


def _word_where(line: Line, index: int) -> Where:
    return Where(line.where.file, line.where.line, line.words[index].col)


def _check_header_name(line: Line, kind: str) -> None:
    try:
        parse_name(line.words[1].text)
    except BadValue as err:
        raise ConfigError(f"'{kind}' name: {err}", _word_where(line, 1)) from None


def _check_header_rest(line: Line, index: int) -> None:
    if len(line.words) <= index:
        return
    word = line.words[index].text
    if word == "from":
        raise ConfigError(f"'{line.words[0].text} ... from' {UNSUPPORTED}",
                          _word_where(line, index))
    raise ConfigError(f"unexpected argument '{word}' after the {line.words[0].text} name",
                      _word_where(line, index))


# The registries of every section family, to tell a misplaced keyword from a wrong one.
REGISTRIES: tuple[Registry[Any], ...] = (GLOBAL, PROXY)

SECTIONS: dict[str, Callable[[_Parser, Line], None]] = {
    "global": _Parser.open_global,
    "defaults": _Parser.open_defaults,
    "frontend": _Parser.open_proxy,
    "backend": _Parser.open_proxy,
    "listen": _Parser.open_proxy,
}


def parse_text(text: str, filename: str = "<string>",
               env: Mapping[str, str] | None = None) -> Config:
    """Parse configuration text. `env` (default: the process environment) is what
    `"$NAME"` expands to. Raises ConfigError, or ConfigErrors when there are several."""
    parser = _Parser(os.environ if env is None else env)
    parser.feed(text, filename)
    return parser.result()


def load_config(paths: Sequence[str] | str, env: Mapping[str, str] | None = None) -> Config:
    """Read configuration files in order, as `haproxy -f A -f B` does; a directory stands
    for its *.cfg files in lexical order. Raises ConfigError or ConfigErrors."""
    parser = _Parser(os.environ if env is None else env)
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
    return parser.result()


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
