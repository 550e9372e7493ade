"""The strict JSON reader: what it refuses, and that ordinary JSON reads as with `json.loads`."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom import strictjson
from strongroom.strictjson import MAX_DEPTH, StrictJsonError, is_ascii_digits, loads


def test_ordinary_json_reads_as_usual() -> None:
    text = '{"a": [1, -2, "x\\u00e9\\ud83d\\ude00", {"b": null, "c": true}], "d": "\\\\ud800"}'
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) == json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert loads('["[[[[' + "[" * 100 + '"]') == ["[[[[" + "[" * 100]  # brackets inside strings do not nest


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
        ("[" * 100_000, "nested deeper"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "nested deeper"),
        ('"\\"' + "[" * 100 + '"' + "[" * 100, "nested deeper"),  # an unterminated string stays linear
        ('{"a": 1, "a": 2}', "duplicate key `a`"),
        ('{"x": [{"a": 1, "b": {"c": 1, "c": 1}}]}', "duplicate key `c`"),
        ('["x\\ud800"]', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ('"\\ud800\\ud800"', "lone surrogate"),
        (str(2**64), "64-bit"),
        (str(-(2**63) - 1), "64-bit"),
        ("1" * 5000, "64-bit"),
        ("1.5", "fraction"),
        ("1e3", "fraction"),
        ("NaN", "not a JSON number"),
        ("-Infinity", "not a JSON number"),
        ("[1,]", "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(StrictJsonError, match=reason):
        loads(text)


def test_bytes_must_be_utf8() -> None:
    for raw in (b'["\xed\xa0\x80"]', b'["\xff"]', '["x"]'.encode("utf-16")):
        with pytest.raises(StrictJsonError, match="UTF-8"):
            loads(raw)


def test_integer_bounds() -> None:
    assert loads(str(2**64 - 1)) == 2**64 - 1
    assert loads(str(-(2**63))) == -(2**63)
    assert loads(str(2**256 - 1), int_bits=256) == 2**256 - 1
    with pytest.raises(StrictJsonError):
        loads(str(2**256), int_bits=256)


def test_floats_when_asked() -> None:
    assert loads("[1.5, 1e18]", floats=True) == [1.5, 1e18]
    with pytest.raises(StrictJsonError, match="too large"):
        loads("1e400", floats=True)


def test_ascii_digits() -> None:
    assert is_ascii_digits("0123456789")
    for text in ("", "\u00b2", "\uff11", "\u0663", "1\u00b2", " 1", "1\n", "+1", "-1", "1.0"):
        assert not is_ascii_digits(text), text


# -- the fast path (orjson, then a proof that its value is the strict parser's) ------------------------------
def _strict(text: str | bytes, **kw: Any) -> Any:
    """The strict parser alone, as it was before the fast path (the reference)."""
    with mock.patch.object(strictjson, "_fast", return_value=strictjson._NO_VALUE):
        return loads(text, **kw)


def _outcome(parse: Any, text: str | bytes, **kw: Any) -> tuple[str, Any]:
    try:
        value = parse(text, **kw)
    except StrictJsonError as err:
        return "refused", err.reason
    return "value", (value, repr(value))  # repr tells 1 from 1.0 and True from 1


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


_ESCAPES = ["\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u0000", "\\n"]


@st.composite
def _json_texts(draw: st.DrawFn) -> str:
    """JSON texts, then edited the ways that matter here: a key repeated, a space before a colon,
    `":` inside strings, escapes (lone surrogates too), deep nesting, garbage."""
    text = json.dumps(draw(_json_values), ensure_ascii=draw(st.booleans()))
    edits = draw(st.lists(st.sampled_from(["dup", "space", "colon-in-string", "escape", "nest", "junk"]), max_size=3))
    for edit in edits:
        if edit == "dup" and text.startswith("{") and text != "{}":
            first = text[1 : text.index('":') + 2] if '":' in text else None
            if first:
                text = "{" + first + " 0, " + text[1:]
        elif edit == "space":
            text = text.replace('":', '" :', 1)
        elif edit == "colon-in-string":
            text = f'{{"k": "a\\":b", "v": {text}}}'
        elif edit == "escape":
            escape = draw(st.sampled_from(_ESCAPES))
            text = '["' + escape + '", ' + text + "]"
        elif edit == "nest":
            depth = draw(st.integers(min_value=1, max_value=MAX_DEPTH + 2))
            text = "[" * depth + text + "]" * depth
        elif edit == "junk":
            at = draw(st.integers(min_value=0, max_value=len(text)))
            text = text[:at] + draw(st.sampled_from([",", "}", "]", '"', ":", "01", "1.0", "\x01", " "])) + text[at:]
    return text


@settings(max_examples=2000, deadline=None)
@given(text=_json_texts(), as_bytes=st.booleans(), int_bits=st.sampled_from([64, 256]), floats=st.booleans())
def test_the_fast_path_reads_exactly_what_the_strict_parser_reads(
    text: str, as_bytes: bool, int_bits: int, floats: bool
) -> None:
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(loads, data, int_bits=int_bits, floats=floats) == _outcome(
        _strict, data, int_bits=int_bits, floats=floats
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 1}',  # the same key and value twice: still refused
        '{"a":1,"a":1}',
        '{"a" :1, "a":2}',
        '{"x":"\\":", "x":1}',  # a `":` inside a string does not hide the repeated key
        '{"a":{"b":1},"a":{"b":1}}',
    ],
)
def test_a_repeated_key_is_refused_whatever_the_spacing(text: str) -> None:
    with pytest.raises(StrictJsonError, match="duplicate key"):
        loads(text)
    with pytest.raises(StrictJsonError, match="duplicate key"):
        loads(text.encode())


def test_the_fast_path_is_taken_for_ordinary_bodies() -> None:
    body = b'{"type":"T","timestampMs":"1","organizationId":"o","parameters":{"signWith":"k","payload":"p"}}'
    assert strictjson._fast(body, MAX_DEPTH) == json.loads(body)
    assert strictjson._fast(b'{"a":1.5}', MAX_DEPTH) is strictjson._NO_VALUE
    assert strictjson._fast(b'{"a":1,"a":2}', MAX_DEPTH) is strictjson._NO_VALUE
