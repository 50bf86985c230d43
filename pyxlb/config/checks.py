"""HTTP health checks: `option httpchk [METHOD] [URI] [VERSION]` and `http-check expect`.

Servers are checked when their line says `check`; without `option httpchk` a check is
a TCP connect. `http-check expect` rules without `option httpchk` are ignored with
HAProxy's warning.
"""

from __future__ import annotations

import dataclasses
import re

from pyxlb.config.errors import ConfigError
from pyxlb.config.keywords import UNSUPPORTED, Cap, Statement
from pyxlb.config.model import HttpCheck, HttpCheckExpect
from pyxlb.config.proxy_draft import PROXY, ProxyDraft

EXPECT_KINDS = ("status", "rstatus", "string", "rstring")
_UNSUPPORTED_EXPECT = ("string-lf", "hdr", "fhdr", "min-recv", "comment", "ok-status",
                       "error-status", "tout-status", "on-success", "on-error", "status-code")
_STATUS_LIST = re.compile(r"[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*", re.ASCII)


@PROXY.keyword("option httpchk", "[<method>] [<uri>] [<version>]", args=(0, 3), caps=Cap.BE,
               misplaced="warn", negatable=True)
def _httpchk(st: Statement, p: ProxyDraft) -> None:
    if st.negated:
        p.httpchk = None
        return
    texts = [st.text(word) for word in st.args]
    if len(texts) == 1:
        texts = ["OPTIONS", *texts]  # a lone argument is the URI
    fields = dict(zip(("method", "uri", "version"), texts, strict=False))
    p.httpchk = HttpCheck(where=st.where, **fields)


@PROXY.keyword("http-check expect", "[!] status|rstatus|string|rstring <pattern>",
               args=(1, None), caps=Cap.BE, misplaced="warn")
def _http_check_expect(st: Statement, p: ProxyDraft) -> None:
    words = list(st.args)
    negate = False
    if words[0].text.startswith("!"):
        negate = True
        if words[0].text == "!":
            words.pop(0)
        else:
            words[0] = dataclasses.replace(words[0], text=words[0].text[1:])
    if not words:
        raise st.error(f"'http-check expect' expects {st.usage}")
    kind = words[0]
    if kind.text in _UNSUPPORTED_EXPECT:
        raise st.error(f"'http-check expect {kind.text}' {UNSUPPORTED}", kind)
    if kind.text not in EXPECT_KINDS:
        raise st.error(f"'http-check expect' expects one of {', '.join(EXPECT_KINDS)}, not "
                       f"'{kind.text}'", kind)
    if len(words) < 2:
        raise st.error(f"'http-check expect {kind.text}' expects a pattern", kind)
    if len(words) > 2:
        raise st.error(f"unexpected argument '{words[2].text}': 'http-check expect' takes one "
                       "pattern", words[2])
    pattern = words[1]
    if kind.text == "status" and _STATUS_LIST.fullmatch(pattern.text) is None:
        raise st.error(f"'{pattern.text}' is not a status, a range or a list of them (such as "
                       "200, 200-399 or 200,302)", pattern)
    if kind.text.startswith("r"):
        try:
            re.compile(pattern.text)
        except re.error as err:
            raise st.error(f"regex '{pattern.text}' is invalid: {err}", pattern) from None
    p.http_check_expects.append(HttpCheckExpect(
        kind=kind.text, pattern=pattern.text, negate=negate, where=st.where))  # type: ignore[arg-type]


def build_httpchk(p: ProxyDraft, warnings: list[ConfigError]) -> HttpCheck | None:
    if p.httpchk is None:
        if p.http_check_expects:
            warnings.append(ConfigError(f"{p.label} uses 'http-check' rules without 'option "
                                        "httpchk', so they are ignored",
                                        p.http_check_expects[0].where))
        return None
    return dataclasses.replace(p.httpchk, expects=tuple(p.http_check_expects))
