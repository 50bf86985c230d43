"""Reading ACLs and conditions: `acl NAME CRITERION [flags] [patterns]` and
`if|unless TERM...`, with HAProxy 2.6's rules (parse_acl_expr, parse_acl_cond).

- A criterion is an ACL keyword (`hdr_end(host)`) or a sample fetch (`src`,
  `req.hdr(host)`); flags are `-i`, `-n`, `-m METHOD`, `-f FILE` and `--`; integer
  patterns take the operators `eq ge gt le lt` and ranges `A:B`.
- Several `acl` lines with one name make one ACL, true when any line matches; a
  condition may only name ACLs declared above it, but sees lines added below it.
- A condition is terms separated by `||` or `or` (OR) and juxtaposed (AND); `!`
  negates a term; `{ ... }` is an anonymous ACL; TRUE, METH_GET, ... are predefined.

While a section is read, ACLs and conditions are drafts (an ACL can still grow);
`freeze` turns them into the model's Acl and Condition once the section is complete.
Names that point elsewhere (tables, userlists) are collected as Refs for resolution.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pyxlb.config.conditions import (
    Acl,
    Condition,
    Fetch,
    IntRange,
    Match,
    MatchMethod,
    Pattern,
    Term,
)
from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.fetches import (
    ACL_KEYWORDS,
    FETCH_ALIASES,
    FETCHES,
    PREDEFINED_ACLS,
    UNSUPPORTED_PREDEFINED_ACLS,
    USER_METHODS,
    FetchSpec,
    Stage,
    available,
    counter_ref,
    method_allowed,
)
from pyxlb.config.haproxy_fetches import HAPROXY_FETCHES
from pyxlb.config.keywords import UNSUPPORTED, Statement, did_you_mean
from pyxlb.config.lexer import Word
from pyxlb.config.values import BadValue, parse_name

_IDCHARS = re.compile(r"[A-Za-z0-9_.+$-]*", re.ASCII)
_INT = re.compile(r"[0-9]{1,18}", re.ASCII)
_OPERATORS = ("eq", "ge", "gt", "le", "lt")
RefKind = Literal["table", "userlist", "group", "backend"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A name the section uses that must exist elsewhere in the configuration.

    `what` names the user, for messages ("'src_get_gpc0'", "'track-sc0'"); `written`
    is False when the name was implied (a `src_*` fetch reads its proxy's own table).
    """

    kind: RefKind
    name: str
    where: Where
    what: str
    written: bool = True
    userlist: str = ""  # for a group: the userlist it belongs to


@dataclass
class AclDraft:
    name: str
    matches: list[Match]
    where: Where
    predefined: bool = False


@dataclass(frozen=True, slots=True)
class TermDraft:
    acl: AclDraft
    negate: bool
    where: Where


@dataclass(frozen=True, slots=True)
class ConditionDraft:
    polarity: Literal["if", "unless"]
    alternatives: tuple[tuple[TermDraft, ...], ...]
    where: Where

    def acls(self) -> list[AclDraft]:
        seen: dict[int, AclDraft] = {}
        for terms in self.alternatives:
            for term in terms:
                seen.setdefault(id(term.acl), term.acl)
        return list(seen.values())


@dataclass(frozen=True, slots=True)
class PendingRule:
    """A rule read while its ACLs may still grow: `build(condition=...)` makes the model's
    rule once the condition is frozen. `final`: no rule after it runs when it applies."""

    build: Callable[..., Any]
    condition: ConditionDraft | None
    final: bool
    where: Where


PatternReader = Callable[[str], list[str]]


