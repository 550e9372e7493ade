"""Ed25519 against RFC 8032 §7.1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto import ed25519
from strongroom.errors import InvalidSignature

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_RFC8032: list[dict[str, str]] = _load("rfc8032_ed25519.json")["vectors"]


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("vector", _RFC8032, ids=[v["name"] for v in _RFC8032])
def test_rfc8032(vector: dict[str, str]) -> None:
    seed = bytes.fromhex(vector["secret_key"])
    public_key = bytes.fromhex(vector["public_key"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])

    assert ed25519.public_key_from_seed(seed) == public_key
    assert ed25519.sign(seed, message) == signature
    ed25519.verify(public_key, message, signature)

    for index in (0, 31, 32, 63):
        with pytest.raises(InvalidSignature):
            ed25519.verify(public_key, message, _flip(signature, index))
    with pytest.raises(InvalidSignature):
        ed25519.verify(public_key, message + b"\x00", signature)
    if message:
        with pytest.raises(InvalidSignature):
            ed25519.verify(public_key, _flip(message, 0), signature)
    with pytest.raises(InvalidSignature):
        ed25519.verify(_flip(public_key, 0), message, signature)


def test_sha_abc_message_is_sha512_of_abc() -> None:
    vector = next(v for v in _RFC8032 if v["name"] == "TEST SHA(abc)")
    assert bytes.fromhex(vector["message"]) == hashlib.sha512(b"abc").digest()


def test_generated_seed_round_trip() -> None:
    seed = ed25519.generate_seed()
    assert len(seed) == 32
    public_key = ed25519.public_key_from_seed(seed)
    assert len(public_key) == 32
    signature = ed25519.sign(seed, b"strongroom")
    assert len(signature) == 64
    ed25519.verify(public_key, b"strongroom", signature)
    assert ed25519.generate_seed() != seed


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [(b"\x00" * 31, b"\x00" * 64), (b"\x00" * 33, b"\x00" * 64), (b"\x01" * 32, b"\x00" * 63), (b"", b"")],
)
def test_malformed_lengths_raise_invalid_signature(public_key: bytes, signature: bytes) -> None:
    with pytest.raises(InvalidSignature):
        ed25519.verify(public_key, b"m", signature)


def test_bad_seed_length() -> None:
    with pytest.raises(ValueError):
        ed25519.public_key_from_seed(b"\x00" * 31)
    with pytest.raises(ValueError):
        ed25519.sign(b"\x00" * 64, b"m")
