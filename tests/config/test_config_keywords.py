"""The keyword registry on its own: adding a keyword is adding an entry."""

from __future__ import annotations

import pytest

from pyxlb.config import ConfigError
from pyxlb.config.keywords import Cap, Kind, Registry, Statement
from pyxlb.config.lexer import lex_line

toy: Registry[list[str]] = Registry("a toy section")


@toy.keyword("retries", "<count>", args=1, caps=Cap.BE, misplaced="warn")
def _retries(st: Statement, seen: list[str]) -> None:
    seen.append(f"retries={st.args[0].text}")


@toy.keyword("option redispatch", caps=Cap.BE, negatable=True)
def _redispatch(st: Statement, seen: list[str]) -> None:
    seen.append(f"redispatch={not st.negated}")


toy.unsupported("acl", "option httpchk")


def run(raw: str, kind: Kind = Kind.BACKEND) -> tuple[list[str], list[str]]:
    line = lex_line(raw, "t.cfg", 1, {})
    assert line is not None
    seen: list[str] = []
    warnings: list[ConfigError] = []
    toy.run(line, kind, f"{kind.value} 'p'", seen, warnings)
    return seen, [str(w) for w in warnings]


def error(raw: str, kind: Kind = Kind.BACKEND) -> str:
    with pytest.raises(ConfigError) as info:
        run(raw, kind)
    return str(info.value)


def test_a_registered_keyword_reaches_its_handler() -> None:
    assert run("retries 3") == (["retries=3"], [])
    assert run("option redispatch") == (["redispatch=True"], [])
    assert run("no option redispatch") == (["redispatch=False"], [])


def test_arguments_are_counted_before_the_handler_runs() -> None:
    assert error("retries") == "t.cfg:1:1: 'retries' expects <count>"
    assert error("retries 3 4") == "t.cfg:1:11: unexpected argument '4': 'retries' expects <count>"
    assert error("option redispatch now") == \
        "t.cfg:1:19: unexpected argument 'now': 'option redispatch' takes no argument"
    assert error("no retries 3") == "t.cfg:1:4: 'no retries' is not supported by pyxlb"


def test_capabilities_decide_where_a_keyword_acts() -> None:
    assert run("retries 3", Kind.FRONTEND) == (
        [], ["t.cfg:1:1: 'retries' ignored because frontend 'p' has no backend capability"])
    assert error("option redispatch", Kind.FRONTEND) == (
        "t.cfg:1:1: 'option redispatch' is not allowed in frontend 'p'; it belongs in a "
        "defaults, backend or listen section")


def test_unknown_and_unsupported_keywords() -> None:
    assert error("retrie 3") == \
        "t.cfg:1:1: unknown keyword 'retrie' in backend 'p'; did you mean 'retries'?"
    assert error("option redispach") == ("t.cfg:1:1: unknown keyword 'option redispach' in "
                                         "backend 'p'; did you mean 'option redispatch'?")
    assert error("acl x src 10.0.0.0/8") == \
        "t.cfg:1:1: 'acl' is a HAProxy keyword pyxlb does not support yet"
    assert error("option httpchk GET /") == \
        "t.cfg:1:1: 'option httpchk' is a HAProxy keyword pyxlb does not support yet"


def test_a_keyword_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        toy.keyword("retries")(_retries)
