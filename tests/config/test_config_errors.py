"""Bad configurations: each gives exactly the message a user should read, with file:line:col."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyxlb.config import ConfigError, ConfigErrors, Where, parse_text

NOT_YET = "is a HAProxy keyword pyxlb does not support yet"

# (test id, configuration, the one error it must give)
BAD = [
    ("outside a section", "mode http\n",
     "t.cfg:1:1: 'mode' appears outside any section; start one first with global, defaults, "
     "frontend, backend or listen"),
    ("misspelt section outside", "frontnd web\n",
     "t.cfg:1:1: unknown keyword 'frontnd' outside any section; did you mean 'frontend'?"),
    ("misspelt section inside", "backend a\nbacknd b\n",
     "t.cfg:2:1: unknown keyword 'backnd' in backend 'a'; did you mean 'backend'?"),
    ("unknown keyword", "global\n  chrot /x\n",
     "t.cfg:2:3: unknown keyword 'chrot' in the global section; did you mean 'chroot'?"),
    ("unknown option", "defaults\n  option httplogg\n",
     "t.cfg:2:3: unknown keyword 'option httplogg' in the defaults section; did you mean "
     "'option httplog'?"),
    ("unknown timeout", "defaults\n  timeout conect 5s\n",
     "t.cfg:2:3: unknown keyword 'timeout conect' in the defaults section; did you mean "
     "'timeout connect'?"),
    ("unknown, nothing close", "defaults\n  frobnicate\n",
     "t.cfg:2:3: unknown keyword 'frobnicate' in the defaults section"),
    ("option alone", "defaults\n  option\n",
     "t.cfg:2:3: 'option' expects a second word, as in 'option dontlognull'"),
    ("not supported yet", "frontend f\n  bind :80\n  acl is_ws hdr(upgrade) -i websocket\n",
     f"t.cfg:3:3: 'acl' {NOT_YET}"),
    ("option not supported yet", "backend b\n  option httpchk GET /\n",
     f"t.cfg:2:3: 'option httpchk' {NOT_YET}"),
    ("tune prefix", "global\n  tune.bufsize 16384\n", f"t.cfg:2:3: 'tune.bufsize' {NOT_YET}"),
    ("server option not supported yet", "backend b\n  server a 10.0.0.1:80 observe layer4\n",
     f"t.cfg:2:24: 'observe' {NOT_YET} (on a server line)"),
    ("section not supported yet", "userlist L\n  user bob insecure-password x\n",
     f"t.cfg:1:1: 'userlist' {NOT_YET}"),
    ("named defaults reference", "defaults d\nfrontend f from d\n  bind :80\n",
     f"t.cfg:2:12: 'frontend ... from' {NOT_YET}"),
    ("global keyword in a proxy", "frontend f\n  bind :80\n  chroot /x\n",
     "t.cfg:3:3: 'chroot' is not allowed in frontend 'f'; it belongs in the global section"),
    ("proxy keyword in global", "global\n  bind *:80\n",
     "t.cfg:2:3: 'bind' is not allowed in the global section; it belongs in a frontend or "
     "listen section"),
    ("server in a frontend", "frontend f\n  bind :80\n  server a 10.0.0.1\n",
     "t.cfg:3:3: 'server' is not allowed in frontend 'f'; it belongs in a backend or listen "
     "section"),
    ("bind in defaults", "defaults\n  bind :80\n",
     "t.cfg:2:3: 'bind' is not allowed in the defaults section; it belongs in a frontend or "
     "listen section"),
    ("stats uri in a backend", "backend b\n  stats uri /s\n",
     "t.cfg:2:3: 'stats uri' in a backend section is not supported by pyxlb yet"),
    ("duplicate proxy", "frontend web\n  bind :80\nlisten web\n  bind :81\n",
     "t.cfg:3:8: listen 'web' has the same name as frontend 'web' (at t.cfg:1)"),
    ("duplicate backend", "backend b\nbackend b\n",
     "t.cfg:2:9: backend 'b' has the same name as backend 'b' (at t.cfg:1)"),
    ("duplicate server", "backend b\n  server a 10.0.0.1:80\n  server a 10.0.0.2:80\n",
     "t.cfg:3:10: backend 'b' already has a server named 'a' (at t.cfg:2); use distinct names"),
    ("unknown default_backend", "frontend f\n  bind :80\n  default_backend nope\n",
     "t.cfg:3:19: default_backend of frontend 'f': no backend is named 'nope'"),
    ("misspelt default_backend", "frontend f\n  bind :80\n  default_backend wwww\nbackend www\n",
     "t.cfg:3:19: default_backend of frontend 'f': no backend is named 'wwww'; did you mean "
     "'www'?"),
    ("default_backend names a frontend",
     "frontend f\n  bind :80\n  default_backend g\nfrontend g\n  bind :81\n",
     "t.cfg:3:19: default_backend of frontend 'f': 'g' is a frontend, not a backend"),
    ("default_backend from defaults", "defaults\n  default_backend nope\nfrontend f\n  bind :80\n",
     "t.cfg:2:19: default_backend of frontend 'f': no backend is named 'nope'"),
    ("http frontend to tcp backend",
     "frontend f\n  mode http\n  bind :80\n  default_backend b\nbackend b\n  mode tcp\n",
     "t.cfg:4:19: http frontend 'f' cannot use tcp backend 'b' (at t.cfg:5) as its "
     "default_backend: give both the same 'mode'"),
    ("bad proxy name", "frontend x/y\n  bind :80\n",
     "t.cfg:1:10: 'frontend' name: character '/' is not permitted in name 'x/y' (use letters, "
     "digits, '-', '_', '.' and ':')"),
    ("missing proxy name", "frontend\n  bind :80\n", "t.cfg:1:1: 'frontend' expects <name>"),
    ("port out of range", "frontend f\n  bind 127.0.0.1:70000\n",
     "t.cfg:2:8: 'bind': invalid port '70000' (expected 1 to 65535)"),
    ("bind without port", "frontend f\n  bind 127.0.0.1\n",
     "t.cfg:2:8: 'bind': missing port in '127.0.0.1' (write ADDRESS:PORT)"),
    ("bare IPv6 server", "backend b\n  server a ::1\n",
     "t.cfg:2:12: 'server': '::1' reads as host ':' port 1: write IPv6 addresses in brackets, "
     "[::1] or [::1]:PORT"),
    ("bad IPv4", "backend b\n  server a 256.1.1.1:80\n",
     "t.cfg:2:12: 'server': '256.1.1.1' is not a valid IPv4 address"),
    ("ssl without crt", "frontend f\n  bind :443 ssl\n",
     "t.cfg:2:3: 'bind :443' has 'ssl' but no certificate: add 'crt <file>'"),
    ("crt without file", "frontend f\n  bind :443 ssl crt\n",
     "t.cfg:2:17: 'crt' expects <certificate file>"),
    ("server weight", "backend b\n  server a 10.0.0.1:80 weight 300\n",
     "t.cfg:2:31: 'weight': expected an integer from 0 to 256, not '300'"),
    ("misspelt server option", "backend b\n  server a 10.0.0.1:80 chek\n",
     "t.cfg:2:24: unknown server option 'chek'; did you mean 'check'?"),
    ("server option without value", "backend b\n  server a 10.0.0.1:80 rise\n",
     "t.cfg:2:24: 'rise' expects <count>"),
    ("zero inter", "backend b\n  server a 10.0.0.1:80 check inter 0\n",
     "t.cfg:2:36: 'inter': expected a time above 0, not '0'"),
    ("server without address", "backend b\n  server a\n",
     "t.cfg:2:3: 'server' expects <name> <address>[:<port>] [options]"),
    ("bad time", "defaults\n  timeout client 10sec\n",
     "t.cfg:2:18: 'timeout client': unknown time unit 'sec' in '10sec' (units are us, ms, s, m, "
     "h, d)"),
    ("time overflow", "defaults\n  timeout client 99999999999\n",
     "t.cfg:2:18: 'timeout client': '99999999999' is too long: timers stop at 2147483647 ms "
     "(about 24.8 days)"),
    ("missing time", "defaults\n  timeout client\n", "t.cfg:2:3: 'timeout client' expects <time>"),
    ("extra argument", "defaults\n  timeout client 5s 6s\n",
     "t.cfg:2:21: unexpected argument '6s': 'timeout client' expects <time>"),
    ("flag with argument", "global\n  daemon now\n",
     "t.cfg:2:10: unexpected argument 'now': 'daemon' takes no argument"),
    ("bad mode", "defaults\n  mode health\n",
     "t.cfg:2:8: unknown mode 'health' (expected 'http' or 'tcp')"),
    ("bad balance", "backend b\n  balance fastest\n",
     "t.cfg:2:11: unknown balance algorithm 'fastest' (expected one of roundrobin, static-rr, "
     "leastconn, first, source, uri)"),
    ("balance not supported yet", "backend b\n  balance uri whole\n",
     f"t.cfg:2:15: 'balance uri whole' {NOT_YET}"),
    ("log without target", "global\n  log local0\n",
     "t.cfg:2:7: 'log' expects <target> <facility> [<max level> [<min level>]] ('local0' is a "
     "facility: the target comes first)"),
    ("log facility", "global\n  log /dev/log local9\n",
     "t.cfg:2:16: unknown log facility 'local9'; did you mean 'local7'?"),
    ("log level", "global\n  log /dev/log local0 infos\n",
     "t.cfg:2:23: unknown log level 'infos' (levels are emerg, alert, crit, err, warning, notice, "
     "info, debug); did you mean 'info'?"),
    ("log global in global", "global\n  log global\n",
     "t.cfg:2:7: 'log global' belongs in a defaults or proxy section: it refers to the global "
     "section's own log targets"),
    ("log format", "global\n  log 127.0.0.1 format rfc5424 local0\n",
     f"t.cfg:2:17: 'log ... format' {NOT_YET}"),
    ("stats socket mode", "global\n  stats socket /run/a.sock mode 999\n",
     "t.cfg:2:33: 'mode': '999' is not an octal file mode such as 660"),
    ("stats socket level", "global\n  stats socket /run/a.sock level root\n",
     "t.cfg:2:34: unknown stats socket level 'root' (expected user, operator, admin)"),
    ("global maxconn", "global\n  maxconn lots\n",
     "t.cfg:2:11: 'maxconn': expected an integer from 1 to 2147483647, not 'lots'"),
    ("unterminated quote", "global\n  chroot '/var/lib\n", "t.cfg:2:10: unterminated single quote"),
    ("no without keyword", "defaults\n  no\n",
     "t.cfg:2:3: 'no' must be followed by the keyword to disable"),
    ("no on a keyword without it", "defaults\n  no mode http\n",
     "t.cfg:2:6: 'no mode' is not supported by pyxlb"),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_configuration(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "t.cfg", env={})
    assert not isinstance(info.value, ConfigErrors)
    assert str(info.value) == message


def test_every_error_is_reported_at_once(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        global
            maxconn lots
        frontend f
            bind :99999
            default_backend b
        backend b
            server a 10.0.0.1:80 wieght 2
    """) == [
        "t.cfg:2:13: 'maxconn': expected an integer from 1 to 2147483647, not 'lots'",
        "t.cfg:4:10: 'bind': invalid port '99999' (expected 1 to 65535)",
        "t.cfg:7:26: unknown server option 'wieght'; did you mean 'weight'?",
    ]


