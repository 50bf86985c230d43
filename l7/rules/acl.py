"""ACL evaluation: a config Condition compiled once into a closure over a RequestView.

What HAProxy 2.6 does in acl_exec_cond/pattern_exec_match, for the fetches the l7 tier
sees: `req.hdr` (every value, comma-split, as an ACL sees `hdr()`), `path`, `url`,
`base`, `method`, `req.ver`, `src`, `dst_port`, `ssl_fc`, `http_auth(L)`,
`http_auth_group(L)`, the constants, and the stick-counter fetches (`sc0_*`,
`src_*`) through an injected callable: the counters live in the kernel maps.

A fetch that has no sample makes its match false (and `!` makes the term true), as in
HAProxy. Strings are compared as latin-1 text, so any byte round-trips.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from pyxlb.config.conditions import Acl, Condition, IntRange, Match, Term
from pyxlb.config.fetches import CounterRef, counter_ref
from pyxlb.config.model import Userlist

Address = IPv4Address | IPv6Address
Sample = str | int | bool | Address
Predicate = Callable[["RequestView"], bool]


@dataclass(slots=True)
class RequestView:
    """What rules see of a request. `headers` are (lower-case name, raw value) in order."""

    method: bytes
    url: bytes
    version: bytes = b"1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    src: Address | None = None
    dst_port: int = 0
    ssl: bool = False
    # The request's stick-table entry, as pyxlb.l7.stick keeps it.
    stick: Any = None

    def header_values(self, lname: bytes) -> list[bytes]:
        return [value for name, value in self.headers if name == lname]

    @property
    def path(self) -> bytes:
        return split_url(self.url)[0]

    @property
    def query(self) -> bytes | None:
        return split_url(self.url)[1]


def split_url(url: bytes) -> tuple[bytes, bytes | None]:
    """(path, query or None); an absolute-form URI loses its scheme and authority."""
    if url[:1] != b"/":
        scheme = url.find(b"://")
        if scheme > 0:
            slash = url.find(b"/", scheme + 3)
            url = b"" if slash < 0 else url[slash:]
    path, mark, query = url.partition(b"?")
    return path, (query if mark else None)


# An injected counter reader: (what, table written or None, request) -> value, or None
# when the request has no entry (untracked counter, unknown source).
CounterFetch = Callable[[CounterRef, str | None, RequestView], int | None]
# Checks a clear-text password against a crypt(3) hash.
Verify = Callable[[str, str], bool]


def _libcrypt() -> Verify | None:
    name = ctypes.util.find_library("crypt")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)

    def verify(hashed: str, password: str) -> bool:
        # Not reentrant: each event loop runs in one thread, and nothing awaits here.
        out = lib.crypt(password.encode(), hashed.encode())
        return out is not None and out.decode("latin-1") == hashed

    return verify


def _no_crypt(hashed: str, password: str) -> bool:
    return False


crypt_verify: Verify = _libcrypt() or _no_crypt


@dataclass(slots=True)
class Env:
    """What a condition reaches outside the request: counters, userlists, crypt(3).

    Good (hash, password) verifications are remembered, crypt being slow by design.
    """

    counters: CounterFetch | None = None
    userlists: Mapping[str, Userlist] = field(default_factory=dict)
    verify: Verify = crypt_verify
    verified: set[tuple[str, str]] = field(default_factory=set)

    def authenticate(self, userlist: str, view: RequestView) -> str | None:
        """The user whose Basic credentials the request carries, if they are good."""
        users = self.userlists.get(userlist)
        credentials = basic_credentials(view)
        if users is None or credentials is None:
            return None
        name, password = credentials
        user = users.users.get(name)
        if user is None or user.password is None:
            return None
        if user.insecure:
            return name if password == user.password else None
        key = (user.password, password)
        if key in self.verified:
            return name
        if self.verify(user.password, password):
            if len(self.verified) > 4096:
                self.verified.clear()
            self.verified.add(key)
            return name
        return None


def basic_credentials(view: RequestView) -> tuple[str, str] | None:
    """(user, password) from the first Authorization header, Basic scheme only."""
    values = view.header_values(b"authorization")
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


# -- samples: fetch name -> function(view) returning the samples, [] for none

SampleFetch = Callable[[RequestView], list[Sample]]


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _hdr_fetch(args: tuple[str, ...]) -> SampleFetch:
    lname = args[0].lower().encode("latin-1") if args else None
    occurrence = int(args[1]) if len(args) > 1 else None

    def fetch(view: RequestView) -> list[Sample]:
        raw = ([v for n, v in view.headers if n == lname] if lname is not None
               else [v for _, v in view.headers])
        values: list[Sample] = [_text(part.strip()) for v in raw for part in v.split(b",")]
        if occurrence is None or not values:
            return values
        index = occurrence - 1 if occurrence > 0 else len(values) + occurrence
        return [values[index]] if 0 <= index < len(values) else []

    return fetch


def _path(view: RequestView) -> list[Sample]:
    return [_text(view.path)]


def _url(view: RequestView) -> list[Sample]:
    return [_text(view.url)]


def _base(view: RequestView) -> list[Sample]:
    hosts = view.header_values(b"host")
    return [_text((hosts[0] if hosts else b"") + view.path)]


def _method(view: RequestView) -> list[Sample]:
    return [_text(view.method)]


def _version(view: RequestView) -> list[Sample]:
    return [_text(view.version)]


def _src(view: RequestView) -> list[Sample]:
    return [] if view.src is None else [view.src]


def _dst_port(view: RequestView) -> list[Sample]:
    return [view.dst_port]


def _ssl_fc(view: RequestView) -> list[Sample]:
    return [view.ssl]


def _always(value: bool) -> SampleFetch:
    samples: list[Sample] = [value]
    return lambda view: samples


_SIMPLE: dict[str, SampleFetch] = {
    "path": _path, "url": _url, "base": _base, "method": _method, "req.ver": _version,
    "src": _src, "dst_port": _dst_port, "ssl_fc": _ssl_fc,
    "always_true": _always(True), "always_false": _always(False),
    "req.proto_http": _always(True),
}


def sample_fetch(name: str, args: tuple[str, ...], env: Env) -> SampleFetch:
    """The function returning a fetch's samples for a request."""
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name == "req.hdr":
        return _hdr_fetch(args)
    if name == "http_auth":
        userlist = args[0]
        return lambda view: [env.authenticate(userlist, view) is not None]
    if name == "http_auth_group":
        return _auth_group(args[0], env)
    ref = counter_ref(name)
    if ref is not None:
        table = args[0] if args else None
        counters = env.counters

        def counter(view: RequestView) -> list[Sample]:
            value = None if counters is None else counters(ref, table, view)
            return [] if value is None else [value]

        return counter
    raise ValueError(f"fetch '{name}' is not evaluated by the l7 tier")


