"""Hex, base64url and fixed-width integer helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto.encoding import b64url_decode, b64url_encode, hex_to_bytes, int_to_32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", b""),
        ("0x", b""),
        ("00ff", b"\x00\xff"),
        ("0x00FF", b"\x00\xff"),
        ("0XabCD", b"\xab\xcd"),
        ("DEADbeef", b"\xde\xad\xbe\xef"),
    ],
)
def test_hex_to_bytes_accepts(value: str, expected: bytes) -> None:
    assert hex_to_bytes(value) == expected


@pytest.mark.parametrize("value", ["abc", "0x1", "zz", "0xg0", "0x 00", "00 ", "0x0x00", "\u0660\u0661"])
def test_hex_to_bytes_rejects(value: str) -> None:
    with pytest.raises(ValueError) as info:
        hex_to_bytes(value)
    message = str(info.value)
    assert message == message.lower()
    assert "hex" in message


def test_hex_to_bytes_rejects_non_str() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        hex_to_bytes(b"00")  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert "+" not in encoded
    assert "/" not in encoded
    assert b64url_decode(encoded) == data
    padded = encoded + "=" * (-len(encoded) % 4)
    assert b64url_decode(padded) == data


@pytest.mark.parametrize("value", ["a", "ab=c", "ab+/", "a===", "ab=", "abc==", "!!!!", "ab cd"])
def test_b64url_decode_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(value)


def test_b64url_known_answer() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b"\xfb\xff"
    assert b64url_decode("-_8=") == b"\xfb\xff"


def test_int_to_32() -> None:
    assert int_to_32(0) == b"\x00" * 32
    assert int_to_32(1) == b"\x00" * 31 + b"\x01"
    assert int_to_32(2**256 - 1) == b"\xff" * 32
    with pytest.raises(ValueError):
        int_to_32(2**256)
    with pytest.raises(ValueError):
        int_to_32(-1)
