"""Base58 and Base58Check."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto.base58 import b58check_decode, b58check_encode, b58decode, b58encode

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_CASES: list[list[str]] = _load("base58.json")["vectors"]


@pytest.mark.parametrize(("hex_data", "encoded"), _CASES)
def test_known_answers(hex_data: str, encoded: str) -> None:
    assert b58encode(bytes.fromhex(hex_data)) == encoded
    assert b58decode(encoded) == bytes.fromhex(hex_data)


def test_hello_world_and_leading_zeros() -> None:
    assert b58encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert b58encode(b"\x00\x00\x01") == "112"
    assert b58decode("111") == b"\x00\x00\x00"


@given(st.binary(max_size=64))
def test_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc+", "a b"])
def test_invalid_characters(bad: str) -> None:
    with pytest.raises(ValueError):
        b58decode(bad)


def test_b58check() -> None:
    payload = b"\x00" + bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    encoded = b58check_encode(payload)
    assert encoded == "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
    raw = b58decode(encoded)
    assert raw[-4:] == hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    assert b58check_decode(encoded) == payload
    corrupted = b58encode(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match="checksum"):
        b58check_decode(corrupted)
    with pytest.raises(ValueError):
        b58check_decode("1")