def _auth_group(userlist: str, env: Env) -> SampleFetch:
    def fetch(view: RequestView) -> list[Sample]:
        user = env.authenticate(userlist, view)
        users = env.userlists.get(userlist)
        if user is None or users is None:
            return []
        return [g.name for g in users.groups.values() if user in g.users]

    return fetch


# -- match methods: (patterns, ignore_case) -> test of one sample

SampleTest = Callable[[Sample], bool]


def _as_text(sample: Sample) -> str:
    if isinstance(sample, bool):
        return "1" if sample else "0"
    return str(sample)


def _as_int(sample: Sample) -> int | None:
    if isinstance(sample, (bool, int)):
        return int(sample)
    text = str(sample)
    match = re.match(r"\s*([-+]?[0-9]+)", text)
    return int(match.group(1)) if match else None


def _word_regex(pattern: str, delims: str) -> str:
    core = pattern.strip(delims)
    cls = "[" + re.escape(delims) + "]"
    return f"(?:^|{cls}){re.escape(core)}(?:$|{cls})"


def _string_test(method: str, patterns: Iterable[str], icase: bool) -> SampleTest:
    pats = [p.lower() for p in patterns] if icase else list(patterns)

    def norm(sample: Sample) -> str:
        text = _as_text(sample)
        return text.lower() if icase else text

    if method in ("str", "meth", "group"):
        wanted = frozenset(pats)
        return lambda s: norm(s) in wanted
    if method == "beg":
        prefixes = tuple(pats)
        return lambda s: norm(s).startswith(prefixes)
    if method == "end":
        suffixes = tuple(pats)
        return lambda s: norm(s).endswith(suffixes)
    if method == "sub":
        return lambda s: any(p in norm(s) for p in pats)
    if method in ("dir", "dom", "reg"):
        if method == "reg":
            sources = list(patterns)
        else:
            delims = "/?" if method == "dir" else "/?.:"
            sources = [_word_regex(p, delims) for p in patterns]
        flags = re.IGNORECASE if icase else 0
        regexes = [re.compile(src, flags | re.DOTALL) for src in sources]
        return lambda s: any(r.search(_as_text(s)) for r in regexes)
    raise ValueError(f"unknown string match method '{method}'")


