"""The strict JSON reader: what it refuses, and that ordinary JSON reads as with `json.loads`."""

from __future__ import annotations

import json

import pytest

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
