"""Policy source text -> tokens.

Tokens: integers (decimal digits), single-quoted strings (escapes `\\'` and `\\\\` only), identifiers
(`[A-Za-z_][A-Za-z0-9_]*`; `true`, `false` and `in` are keywords), and the punctuation
`&& || ! == != < > <= >= ( ) [ ] , . .. -`. Whitespace separates tokens. Positions are 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from strongroom.policy.errors import PolicySyntaxError

TokenKind = Literal["int", "str", "ident", "keyword", "op", "eof"]

MAX_SOURCE_CHARS: Final = 65_536
KEYWORDS: Final = frozenset({"true", "false", "in"})
# Longest first, so `..` wins over `.`, `<=` over `<`.
_OPERATORS: Final = ("&&", "||", "==", "!=", "<=", ">=", "..", "!", "<", ">", "(", ")", "[", "]", ",", ".", "-")
# Longer than any integer literal the language accepts (2**256 - 1 has 78 digits).
_MAX_INT_DIGITS: Final = 80


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # the operator or keyword, the identifier, the decoded string, the digits
    line: int
    column: int


def _is_ident_start(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_ident_char(ch: str) -> bool:
    return _is_ident_start(ch) or ("0" <= ch <= "9")


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def tokenize(source: str) -> list[Token]:
    """Split `source` into tokens, ending with an `eof` token; raise `PolicySyntaxError`."""
    if len(source) > MAX_SOURCE_CHARS:
        raise PolicySyntaxError(f"policy is too long: at most {MAX_SOURCE_CHARS} characters are accepted", 1, 1)
    tokens: list[Token] = []
    i = 0
    line = 1
    line_start = 0
    n = len(source)
    while i < n:
        ch = source[i]
        column = i - line_start + 1
        if ch == "\n":
            i += 1
            line += 1
            line_start = i
            continue
        if ch in " \t\r":
            i += 1
            continue
        if _is_digit(ch):
            j = i
            while j < n and _is_digit(source[j]):
                j += 1
            if j < n and _is_ident_char(source[j]):
                raise PolicySyntaxError(f"invalid number `{source[i : j + 1]}`", line, column)
            digits = source[i:j]
            if len(digits) > _MAX_INT_DIGITS:
                raise PolicySyntaxError("integer literal out of range", line, column)
            tokens.append(Token("int", digits, line, column))
            i = j
            continue
        if _is_ident_start(ch):
            j = i
            while j < n and _is_ident_char(source[j]):
                j += 1
            word = source[i:j]
            tokens.append(Token("keyword" if word in KEYWORDS else "ident", word, line, column))
            i = j
            continue
        if ch == "'":
            start_line = line
            text, i, line, line_start = _string(source, i, line, line_start)
            tokens.append(Token("str", text, start_line, column))
            continue
        if ch == '"':
            raise PolicySyntaxError("strings must use single quotes", line, column)
        for op in _OPERATORS:
            if source.startswith(op, i):
                tokens.append(Token("op", op, line, column))
                i += len(op)
                break
        else:
            if ch in "&|=":
                raise PolicySyntaxError(f"unexpected character `{ch}`; did you mean `{ch * 2}`?", line, column)
            shown = ch if ch.isprintable() else repr(ch)
            raise PolicySyntaxError(f"unexpected character `{shown}`", line, column)
    tokens.append(Token("eof", "", line, i - line_start + 1))
    return tokens


def _string(source: str, start: int, line: int, line_start: int) -> tuple[str, int, int, int]:
    """Decode the string literal opening at `start`; return (text, next index, line, line_start)."""
    start_line = line
    start_column = start - line_start + 1
    out: list[str] = []
    i = start + 1
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "'":
            return "".join(out), i + 1, line, line_start
        if ch == "\\":
            nxt = source[i + 1] if i + 1 < n else ""
            if nxt in ("'", "\\"):
                out.append(nxt)
                i += 2
                continue
            shown = nxt if nxt.isprintable() and nxt else repr(nxt)
            raise PolicySyntaxError(
                f"unknown escape `\\{shown}` in string; only `\\'` and `\\\\` are allowed",
                line,
                i - line_start + 1,
            )
        if ch == "\n":
            line += 1
            line_start = i + 1
        out.append(ch)
        i += 1
    raise PolicySyntaxError("unterminated string", start_line, start_column)


__all__ = ["KEYWORDS", "MAX_SOURCE_CHARS", "Token", "TokenKind", "tokenize"]
