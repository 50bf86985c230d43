"""HAProxy's lexical rules: one configuration line into words, each with its column.

The rules are those of HAProxy 2.6's `parse_line()`:
- words are separated by blanks; `#` outside quotes starts a comment, even mid-word;
- `'...'` quotes literally; `"..."` quotes too but still honours backslash escapes
  and expands environment variables (`"$NAME"`, `"${NAME}"`, `"${NAME-default}"`,
  `"${NAME[*]}"` which splits the value into several words, and the pseudo-variables
  `.FILE`, `.LINE`, `.SECTION`); outside double quotes `$` is an ordinary character;
- outside single quotes, `\\` escapes a blank, `\\`, `#`, `'`, `"` (and `$` inside
  double quotes), `\\t`, `\\n`, `\\r` and `\\xHH`; any other backslash stays as it is;
- a carriage return ends the line (CRLF files), and an empty last word is dropped.

The lexer is pure: the environment is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyxlb.config.errors import ConfigError, Where

# HAProxy refuses lines with more words than this (MAX_LINE_ARGS).
MAX_WORDS = 64

_BLANKS = " \t\v\f"
_HEX = "0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {" ": " ", "\\": "\\", "#": "#", "'": "'", '"': '"', "t": "\t", "n": "\n",
                   "r": "\r"}


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a line after unquoting, and the 1-based column where it began."""

    text: str
    col: int


@dataclass(frozen=True, slots=True)
class Line:
    """The words of one non-empty line; `where.col` is the first word's column."""

    words: tuple[Word, ...]
    where: Where

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.words)


def lex_line(raw: str, file: str, lineno: int, env: Mapping[str, str],
             section: str = "") -> Line | None:
    """Split one line into words; None for a blank or comment-only line.

    `section` is the name of the section being parsed, for `"$.SECTION"`.
    Raises ConfigError (with the column) on an unterminated quote or a bad escape.
    """
    return _LineLexer(raw, file, lineno, env, section).run()


class _LineLexer:
    def __init__(self, raw: str, file: str, lineno: int, env: Mapping[str, str],
                 section: str) -> None:
        self.raw = raw
        self.file = file
        self.lineno = lineno
        self.env = env
        self.section = section
        self.words: list[Word] = []
        self.buf: list[str] = []
        self.start: int | None = None  # index where the current word began
        self.quote: str | None = None
        self.quote_at = 0

    def error(self, message: str, index: int) -> ConfigError:
        return ConfigError(message, Where(self.file, self.lineno, index + 1))

    def run(self) -> Line | None:
        raw, i = self.raw, 0
        while i < len(raw):
            c = raw[i]
            if c == "\r":
                break
            if c == "\0":
                raise self.error("NUL character in the line", i)
            if self.quote is None and c in _BLANKS:
                self.finish_word()
                i += 1
                continue
            if self.quote is None and c == "#":
                break
            if self.start is None:
                self.start = i
            if c in "\"'" and self.quote in (None, c):
                self.quote = None if self.quote else c
                self.quote_at = i
                i += 1
            elif c == "\\" and self.quote != "'":
                i = self.escape(i)
            elif c == "$" and self.quote == '"':
                i = self.expand(i)
            else:
                self.buf.append(c)
                i += 1
        if self.quote is not None:
            kind = "double" if self.quote == '"' else "single"
            raise self.error(f"unterminated {kind} quote", self.quote_at)
        self.finish_word()
        if self.words and not self.words[-1].text:
            self.words.pop()
        if len(self.words) > MAX_WORDS:
            raise self.error(f"too many words on one line (HAProxy accepts at most {MAX_WORDS})",
                             self.words[MAX_WORDS].col - 1)
        if not self.words:
            return None
        return Line(tuple(self.words), Where(self.file, self.lineno, self.words[0].col))

    def finish_word(self) -> None:
        if self.start is not None:
            self.words.append(Word("".join(self.buf), self.start + 1))
            self.buf.clear()
            self.start = None

    def escape(self, i: int) -> int:
        raw = self.raw
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt in _SIMPLE_ESCAPES:
            self.buf.append(_SIMPLE_ESCAPES[nxt])
            return i + 2
        if nxt == "$" and self.quote == '"':
            self.buf.append("$")
            return i + 2
        if nxt == "x":
            digits = raw[i + 2:i + 4]
            if len(digits) != 2 or any(d not in _HEX for d in digits):
                raise self.error("invalid escape: '\\x' needs two hexadecimal digits", i)
            if digits == "00":
                raise self.error("'\\x00' (NUL) is not allowed", i)
            self.buf.append(chr(int(digits, 16)))
            return i + 4
        # Not an escape sequence (e.g. a regex's "\1"): HAProxy keeps the backslash.
        self.buf.append("\\")
        return i + 1

    def expand(self, dollar: int) -> int:
        raw = self.raw
        j = dollar + 1
        brace = j < len(raw) and raw[j] == "{"
        if brace:
            j += 1
        if j >= len(raw) or not (raw[j].isascii() and (raw[j].isalpha() or raw[j] in "_.")):
            raise self.error("a variable name must follow '$' (write \\$ for a literal dollar)", j)
        name_start = j
        if raw[j] == ".":
            j += 1
        while j < len(raw) and raw[j].isascii() and (raw[j].isalnum() or raw[j] == "_"):
            j += 1
        name = raw[name_start:j]
        value = self.lookup(name, name_start)
        split = False
        if brace and raw.startswith("[", j):
            if not raw.startswith("[*]", j):
                raise self.error("only '[*]' may follow a variable name", j)
            split = True
            j += 3
        if brace:
            if raw.startswith("-", j):
                close = raw.find("}", j)
                if close < 0:
                    raise self.error("unterminated '${'", dollar)
                if value is None:
                    value = raw[j + 1:close]
                j = close
            elif not raw.startswith("}", j):
                raise self.error("unterminated '${'", dollar)
            j += 1
        self.emit_value(value or "", split, dollar)
        return j

    def lookup(self, name: str, at: int) -> str | None:
        if not name.startswith("."):
            return self.env.get(name)
        pseudo = {".FILE": self.file, ".LINE": str(self.lineno), ".SECTION": self.section}
        if name not in pseudo:
            raise self.error(f"unknown pseudo-variable '{name}' (known: .FILE, .LINE, .SECTION)",
                             at)
        return pseudo[name]

    def emit_value(self, value: str, split: bool, dollar: int) -> None:
        if not split:
            self.buf.append(value)
            return
        # "${NAME[*]}": every run of blanks in the value separates words, as in HAProxy.
        k = 0
        while k < len(value):
            if value[k] in _BLANKS:
                self.finish_word()
                self.start = dollar
                while k < len(value) and value[k] in _BLANKS:
                    k += 1
            else:
                self.buf.append(value[k])
                k += 1