def _range_test(ranges: list[IntRange], value: Callable[[Sample], int | None]) -> SampleTest:
    def test(sample: Sample) -> bool:
        v = value(sample)
        return v is not None and any(v in r for r in ranges)

    return test


def _ip_test(networks: list[IPv4Network | IPv6Network]) -> SampleTest:
    def test(sample: Sample) -> bool:
        addr: Address
        if isinstance(sample, (IPv4Address, IPv6Address)):
            addr = sample
        else:
            try:
                addr = ipaddress.ip_address(_as_text(sample).strip())
            except ValueError:
                return False
        if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == net.version and addr in net for net in networks)

    return test


def compile_match(match: Match, env: Env) -> Predicate:
    """One ACL line: true when a sample of its fetch matches a pattern."""
    fetch = sample_fetch(match.fetch.name, match.fetch.args, env)
    method = match.method
    patterns = match.patterns
    test: SampleTest
    if method == "found":
        return lambda view: bool(fetch(view))
    if method == "bool":
        test = lambda s: bool(_as_int(s))  # noqa: E731
    elif method == "int":
        test = _range_test([p for p in patterns if isinstance(p, IntRange)], _as_int)
    elif method == "len":
        test = _range_test([p for p in patterns if isinstance(p, IntRange)],
                           lambda s: len(_as_text(s)))
    elif method == "ip":
        test = _ip_test([p for p in patterns if isinstance(p, (IPv4Network, IPv6Network))])
    else:
        test = _string_test(method, [p for p in patterns if isinstance(p, str)],
                            match.ignore_case)
    return lambda view: any(test(s) for s in fetch(view))


def compile_acl(acl: Acl, env: Env) -> Predicate:
    """True when any of the ACL's lines matches."""
    matches = [compile_match(m, env) for m in acl.matches]
    if len(matches) == 1:
        return matches[0]
    return lambda view: any(m(view) for m in matches)


def _compile_term(term: Term, env: Env, cache: dict[int, Predicate]) -> Predicate:
    acl = cache.get(id(term.acl))
    if acl is None:
        acl = cache[id(term.acl)] = compile_acl(term.acl, env)
    if term.negate:
        positive = acl
        return lambda view: not positive(view)
    return acl


def compile_condition(condition: Condition | None, env: Env) -> Predicate | None:
    """The condition as one closure (None for no condition: the rule always applies)."""
    if condition is None:
        return None
    cache: dict[int, Predicate] = {}
    alternatives = [[_compile_term(t, env, cache) for t in terms]
                    for terms in condition.alternatives]
    test: Predicate
    if len(alternatives) == 1 and len(alternatives[0]) == 1:
        test = alternatives[0][0]
    elif len(alternatives) == 1:
        terms = alternatives[0]
        test = lambda view: all(t(view) for t in terms)  # noqa: E731
    else:
        test = lambda view: any(all(t(view) for t in ts) for ts in alternatives)  # noqa: E731
    if condition.polarity == "unless":
        positive = test
        return lambda view: not positive(view)
    return test
