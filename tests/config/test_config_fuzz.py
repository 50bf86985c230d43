"""Property: any text gives a Config or a ConfigError naming its place, nothing else.

Inputs are token soups built from HAProxy's vocabulary and lexical troublemakers, and
good configurations with lines and characters deleted, repeated, swapped or replaced.
"""

from __future__ import annotations

from config_files import GOOD, WARNINGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyxlb.config import Config, ConfigError, ConfigErrors, parse_text
from pyxlb.config.actions import HTTP_ACTIONS, TCP_ACTIONS
from pyxlb.config.bind import BIND_OPTIONS
from pyxlb.config.fetches import (
    ACL_KEYWORDS,
    FETCHES,
    PREDEFINED_ACLS,
    STORE_TYPES,
    USER_METHODS,
)
from pyxlb.config.global_section import GLOBAL
from pyxlb.config.proxy_section import PROXY
from pyxlb.config.rules import TrackSc
from pyxlb.config.server import SERVER_OPTIONS
from pyxlb.config.userlist import USERLIST

GOOD_TEXTS = [path.read_text() for path in [*GOOD, *WARNINGS]] + [
    """\
global
    log 10.0.0.9:514 local0 info
    stats socket /run/pyxlb.sock mode 600 level operator
defaults web
    mode http
    log global
    option forwardfor
    timeout connect 5s
    timeout client 1m
    timeout server 1m
listen stats
    bind :::8404
    stats uri /stats
frontend "fe_$SITE"
    bind [::1]:443 ssl crt /etc/ssl/site.pem
    bind *:80
    maxconn 1000
    default_backend app
backend app
    balance leastconn
    server a 10.0.0.1:8080 check inter 2s rise 3 fall 2 weight 20
    server b app-b.internal:8080 check backup maxconn 100 cookie b
""",
]
PATTERN_FILES = {"allowlist.lst": ["10.111.0.0/24", "2001:db8::/48"]}


def read_patterns(path: str) -> list[str]:
    """Pattern files without the filesystem: fuzzed paths must not reach the disk."""
    if path not in PATTERN_FILES:
        raise FileNotFoundError(2, "No such file or directory")
    return PATTERN_FILES[path]


WORDS = sorted(
    {w for name in GLOBAL.names() | PROXY.names() | USERLIST.names() for w in name.split()}
    | {"global", "defaults", "frontend", "backend", "listen", "userlist", "no", "from"}
    | SERVER_OPTIONS.names() | BIND_OPTIONS.names()
    | set(ACL_KEYWORDS) | set(FETCHES) | set(PREDEFINED_ACLS) | set(HTTP_ACTIONS)
    | set(TCP_ACTIONS) | set(STORE_TYPES) | set(USER_METHODS)
    | {"if", "unless", "!", "||", "or", "{", "}", "-i", "-m", "-f", "--", "gt", "le", "eq",
       "conn_rate(3s)", "hdr(host)", "%[src]", "%Z", "table", "type", "size", "store", "ip",
       "string", "len", "expire", "realm", "deny_status", "code", "location", "scheme",
       "prefix", "insert", "indirect", "status", "rstatus", "users", "groups", "password",
       "insecure-password", "allowlist.lst"}
    | {"http", "tcp", "local0", "info", "notice", "admin", "660", "0", "5s", "99999999999",
       "*:80", ":::80", "[::1]:80", "::1", "10.0.0.1:80", "256.0.0.1", "host:0", "a,b", "/dev/log",
       "ipv4@:80", "1.2.3.4:+1", "80-90", "web", "app", "x/y", "", "-", "1us"})
# Characters with a meaning to the lexer or the value parsers.
TRICKY = "\"'\\#${}[]*:.-/@,%\t\r\x00 xé١"

tokens = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=TRICKY + "abc019", max_size=10),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.text(max_size=6),
)
lines = st.builds(lambda indent, ws: indent + " ".join(ws),
                  st.sampled_from(["", "  ", "\t"]), st.lists(tokens, max_size=8))
soups = st.lists(lines, max_size=25).map("\n".join)
envs = st.dictionaries(st.sampled_from(["SITE", "ADDR", "PORT", "X"]),
                       st.text(alphabet=TRICKY + "abc08", max_size=8), max_size=4)


def check(text: str, env: dict[str, str]) -> None:
    try:
        config = parse_text(text, "fuzz.cfg", env=env, reader=read_patterns)
    except ConfigErrors as err:
        assert len(err.errors) > 1
        for error in err.errors:
            assert type(error) is not ConfigErrors
            assert_placed(error)
        assert str(err)
    except ConfigError as err:
        assert_placed(err)
    else:
        assert_consistent(config)


def assert_placed(err: ConfigError) -> None:
    """Every error names a line of the text, and reads as file:line[:col]: message."""
    assert err.where is not None and err.where.file == "fuzz.cfg" and err.where.line >= 1
    assert str(err).startswith(f"fuzz.cfg:{err.where.line}")
    assert err.message


def assert_consistent(config: Config) -> None:
    assert isinstance(config, Config)
    tables = {name for proxies in (config.frontends, config.backends)
              for name, proxy in proxies.items() if proxy.stick_table is not None}
    for front in config.frontends.values():
        assert all(name in config.backends for name in front.backends_used())
        assert all(1 <= b.port <= 65535 for b in front.binds)
        assert front.tier in ("kernel", "l7")
        assert front.tier == "l7" or all(config.backends[name].tier == "kernel"
                                         for name in front.backends_used())
        for rule in front.http_request + front.tcp_request:  # type: ignore[operator]
            if isinstance(rule.action, TrackSc):
                assert rule.action.table in tables
    for back in config.backends.values():
        names = [s.name for s in back.servers]
        assert len(names) == len(set(names))
        assert all(s.port is None or 1 <= s.port <= 65535 for s in back.servers)
        assert all(0 <= s.weight <= 256 and s.inter_ms > 0 for s in back.servers)
    for warning in config.warnings:
        assert_placed(warning)


@settings(max_examples=300, deadline=None)
@given(soups, envs)
def test_token_soup(text: str, env: dict[str, str]) -> None:
    check(text, env)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text_lines = draw(st.sampled_from(GOOD_TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(text_lines) - 1))
        j = draw(st.integers(0, len(text_lines) - 1))
        match draw(st.integers(0, 6)):
            case 0:
                del text_lines[i]
            case 1:
                text_lines.insert(j, text_lines[i])
            case 2:
                text_lines[i], text_lines[j] = text_lines[j], text_lines[i]
            case 3:
                pos = draw(st.integers(0, len(text_lines[i])))
                text_lines[i] = text_lines[i][:pos] + draw(st.sampled_from(TRICKY)) + \
                    text_lines[i][pos:]
            case 4:
                pos = draw(st.integers(0, len(text_lines[i])))
                text_lines[i] = text_lines[i][:pos] + text_lines[i][pos + draw(st.integers(1, 5)):]
            case 5:
                words = text_lines[i].split()
                if words:
                    words[draw(st.integers(0, len(words) - 1))] = draw(tokens)
                text_lines[i] = "    " + " ".join(words)
            case _:
                text_lines.insert(i, draw(lines))
        if not text_lines:
            text_lines = [""]
    return "\n".join(text_lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), envs)
def test_mutated_good_configurations(text: str, env: dict[str, str]) -> None:
    check(text, env)


def test_the_good_configurations_are_good() -> None:
    """The bases of the mutations parse."""
    for text in GOOD_TEXTS:
        assert_consistent(parse_text(text, "fuzz.cfg", env={"SITE": "shop"},
                                     reader=read_patterns))
