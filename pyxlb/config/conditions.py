"""The ACL and condition AST: what `acl` lines and `if`/`unless` conditions mean.

Pure data for the evaluators (the l7 rule engine, the kernel-rule compiler):

    acl is_abuser src_get_gpc0 gt 0
    http-request deny if is_abuser !{ src 10.0.0.0/8 } || METH_TRACE

gives a Condition whose `alternatives` are `((Term(is_abuser), Term(anonymous, negate)),
(Term(METH_TRACE),))`: true when every term of at least one alternative is true.
An Acl is true when any of its Matches is; a Match applies its method to the sample
its Fetch returns and each pattern, true on the first pattern that matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pyxlb.config.errors import Where

# How a sample is compared with the patterns (HAProxy's `-m` names, plus the two
# methods that only come from a criterion: "meth" for `method`, "group" for
# `http_auth_group`).
MatchMethod = Literal["str", "beg", "end", "sub", "dir", "dom", "reg", "len", "int", "ip",
                      "bool", "found", "meth", "group"]


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer pattern: `5` is 5..5, `gt 60` is 61..None, `1:10`, `:3`. Bounds inclusive."""

    low: int | None
    high: int | None

    def __contains__(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


Pattern = str | IntRange | IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch:
    """A sample fetch: HAProxy's canonical name and its arguments.

    `name` is the fetch, never an ACL alias: `hdr_end(host)` is `req.hdr` with args
    `("host",)` and method "end". A stick-counter fetch (`sc0_conn_rate`,
    `src_get_gpc0`, ...; fetches.counter_ref says what it counts) has the table it
    reads as its argument: for `src_*` always (its proxy's own table when none was
    written), for `scN_*` only when written (otherwise: the table counter N tracks).
    """

    name: str
    args: tuple[str, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """One `acl` line (or `{ ... }` body): a fetch, a match method and patterns.

    `criterion` is the keyword as written (`hdr_end`, `src`), for messages.
    """

    criterion: str
    fetch: Fetch
    method: MatchMethod
    ignore_case: bool = False
    patterns: tuple[Pattern, ...] = ()
    # Pattern files (`-f FILE`) whose lines are included in `patterns`.
    files: tuple[str, ...] = ()
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Acl:
    """A named ACL (all its `acl NAME ...` lines), an anonymous `{ ... }` one (name ""),
    or a predefined one (TRUE, METH_GET, LOCALHOST, ...). True when any match is."""

    name: str
    matches: tuple[Match, ...]
    predefined: bool = False
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """An ACL in a condition, maybe negated with `!`."""

    acl: Acl
    negate: bool = False
    where: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """`if`/`unless` followed by terms: an OR (`||`, `or`) of ANDs (juxtaposition).

    With `unless`, the rule applies when the OR of ANDs is false.
    """

    polarity: Literal["if", "unless"]
    alternatives: tuple[tuple[Term, ...], ...]
    where: Where

    def acls(self) -> list[Acl]:
        """Every ACL the condition uses, in order, each once."""
        seen: dict[int, Acl] = {}
        for terms in self.alternatives:
            for term in terms:
                seen.setdefault(id(term.acl), term.acl)
        return list(seen.values())