@dataclass
class AclScope:
    """What ACL parsing needs from the section being read."""

    proxy: str  # the section's name: the table `src_*` fetches read by default
    reader: PatternReader  # lines of a `-f` pattern file; raises OSError
    acls: dict[str, AclDraft] = field(default_factory=dict)
    predefined: dict[str, AclDraft] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)

    def freeze(self, draft: ConditionDraft | None, frozen: dict[int, Acl]) -> Condition | None:
        """The model's Condition for a draft; `frozen` shares each Acl between conditions."""
        if draft is None:
            return None
        return Condition(polarity=draft.polarity, where=draft.where, alternatives=tuple(
            tuple(Term(acl=freeze_acl(t.acl, frozen), negate=t.negate, where=t.where)
                  for t in terms) for terms in draft.alternatives))


def freeze_acl(draft: AclDraft, frozen: dict[int, Acl]) -> Acl:
    acl = frozen.get(id(draft))
    if acl is None:
        acl = frozen[id(draft)] = Acl(name=draft.name, matches=tuple(draft.matches),
                                      predefined=draft.predefined, where=draft.where)
    return acl


def read_pattern_file(path: str) -> list[str]:
    """A pattern file as HAProxy reads it: one pattern a line, blanks and `#` lines skipped."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def parse_acl_statement(st: Statement, scope: AclScope) -> None:
    """`acl NAME CRITERION ...`: add a match to the named ACL (created if new)."""
    name_word, *words = st.args
    name = name_word.text
    try:
        parse_name(name)
    except BadValue:
        bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c in "-_.:")))
        raise st.error(f"character '{bad}' is not permitted in acl name '{name}'",
                       name_word) from None
    if name.lower() == "or":
        raise st.error("acl name 'or' would never match: 'or' joins terms in a condition",
                       name_word)
    match = parse_match(st, words, scope, f"acl '{name}'")
    acl = scope.acls.get(name)
    if acl is None:
        scope.acls[name] = AclDraft(name, [match], st.at(name_word))
    else:
        acl.matches.append(match)


def parse_match(st: Statement, words: Sequence[Word], scope: AclScope, label: str) -> Match:
    """A criterion, its flags and patterns (the words after an acl's name, or in braces)."""
    if not words:
        raise st.error(f"{label} expects a criterion, as in 'src 10.0.0.0/8'")
    criterion = words[0]
    fetch, spec, method = parse_fetch(st, criterion, scope, acl=True)
    rest = list(words[1:])
    if not rest and spec.type != "bool":
        st.warn(f"{label}: no pattern to match '{criterion.text}' against, so it never matches "
                "(write '--' after the criterion if that is intended, '-m found' to test "
                "for existence, '-m bool' to use a number as a boolean)", criterion)
    if rest and rest[0].text.startswith("(") and "(" not in criterion.text:
        st.warn(f"{label}: matching '{criterion.text}' against '{rest[0].text}' is probably a "
                "mistake: remove the space before '(' (or write '--' before the pattern)",
                rest[0])
    ignore_case = False
    files: list[str] = []
    texts: list[tuple[str, Word]] = []
    forced = False
    i = 0
    while i < len(rest) and rest[i].text.startswith("-"):
        flag = rest[i]
        if flag.text == "--":
            i += 1
            break
        if flag.text == "-i":
            ignore_case = True
        elif flag.text == "-n":
            pass  # no DNS resolution: pyxlb never resolves names in patterns
        elif flag.text in ("-m", "-f"):
            if i + 1 == len(rest):
                what = "a match method" if flag.text == "-m" else "a pattern file"
                raise st.error(f"'{flag.text}' expects {what}", flag)
            value = rest[i + 1]
            if flag.text == "-m":
                if files:
                    raise st.error("'-m' must come before '-f' in an acl", flag)
                method = _forced_method(st, value, spec)
                forced = True
            else:
                files.append(value.text)
                texts += [(line, value) for line in _read(st, scope, value)]
            i += 1
        elif flag.text in ("-u", "-M"):
            raise st.error(f"acl flag '{flag.text}' is not supported by pyxlb yet", flag)
        else:
            raise st.error(f"'{flag.text}' is not a valid acl flag (flags are -i, -n, -m, -f, "
                           "--); write '--' before a pattern that begins with '-'", flag)
        i += 1
    texts = [(w.text, w) for w in rest[i:]] + texts
    if method == "meth" and forced:
        method = "str"
    patterns = _patterns(st, method, texts, fetch.name)
    if method == "group":
        scope.refs += [Ref("group", str(group), st.at(criterion), f"'{criterion.text}'",
                           userlist=fetch.args[0]) for group in patterns]
    criterion_name = _IDCHARS.match(criterion.text).group()  # type: ignore[union-attr]
    return Match(criterion=criterion_name, fetch=fetch, method=method, ignore_case=ignore_case,
                 patterns=tuple(patterns), files=tuple(files), where=st.at(criterion))


def _read(st: Statement, scope: AclScope, word: Word) -> list[str]:
    try:
        return scope.reader(word.text)
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise st.error(f"cannot read pattern file '{word.text}': {reason}", word) from None


def parse_fetch(st: Statement, word: Word, scope: AclScope, text: str | None = None, *,
                acl: bool = False) -> tuple[Fetch, FetchSpec, MatchMethod]:
    """A sample fetch with its arguments: `word.text`, or `text` found inside the word.

    With `acl`, HAProxy's ACL keywords (`hdr_end(host)`) are accepted too. Returns the
    fetch, its spec and the match method it implies.
    """
    text = word.text if text is None else text
    name = _IDCHARS.match(text).group()  # type: ignore[union-attr]
    rest = text[len(name):]
    args: list[str] = []
    if rest.startswith("("):
        close = rest.find(")")
        if close < 0:
            raise st.error(f"'{text}': expected ')' after the arguments of '{name}'", word)
        args = rest[1:close].split(",")
        rest = rest[close + 1:]
    if rest.startswith(","):
        raise st.error(f"'{text}': converters (',{rest[1:]}') {UNSUPPORTED}", word)
    if rest:
        raise st.error(f"'{text}': unexpected '{rest}' after '{name}'", word)
    if not name:
        raise st.error(f"'{text}' is not a fetch (such as 'src' or 'req.hdr(host)')", word)
    method: MatchMethod | None = None
    if acl and name in ACL_KEYWORDS:
        fetch_name, method = ACL_KEYWORDS[name]
    else:
        fetch_name = FETCH_ALIASES.get(name, name)
    spec = FETCHES.get(fetch_name)
    if spec is None:
        if name in HAPROXY_FETCHES:
            raise st.error(f"fetch '{name}' {UNSUPPORTED}", word)
        known = [*FETCHES, *FETCH_ALIASES, *(ACL_KEYWORDS if acl else ())]
        raise st.error(f"unknown fetch '{name}'{did_you_mean(name, known)}", word)
    fetch_args = _fetch_args(st, word, name, spec, args, scope)
    return (Fetch(name=spec.name, args=fetch_args, where=st.at(word)), spec,
            method or spec.default_method)


def _fetch_args(st: Statement, word: Word, name: str, spec: FetchSpec, args: list[str],
                scope: AclScope) -> tuple[str, ...]:
    if args == [""]:
        args = []
    if len(args) > len(spec.args) or len(args) < spec.required:
        raise st.error(f"'{word.text}': expected {spec.usage().replace(spec.name, name, 1)}",
                       word)
    for kind, arg in zip(spec.args, args, strict=False):
        if not arg:
            raise st.error(f"'{word.text}': empty argument", word)
        if kind == "int" and _INT.fullmatch(arg) is None:
            raise st.error(f"'{word.text}': '{arg}' is not a number", word)
        if kind in ("table", "userlist"):
            scope.refs.append(Ref(kind, arg, st.at(word), f"'{name}'"))  # type: ignore[arg-type]
    if not args and (ref := counter_ref(spec.name)) is not None and ref.source == "src":
        # A `src_*` fetch reads its own proxy's table unless told otherwise.
        scope.refs.append(Ref("table", scope.proxy, st.at(word), f"'{name}'", written=False))
        return (scope.proxy,)
    return tuple(args)


def _forced_method(st: Statement, word: Word, spec: FetchSpec) -> MatchMethod:
    for method in USER_METHODS:
        if word.text == method:
            if not method_allowed(spec.type, method):
                raise st.error(f"match method '{method}' cannot be used with '{spec.name}'",
                               word)
            return method
    if word.text == "bin":
        raise st.error(f"match method 'bin' {UNSUPPORTED}", word)
    hint = did_you_mean(word.text, USER_METHODS)
    raise st.error(f"unknown match method '{word.text}' (methods are "
                   f"{', '.join(USER_METHODS)}){hint}", word)


def _patterns(st: Statement, method: MatchMethod, texts: list[tuple[str, Word]],
              fetch: str) -> list[Pattern]:
    if method in ("bool", "found"):
        if texts:
            st.warn(f"'-m {method}' takes no pattern: '{texts[0][0]}' is ignored", texts[0][1])
        return []
    if method in ("int", "len"):
        return _int_patterns(st, texts)
    patterns: list[Pattern] = []
    for text, word in texts:
        if method == "ip":
            patterns.append(_ip_pattern(st, text, word))
        elif method == "reg":
            try:
                re.compile(text)
            except re.error as err:
                raise st.error(f"regex '{text}' is invalid: {err}", word) from None
            patterns.append(text)
        elif method == "group" and not text:
            raise st.error(f"'{fetch}' expects group names, not an empty word", word)
        else:
            patterns.append(text)
    return patterns


def _int_patterns(st: Statement, texts: list[tuple[str, Word]]) -> list[Pattern]:
    patterns: list[Pattern] = []
    operator = "eq"
    for text, word in texts:
        if text in _OPERATORS:
            operator = text
            continue
        if ":" in text or "-" in text or operator == "eq":
            patterns.append(_int_range(st, text, word))
            continue
        if _INT.fullmatch(text) is None:
            raise st.error(f"'{text}' is neither a number nor an operator "
                           f"({', '.join(_OPERATORS)})", word)
        value = int(text)
        patterns.append({"gt": IntRange(value + 1, None), "ge": IntRange(value, None),
                         "lt": IntRange(None, value - 1), "le": IntRange(None, value)}[operator])
    return patterns


def _int_range(st: Statement, text: str, word: Word) -> IntRange:
    low_text, colon, high_text = text.partition(":")
    try:
        low = _int_bound(low_text)
        high = _int_bound(high_text) if colon else low
    except BadValue:
        raise st.error(f"'{text}' is not a number or a range such as 10:20", word) from None
    if low is not None and high is not None and low > high:
        raise st.error(f"'{text}' is not a valid range: {low} is above {high}", word)
    if low is None and high is None and not colon:
        raise st.error(f"'{text}' is not a number", word)
    return IntRange(low, high)


def _int_bound(text: str) -> int | None:
    if not text:
        return None
    if re.fullmatch(r"-?[0-9]{1,18}", text, re.ASCII) is None:
        raise BadValue(text)
    return int(text)


def _ip_pattern(st: Statement, text: str, word: Word) -> Pattern:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise st.error(f"'{text}' is not a valid IPv4 or IPv6 address or network (pyxlb does "
                       "not resolve host names in patterns)", word) from None


def parse_condition(st: Statement, words: Sequence[Word], scope: AclScope) -> ConditionDraft:
    """`if|unless TERMS` (words[0] is `if` or `unless`) into a ConditionDraft."""
    polarity = words[0].text
    assert polarity in ("if", "unless")
    alternatives: list[tuple[TermDraft, ...]] = []
    current: list[TermDraft] = []
    negate = False
    i = 1
    while i < len(words):
        word = words[i]
        text = word.text
        while text.startswith("!"):
            negate = not negate
            text = text[1:]
        if not text:
            i += 1
            continue
        if text.lower() == "or" or text == "||":
            if not current:
                raise st.error(f"'{text}' must join two terms of the condition", word)
            alternatives.append(tuple(current))
            current = []
            negate = False
            i += 1
            continue
        if text == "{":
            end = next((j for j in range(i + 1, len(words)) if words[j].text == "}"), None)
            if end is None:
                raise st.error("missing closing '}' in the condition", word)
            body = words[i + 1:end]
            if not body:
                raise st.error("'{ }' must enclose a criterion, as in '{ src 10.0.0.0/8 }'",
                               word)
            match = parse_match(st, body, scope, "anonymous acl")
            acl = AclDraft("", [match], st.at(word))
            i = end
        else:
            acl = _named_acl(st, word, text, scope)
        current.append(TermDraft(acl, negate, st.at(word)))
        negate = False
        i += 1
    if negate or (not current and alternatives):
        last = words[-1]
        raise st.error(f"the condition ends with '{last.text}': a term must follow", last)
    if not current:
        raise st.error(f"'{polarity}' must be followed by a condition", words[0])
    alternatives.append(tuple(current))
    return ConditionDraft(polarity, tuple(alternatives), st.at(words[0]))  # type: ignore[arg-type]


def _named_acl(st: Statement, word: Word, name: str, scope: AclScope) -> AclDraft:
    acl = scope.acls.get(name)
    if acl is not None:
        return acl
    if name in scope.predefined:
        return scope.predefined[name]
    if name in PREDEFINED_ACLS:
        criterion, *patterns = PREDEFINED_ACLS[name]
        words = [Word(criterion, word.col), *(Word(p, word.col) for p in patterns)]
        match = parse_match(st, words, scope, f"acl '{name}'")
        acl = scope.predefined[name] = AclDraft(name, [match], st.at(word), predefined=True)
        return acl
    if name in UNSUPPORTED_PREDEFINED_ACLS:
        raise st.error(f"predefined acl '{name}' {UNSUPPORTED}", word)
    if name.startswith("{") or name.endswith("}"):
        raise st.error(f"no acl is named '{name}': write '{{' and '}}' as separate words, "
                       "as in '{ src 10.0.0.0/8 }'", word)
    hint = did_you_mean(name, [*scope.acls, *PREDEFINED_ACLS])
    raise st.error(f"no acl is named '{name}' (an acl must be declared before the rules that "
                   f"use it){hint}", word)


def condition_start(words: Sequence[Word]) -> int:
    """Index of the `if`/`unless` that starts a condition, or len(words)."""
    return next((i for i, w in enumerate(words) if w.text in ("if", "unless")), len(words))


def warn_if_unusable(st: Statement, cond: ConditionDraft, rule: str, place: str,
                     latest: Stage) -> None:
    """HAProxy's warning for a condition using fetches that have no value at this point
    (`latest`): an ACL none of whose criteria can be evaluated never matches."""
    def usable(match: Match) -> bool:
        return available(FETCHES[match.fetch.name].stage, latest)

    for terms in cond.alternatives:
        for term in terms:
            if not any(usable(m) for m in term.acl.matches):
                if term.acl.name:
                    st.warn(f"acl '{term.acl.name}' will never match in '{rule}' because it "
                            f"only involves keywords that are incompatible with '{place}'")
                else:
                    st.warn(f"anonymous acl will never match in '{rule}' because it uses "
                            f"keyword '{term.acl.matches[0].criterion}' which is "
                            f"incompatible with '{place}'")
                return
    for terms in cond.alternatives:
        for term in terms:
            for match in term.acl.matches:
                if not usable(match):
                    subject = f"acl '{term.acl.name}'" if term.acl.name else "anonymous acl"
                    st.warn(f"{subject} involves keyword '{match.criterion}' which is "
                            f"incompatible with '{place}'")
                    return


def bad_condition_start(st: Statement, what: str, word: Word) -> ConfigError:
    """The error for words after a rule that do not start a condition."""
    return st.error(f"'{what}' expects 'if' or 'unless' followed by a condition, "
                    f"not '{word.text}'", word)