def test_config_errors_carries_the_list() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_text("global\n  chrot /x\n  usr haproxy\n", "t.cfg", env={})
    err = info.value
    assert [e.where for e in err.errors] == [Where("t.cfg", 2, 3), Where("t.cfg", 3, 3)]
    assert err.where == Where("t.cfg", 2, 3)
    assert err.message == "2 errors in the configuration"
    assert str(err).splitlines() == [str(e) for e in err.errors]


def test_error_parts() -> None:
    err = ConfigError("boom", Where("a.cfg", 3, 7))
    assert (err.message, str(err.where), str(err)) == ("boom", "a.cfg:3", "a.cfg:3:7: boom")
    assert str(ConfigError("boom", Where("a.cfg", 3))) == "a.cfg:3: boom"
    assert str(ConfigError("boom", Where("a.cfg", 0))) == "a.cfg: boom"
    assert str(ConfigError("boom")) == "boom"


def test_a_bad_section_header_still_reads_its_body(error_lines: Callable[..., list[str]]) -> None:
    """The body's own mistakes are reported; the section does not become a proxy."""
    assert error_lines("""\
        frontend x/y
            bind :80
            mode ftp
        backend x/y
    """) == [
        "t.cfg:1:10: 'frontend' name: character '/' is not permitted in name 'x/y' (use letters, "
        "digits, '-', '_', '.' and ':')",
        "t.cfg:3:10: unknown mode 'ftp' (expected 'http' or 'tcp')",
        "t.cfg:4:9: 'backend' name: character '/' is not permitted in name 'x/y' (use letters, "
        "digits, '-', '_', '.' and ':')",
    ]


def test_an_unsupported_section_is_reported_once(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        userlist TrustedPeople
            user bob insecure-password password123
            user alice insecure-password anotherpassword
        peers mypeers
            peer a 10.0.0.1:1024
        backend b
            balance leastconn
    """) == [
        f"t.cfg:1:1: 'userlist' {NOT_YET}",
        f"t.cfg:4:1: 'peers' {NOT_YET}",
    ]
