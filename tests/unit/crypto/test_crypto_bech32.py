"""Bech32 / Bech32m and SegWit addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import bech32

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_DATA = _load("bech32.json")


@pytest.mark.parametrize("value", _DATA["valid_bech32"])
def test_bip173_valid(value: str) -> None:
    hrp, data, spec = bech32.bech32_decode(value)
    assert spec is bech32.Encoding.BECH32
    assert bech32.bech32_encode(hrp, data, spec) == value.lower()


@pytest.mark.parametrize("value", _DATA["valid_bech32m"])
def test_bip350_valid(value: str) -> None:
    hrp, data, spec = bech32.bech32_decode(value)
    assert spec is bech32.Encoding.BECH32M
    assert bech32.bech32_encode(hrp, data, spec) == value.lower()


@pytest.mark.parametrize("value", _DATA["valid_bech32"])
def test_single_character_change_detected(value: str) -> None:
    lower = value.lower()
    pos = len(lower) - 1
    replacement = "q" if lower[pos] != "q" else "p"
    with pytest.raises(ValueError):
        bech32.bech32_decode(lower[:pos] + replacement)


@pytest.mark.parametrize(
    "value",
    ["A12uEL5L", "1nwldj5", "pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "a" * 84 + "1qqqqqq", "abc1\x7fqqqqqq"],
)
def test_invalid_strings(value: str) -> None:
    with pytest.raises(ValueError):
        bech32.bech32_decode(value)


def test_p2wpkh_bip173_example() -> None:
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    address = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert bech32.encode_segwit("bc", 0, program) == address
    assert bech32.decode_segwit("bc", address) == (0, program)
    assert bech32.decode_segwit("bc", address.upper()) == (0, program)
    with pytest.raises(ValueError):
        bech32.decode_segwit("tb", address)


def test_segwit_rejects_bad_programs() -> None:
    with pytest.raises(ValueError):
        bech32.encode_segwit("bc", 0, b"\x00" * 21)
    with pytest.raises(ValueError):
        bech32.encode_segwit("bc", 17, b"\x00" * 20)
    v1 = bech32.encode_segwit("bc", 1, b"\x01" * 32)
    assert bech32.decode_segwit("bc", v1) == (1, b"\x01" * 32)
    # A v1 program encoded with the v0 (Bech32) constant must be rejected.
    wrong = bech32.bech32_encode("bc", [1, *bech32.convertbits(b"\x01" * 32, 8, 5)], bech32.Encoding.BECH32)
    with pytest.raises(ValueError):
        bech32.decode_segwit("bc", wrong)


@given(st.binary(min_size=1, max_size=40))
def test_bytes_round_trip(payload: bytes) -> None:
    encoded = bech32.encode_bytes("cosmos", payload)
    assert encoded.startswith("cosmos1")
    assert bech32.decode_bytes("cosmos", encoded) == payload


def test_convertbits_rejects_bad_padding() -> None:
    with pytest.raises(ValueError):
        bech32.convertbits([31], 5, 8, pad=False)
    with pytest.raises(ValueError):
        bech32.convertbits([256], 8, 5)
