"""The lexer against HAProxy 2.6's parse_line(): words, quotes, escapes, expansion, columns.

Expected values were checked with `haproxy -c` on the same lines (its "unknown keyword"
alert echoes the first word after unquoting).
"""

from __future__ import annotations

import pytest

from pyxlb.config import ConfigError
from pyxlb.config.lexer import MAX_WORDS, lex_line

ENV = {"HOME": "/root", "TWO": "p  q", "EMPTY": ""}


def words(raw: str, env: dict[str, str] | None = None) -> list[str]:
    line = lex_line(raw, "f.cfg", 7, ENV if env is None else env, "web")
    return [] if line is None else list(line.texts)


def columns(raw: str) -> list[tuple[str, int]]:
    line = lex_line(raw, "f.cfg", 7, ENV)
    assert line is not None
    return [(w.text, w.col) for w in line.words]


@pytest.mark.parametrize(("raw", "expected"), [
    ("", []),
    ("   \t ", []),
    ("# only a comment", []),
    ("  server web1 10.0.0.1:80   check", ["server", "web1", "10.0.0.1:80", "check"]),
    ("a\tb\vc\fd", ["a", "b", "c", "d"]),
    # '#' starts a comment anywhere outside quotes, even inside a word.
    ("a#b c", ["a"]),
    ("a '#b' \"#c\" \\#d", ["a", "#b", "#c", "#d"]),
])
def test_words_and_comments(raw: str, expected: list[str]) -> None:
    assert words(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    # The tutorial's stats realm: an escaped blank keeps one word.
    (r"stats realm Haproxy\ Statistics", ["stats", "realm", "Haproxy Statistics"]),
    (r"a\\b", ["a\\b"]),
    (r"\t\n\r", ["\t\n\r"]),
    (r"\x41B", ["AB"]),
    (r"\'\"", ["'\""]),
    # Other backslashes are not escapes and stay (regex back-references).
    (r"w\1x", ["w\\1x"]),
    ("trailing\\", ["trailing\\"]),
    # Outside double quotes '\$' is not an escape either.
    (r"\$HOME", ["\\$HOME"]),
])
def test_backslash_escapes(raw: str, expected: list[str]) -> None:
    assert words(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("'single quoted'", ["single quoted"]),
    ("'no \\escape $HOME'", ["no \\escape $HOME"]),
    ('"double \\"quoted\\""', ['double "quoted"']),
    ("ab'c d'\"e f\"", ["abc de f"]),
    ("'it\"s'", ['it"s']),
    ("\"it's\"", ["it's"]),
    # An empty quoted word counts, except at the end of the line (as in HAProxy).
    ('a "" b', ["a", "", "b"]),
    ('a ""', ["a"]),
])
def test_quotes(raw: str, expected: list[str]) -> None:
    assert words(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ('"$HOME"', ["/root"]),
    ('"x${HOME}y"', ["x/rooty"]),
    ('"$HOME/x"', ["/root/x"]),
    # Only inside double quotes.
    ("$HOME", ["$HOME"]),
    ("${HOME}", ["${HOME}"]),
    ("'$HOME'", ["$HOME"]),
    ('"\\$HOME"', ["$HOME"]),
    # Unset variables expand to nothing; ${NAME-default} gives a default.
    ('"${NOPE}z"', ["z"]),
    ('"${NOPE-a b}"', ["a b"]),
    ('"${HOME-a b}"', ["/root"]),
    ('"$EMPTY" x', ["", "x"]),
    # ${NAME[*]} splits the value into words.
    ('"${TWO}"', ["p  q"]),
    ('"${TWO[*]}" b', ["p", "q", "b"]),
    ('"${TWO}[*]"', ["p  q[*]"]),
    ('"$.LINE" "$.FILE" "$.SECTION"', ["7", "f.cfg", "web"]),
])
def test_environment_expansion(raw: str, expected: list[str]) -> None:
    assert words(raw) == expected


def test_environment_is_the_argument_not_the_process() -> None:
    assert words('"$HOME"', env={}) == []
    assert words('"$HOME" x', env={"HOME": "/h"}) == ["/h", "x"]


def test_columns_are_one_based_and_point_at_the_word_start() -> None:
    assert columns("  bind\t*:80  'a b' \"c\"d") == [("bind", 3), ("*:80", 8), ("a b", 14),
                                                     ("cd", 20)]
    line = lex_line("    timeout client 5s", "x.cfg", 12, {})
    assert line is not None
    assert (str(line.where), line.where.col) == ("x.cfg:12", 5)


def test_carriage_return_ends_the_line() -> None:
    assert words("mode http\r") == ["mode", "http"]
    assert words("a\rb c") == ["a"]


@pytest.mark.parametrize(("raw", "message"), [
    ("chroot '/x", "f.cfg:7:8: unterminated single quote"),
    ('chroot "/x', "f.cfg:7:8: unterminated double quote"),
    ("a \"b 'c\" 'd", "f.cfg:7:10: unterminated single quote"),
    (r"chroot \xZZ", "f.cfg:7:8: invalid escape: '\\x' needs two hexadecimal digits"),
    (r"a \x4", "f.cfg:7:3: invalid escape: '\\x' needs two hexadecimal digits"),
    (r"a \x00", "f.cfg:7:3: '\\x00' (NUL) is not allowed"),
    ('a "$ x"', "f.cfg:7:5: a variable name must follow '$' (write \\$ for a literal dollar)"),
    ('a "$1"', "f.cfg:7:5: a variable name must follow '$' (write \\$ for a literal dollar)"),
    ('a "${X"', "f.cfg:7:4: unterminated '${'"),
    ('a "${X-def"', "f.cfg:7:4: unterminated '${'"),
    ('a "${X[0]}"', "f.cfg:7:7: only '[*]' may follow a variable name"),
    ('a "$.NOPE"', "f.cfg:7:5: unknown pseudo-variable '.NOPE' (known: .FILE, .LINE, .SECTION)"),
    ("a\0b", "f.cfg:7:2: NUL character in the line"),
    (" ".join(["w"] * (MAX_WORDS + 1)),
     f"f.cfg:7:{2 * MAX_WORDS + 1}: too many words on one line (HAProxy accepts at most 64)"),
])
def test_lexical_errors_name_file_line_and_column(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        lex_line(raw, "f.cfg", 7, ENV)
    assert str(info.value) == message


def test_sixty_four_words_are_fine() -> None:
    assert len(words(" ".join(["w"] * MAX_WORDS))) == MAX_WORDS
