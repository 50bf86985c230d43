"""Keyword tables: how a statement finds its handler and has its arguments checked.

Each section family (global, proxies, ...) owns a `Registry` mapping keywords, one
word (`maxconn`) or two (`timeout connect`), to a handler with its argument count
and the sections it belongs to. Keywords that end a line with `key value` pairs
(`server`, `bind`, `stats socket`) parse them with a `WordOptions` table. Adding a
keyword is adding an entry; HAProxy keywords pyxlb does not implement yet are listed
so the user is told so rather than that the keyword does not exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, Flag, auto
from typing import Any, Generic, Literal, TypeVar

from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.lexer import Line, Word
from pyxlb.config.values import BadValue

D = TypeVar("D")
T = TypeVar("T")

UNSUPPORTED = "is a HAProxy keyword pyxlb does not support yet"


class Cap(Flag):
    """A proxy's capabilities, as HAProxy names them: accepting (FE) and forwarding (BE)."""

    FE = auto()
    BE = auto()


class Kind(Enum):
    """Kinds of section; each value is the keyword that opens one."""

    GLOBAL = "global"
    DEFAULTS = "defaults"
    FRONTEND = "frontend"
    BACKEND = "backend"
    LISTEN = "listen"
    USERLIST = "userlist"

    @property
    def caps(self) -> Cap:
        return _CAPS.get(self, Cap(0))


_CAPS = {Kind.DEFAULTS: Cap.FE | Cap.BE, Kind.FRONTEND: Cap.FE, Kind.BACKEND: Cap.BE,
         Kind.LISTEN: Cap.FE | Cap.BE}


def did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    """"; did you mean 'x'?" for the closest candidate, or "" when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.75)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""


@dataclass(frozen=True, slots=True)
class Statement:
    """One line being handled: its keyword, its arguments, and where to report problems."""

    line: Line
    skip: int  # words before the keyword: 1 after "no"
    size: int  # words in the keyword
    usage: str
    label: str  # the section, for messages: "frontend 'web'", "the global section"
    warnings: list[ConfigError]

    @property
    def negated(self) -> bool:
        return self.skip > 0

    @property
    def keyword(self) -> str:
        return " ".join(w.text for w in self.line.words[self.skip:self.skip + self.size])

    @property
    def args(self) -> tuple[Word, ...]:
        return self.line.words[self.skip + self.size:]

    @property
    def where(self) -> Where:
        return self.line.where

    def at(self, word: Word | None = None) -> Where:
        col = word.col if word is not None else self.line.words[self.skip].col
        return Where(self.where.file, self.where.line, col)

    def error(self, message: str, word: Word | None = None) -> ConfigError:
        return ConfigError(message, self.at(word))

    def warn(self, message: str, word: Word | None = None) -> None:
        self.warnings.append(ConfigError(message, self.at(word)))

    def text(self, word: Word) -> str:
        """A word that must not be empty (`""` on the line)."""
        if not word.text:
            raise self.error(f"'{self.keyword}' expects {self.usage}, not an empty word", word)
        return word.text

    def parse(self, word: Word, parse: Callable[..., T], *args: Any, name: str = "",
              **kwargs: Any) -> T:
        """`parse(word.text, ...)`, its BadValue turned into an error at the word."""
        try:
            return parse(word.text, *args, **kwargs)
        except BadValue as err:
            raise self.error(f"'{name or self.keyword}': {err}", word) from None


Handler = Callable[[Statement, D], None]
Misplaced = Literal["error", "warn", "unsupported"]


@dataclass(frozen=True, slots=True)
class Keyword(Generic[D]):
    """A keyword's handler and rules.

    `caps` (proxy keywords only) says which proxies it acts in; elsewhere it is an
    error, ignored with a warning as HAProxy does, or not supported yet (`misplaced`).
    """

    name: str
    handler: Handler[D]
    usage: str
    min_args: int
    max_args: int | None
    caps: Cap | None
    in_defaults: bool
    misplaced: Misplaced
    negatable: bool


class UnknownKeyword(ConfigError):
    """The registry has no such keyword; the parser may know it from another section."""


class Registry(Generic[D]):
    """The keywords of one family of sections, whose handlers update a draft of type D."""

    def __init__(self, home: str) -> None:
        self.home = home  # where its keywords belong, for messages: "the global section"
        self._keywords: dict[str, Keyword[D]] = {}
        self._unsupported: set[str] = set()
        self._unsupported_prefixes: tuple[str, ...] = ()

    def keyword(self, name: str, usage: str = "", *, args: int | tuple[int, int | None] = 0,
                caps: Cap | None = None, in_defaults: bool = True, misplaced: Misplaced = "error",
                negatable: bool = False) -> Callable[[Handler[D]], Handler[D]]:
        """Register the decorated function as the handler of `name`.

        `args` is the exact number of arguments, or (min, max) with max None for any.
        """
        low, high = (args, args) if isinstance(args, int) else args

        def register(handler: Handler[D]) -> Handler[D]:
            if name in self._keywords:
                raise ValueError(f"keyword {name!r} registered twice")
            self._keywords[name] = Keyword(name, handler, usage, low, high, caps, in_defaults,
                                           misplaced, negatable)
            return handler

        return register

    def unsupported(self, *names: str, prefixes: tuple[str, ...] = ()) -> None:
        """HAProxy keywords (or prefixes such as `tune.`) that pyxlb does not implement yet."""
        self._unsupported.update(names)
        self._unsupported_prefixes += prefixes

    def names(self) -> set[str]:
        return set(self._keywords) | self._unsupported

    def find(self, words: Sequence[str]) -> tuple[Keyword[D] | None, int]:
        """The keyword the words start with (the longest match) and its size in words."""
        for size in (2, 1):
            if len(words) >= size and (kw := self._keywords.get(" ".join(words[:size]))):
                return kw, size
        return None, 0

    def home_of(self, kw: Keyword[D]) -> str:
        """Where a keyword belongs, for messages: "a backend or listen section"."""
        if kw.caps is None:
            return self.home
        kinds = [k.value for k in Kind
                 if k.caps & kw.caps and (k is not Kind.DEFAULTS or kw.in_defaults)]
        return f"a {', '.join(kinds[:-1])} or {kinds[-1]} section"

    def run(self, line: Line, kind: Kind, label: str, draft: D,
            warnings: list[ConfigError]) -> None:
        """Check the statement against its keyword's rules and call the handler."""
        texts = line.texts
        skip = 1 if texts[0] == "no" else 0
        if skip and len(texts) == 1:
            raise ConfigError("'no' must be followed by the keyword to disable", line.where)
        kw, size = self.find(texts[skip:])
        if kw is None:
            raise self._unknown(texts[skip:], label, Where(line.where.file, line.where.line,
                                                           line.words[skip].col))
        st = Statement(line, skip, size, kw.usage, label, warnings)
        if skip and not kw.negatable:
            raise st.error(f"'no {kw.name}' is not supported by pyxlb")
        if kw.caps is not None and not self._placed(kw, kind, st):
            return
        self._check_count(kw, st)
        kw.handler(st, draft)

    def _placed(self, kw: Keyword[D], kind: Kind, st: Statement) -> bool:
        """Whether the keyword acts in this section; raises or warns when it does not."""
        assert kw.caps is not None
        if kind is Kind.DEFAULTS:
            if not kw.in_defaults:
                raise st.error(f"'{kw.name}' is not allowed in {st.label}; it belongs in "
                               f"{self.home_of(kw)}")
            return True
        if kw.caps & kind.caps:
            return True
        if kw.misplaced == "warn":
            missing = "frontend" if kw.caps == Cap.FE else "backend"
            st.warn(f"'{kw.name}' ignored because {st.label} has no {missing} capability")
            return False
        if kw.misplaced == "unsupported":
            raise st.error(f"'{kw.name}' in a {kind.value} section is not supported by pyxlb yet")
        raise st.error(f"'{kw.name}' is not allowed in {st.label}; it belongs in "
                       f"{self.home_of(kw)}")

    @staticmethod
    def _check_count(kw: Keyword[D], st: Statement) -> None:
        args = st.args
        if len(args) < kw.min_args:
            raise st.error(f"'{kw.name}' expects {kw.usage}")
        if kw.max_args is not None and len(args) > kw.max_args:
            extra = args[kw.max_args]
            expects = f"expects {kw.usage}" if kw.usage else "takes no argument"
            raise st.error(f"unexpected argument '{extra.text}': '{kw.name}' {expects}", extra)

    def _unknown(self, words: Sequence[str], label: str, where: Where) -> UnknownKeyword:
        head = words[0]
        two = " ".join(words[:2])
        if len(words) > 1 and two in self._unsupported:
            return UnknownKeyword(f"'{two}' {UNSUPPORTED}", where)
        if head in self._unsupported or head.startswith(self._unsupported_prefixes):
            return UnknownKeyword(f"'{head}' {UNSUPPORTED}", where)
        members = {n.split(" ", 1)[1] for n in self.names() if n.startswith(head + " ")}
        if members:
            if len(words) < 2:
                example = min((n for n in self._keywords if n.startswith(head + " ")),
                              default=f"{head} {min(members)}")
                return UnknownKeyword(f"'{head}' expects a second word, as in '{example}'", where)
            hint = did_you_mean(words[1], members, prefix=head + " ")
            name = f"{head} {words[1]}"
        else:
            # Section keywords too: a misspelt one reads as a keyword of the current section.
            hint = did_you_mean(head, {n.split(" ")[0] for n in self.names()}
                                | {k.value for k in Kind})
            name = head
        return UnknownKeyword(f"unknown keyword '{name}' in {label}{hint}", where)


