"""P-256 stamp verification (Turnkey API keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.crypto import p256
from strongroom.crypto.encoding import der_to_rs, rs_to_der
from strongroom.errors import InvalidSignature

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_STAMP = _load("turnkey_stamp_p256.json")
BODY: bytes = _STAMP["body"].encode("utf-8")
PUBLIC_KEY = bytes.fromhex(_STAMP["public_key"])
SIGNATURE = bytes.fromhex(_STAMP["signature_der"])


def _padded_der(r: int, s: int, pad: int) -> bytes:
    parts = b""
    for value in (r, s):
        content = b"\x00" * pad + value.to_bytes(value.bit_length() // 8 + 1, "big")
        parts += bytes([0x02, len(content)]) + content
    return bytes([0x30, len(parts)]) + parts


def test_vector_body_is_exact() -> None:
    assert BODY == b'{"payload": "hello from TKHQ"}'


def test_turnkey_stamp_vector_verifies() -> None:
    p256.verify_sha256_der(PUBLIC_KEY, BODY, SIGNATURE)


def test_turnkey_stamp_vector_uncompressed_key() -> None:
    uncompressed = p256.load_public_key(PUBLIC_KEY).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert len(uncompressed) == 65
    p256.verify_sha256_der(uncompressed, BODY, SIGNATURE)


def test_changed_body_fails() -> None:
    tampered = BODY.replace(b"TKHQ", b"TKHq")
    assert len(tampered) == len(BODY)
    with pytest.raises(InvalidSignature):
        p256.verify_sha256_der(PUBLIC_KEY, tampered, SIGNATURE)


def test_high_s_twin_verifies() -> None:
    r, s = der_to_rs(SIGNATURE)
    twin = rs_to_der(r, p256.N - s)
    assert twin != SIGNATURE
    p256.verify_sha256_der(PUBLIC_KEY, BODY, twin)


@pytest.mark.parametrize("pad", [1, 3])
def test_non_minimal_der_verifies(pad: int) -> None:
    r, s = der_to_rs(SIGNATURE)
    padded = _padded_der(r, s, pad)
    assert padded != SIGNATURE
    p256.verify_sha256_der(PUBLIC_KEY, BODY, padded)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        SIGNATURE + b"\x00",
        SIGNATURE[:-1],
        b"\x30\x06\x02\x01\x00\x02\x01\x01",
        rs_to_der(p256.N, 1),
        rs_to_der(1, p256.N + 5),
    ],
)
def test_bad_signatures_raise_invalid_signature(signature: bytes) -> None:
    with pytest.raises(InvalidSignature):
        p256.verify_sha256_der(PUBLIC_KEY, BODY, signature)


@pytest.mark.parametrize(
    "public_key",
    [b"", b"\x02" + b"\x00" * 31, b"\x05" + PUBLIC_KEY[1:], b"\x04" + b"\x00" * 64, b"\x02" + b"\xff" * 32],
)
def test_bad_public_key_raises_value_error(public_key: bytes) -> None:
    with pytest.raises(ValueError):
        p256.verify_sha256_der(public_key, BODY, SIGNATURE)


def test_public_key_cache_returns_same_object() -> None:
    assert p256.load_public_key(PUBLIC_KEY) is p256.load_public_key(bytes(bytearray(PUBLIC_KEY)))


def test_generate_sign_verify() -> None:
    private_hex, public_hex = p256.generate_private_key()
    assert len(private_hex) == 64
    assert private_hex == private_hex.lower()
    assert len(public_hex) == 66
    assert public_hex == public_hex.lower()
    assert public_hex[:2] in ("02", "03")
    signature = p256.sign_sha256_der(private_hex, b"body")
    p256.verify_sha256_der(bytes.fromhex(public_hex), b"body", signature)
    with pytest.raises(InvalidSignature):
        p256.verify_sha256_der(bytes.fromhex(public_hex), b"bodY", signature)
    # The hex key matches what cryptography derives independently.
    derived = ec.derive_private_key(int(private_hex, 16), ec.SECP256R1()).public_key()
    assert p256.load_public_key(bytes.fromhex(public_hex)) == derived


@pytest.mark.parametrize("private_hex", ["00" * 32, "ff" * 32, "abcd", "zz" * 32])
def test_sign_rejects_bad_private_keys(private_hex: str) -> None:
    with pytest.raises(ValueError):
        p256.sign_sha256_der(private_hex, b"body")
