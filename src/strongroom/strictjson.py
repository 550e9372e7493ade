"""The one strict JSON reader for everything a client sends.

Used for request bodies, stamp headers (`X-Stamp`, `X-Stamp-WebAuthn` and the clientData inside
it), the dashboard's JSON bodies, and payloads that are JSON themselves (EIP-712 typed data,
EIP-7702 authorizations). What it refuses, with a short reason (`StrictJsonError`), before any
caller looks at the value:

- bytes that are not UTF-8 (raw surrogates included), and JSON syntax errors;
- nesting deeper than `max_depth`, found by a scan that does not recurse (the standard decoder
  recurses and would raise `RecursionError` on a few thousand `[`);
- a key that appears twice in one object, at any level (a signer must not guess which was meant);
- strings that are not Unicode: a lone surrogate written as a `\\uD800` escape;
- integers outside the signed/unsigned 64-bit range (what the store can encode); payloads whose
  integers are 256-bit quantities pass `int_bits=256`; larger amounts travel as decimal strings
  and are checked where they are read;
- `NaN`, `Infinity`, and numbers with a fraction or exponent unless `floats` is set (then only
  finite ones).

Most texts take a fast path (`_fast`): orjson parses them, and its value is returned only when
it provably is the strict parser's value too (no float in it, and as many keys in the value as
`":` sequences in the text, which rules out a repeated key); anything else goes to the strict
parser, which also words the refusal.

Leaf module: imports nothing from strongroom.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

MAX_DEPTH: Final = 64
MAX_INT_DIGITS: Final = 80  # a 256-bit integer has at most 78 decimal digits

# A JSON string, or an unterminated one through the end of the text (so the scan stays linear).
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET: Final = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_ASCII_DIGITS: Final = re.compile(r"[0-9]+")
_SPACED_COLON: Final = re.compile(r'"[ \t\n\r]+:')
_SPACED_COLON_BYTES: Final = re.compile(rb'"[ \t\n\r]+:')


class StrictJsonError(ValueError):
    """Why a JSON text was refused (short, safe to show to the client)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason: Final = reason


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of ASCII `0`-`9` only (`str.isdigit` also accepts "²" and full-width digits)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper than the number of openers (those inside strings included)
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise StrictJsonError(f"nested deeper than {max_depth} levels")
        else:
            depth -= 1


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key `{key[:64].encode('utf-8', 'replace').decode()}`")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"`{name}` is not a JSON number")


def _is_unicode(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_strings(value: Any) -> None:
    """Iteratively (no recursion): every key and string is valid Unicode."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not _is_unicode(v):
                raise StrictJsonError("a string holds a lone surrogate (not Unicode)")
        elif isinstance(v, dict):
            for k, item in v.items():
                if not _is_unicode(k):
                    raise StrictJsonError("a key holds a lone surrogate (not Unicode)")
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)


_NO_VALUE: Final = object()


def _fast(data: bytes | str, max_depth: int) -> Any:
    """orjson's value when it is certainly the strict parser's too, else `_NO_VALUE`.

    orjson refuses whatever the strict parser refuses except three things, checked here: a
    repeated key (orjson keeps the last), a float (an integer beyond 64 bits also comes back as
    one; the strict parser decides on both), and nesting deeper than `max_depth`. Its integers
    are within the signed/unsigned 64-bit range, the strict parser's narrowest.

    Repeated keys: when no white space ever follows a `"` before a `:`, every key of the text is
    followed by its colon at once, so the text has at least as many `":` as keys (a string that
    contains `":` only adds to that count). A repeated key leaves fewer keys in the value than in
    the text. So as many keys in the value as `":` in the text proves that no key was repeated;
    any other count, or a spaced colon, sends the text to the strict parser.
    """
    opener, closer = ("[", "{") if isinstance(data, str) else (b"[", b"{")
    if data.count(opener) + data.count(closer) > max_depth:  # type: ignore[arg-type]
        return _NO_VALUE  # perhaps too deep: the strict parser scans it
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _NO_VALUE
    keys = 0
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is dict:
            keys += len(v)
            stack.extend(v.values())
        elif kind is list:
            stack.extend(v)
        elif kind is float:
            return _NO_VALUE
    if isinstance(data, str):
        if _SPACED_COLON.search(data) is not None:
            return _NO_VALUE
        colons = data.count('":')
    else:
        if _SPACED_COLON_BYTES.search(data) is not None:
            return _NO_VALUE
        colons = data.count(b'":')
    return value if keys == colons else _NO_VALUE


def loads(
    data: bytes | bytearray | memoryview | str,
    *,
    max_depth: int = MAX_DEPTH,
    int_bits: int = 64,
    floats: bool = False,
) -> Any:
    """Parse `data` strictly (see the module docstring); raises `StrictJsonError`."""
    if int_bits >= 64 and isinstance(data, bytes | str):
        value = _fast(data, max_depth)
        if value is not _NO_VALUE:
            return value
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise StrictJsonError("not UTF-8") from err
    _check_depth(text, max_depth)
    low = -(1 << (int_bits - 1))
    high = (1 << int_bits) - 1

    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > MAX_INT_DIGITS:
            raise StrictJsonError(f"an integer is outside the {int_bits}-bit range")
        n = int(s)
        if not low <= n <= high:
            raise StrictJsonError(f"an integer is outside the {int_bits}-bit range")
        return n

    def parse_float(s: str) -> float:
        if not floats:
            raise StrictJsonError("numbers with a fraction or exponent are not accepted here")
        f = float(s)
        if f in (float("inf"), float("-inf")):
            raise StrictJsonError("a number is too large")
        return f

    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=_no_constant,
        )
    except StrictJsonError:
        raise
    except (ValueError, RecursionError) as err:  # RecursionError: cannot happen after the depth scan
        raise StrictJsonError("not valid JSON") from err
    if _SURROGATE_ESCAPE.search(text) is not None:
        _check_strings(value)
    return value