WordHandler = Callable[[dict[str, Any], Statement, Word], None]


@dataclass(frozen=True, slots=True)
class WordOption:
    name: str
    usage: str  # "" for a flag
    handler: WordHandler


class WordOptions:
    """`key [value]` words after a statement's fixed arguments (server, bind, ...).

    Each handler stores what it parsed into a dict of fields for the model object.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner  # for messages: "server", "bind"
        self._options: dict[str, WordOption] = {}
        self._unsupported: set[str] = set()

    def option(self, name: str, usage: str = "") -> Callable[[WordHandler], WordHandler]:
        """Register a handler for `name`, which takes a value when `usage` is given."""

        def register(handler: WordHandler) -> WordHandler:
            self._options[name] = WordOption(name, usage, handler)
            return handler

        return register

    def unsupported(self, *names: str) -> None:
        self._unsupported.update(names)

    def names(self) -> set[str]:
        return set(self._options) | self._unsupported

    def parse(self, st: Statement, words: Sequence[Word]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        i = 0
        while i < len(words):
            word = words[i]
            opt = self._options.get(word.text)
            if opt is None:
                raise st.error(self._unknown(word.text), word)
            if opt.usage:
                if i + 1 == len(words):
                    raise st.error(f"'{opt.name}' expects {opt.usage}", word)
                i += 1
            opt.handler(fields, st, words[i])
            i += 1
        return fields

    def _unknown(self, name: str) -> str:
        if name in self._unsupported:
            return f"'{name}' {UNSUPPORTED} (on a {self.owner} line)"
        hint = did_you_mean(name, self.names())
        return f"unknown {self.owner} option '{name}'{hint}"
