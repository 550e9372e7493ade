"""Ed25519 (RFC 8032) signing and verification via PyNaCl/libsodium."""

from __future__ import annotations

import os

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from strongroom.errors import InvalidSignature

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_NOT_VERIFIED = "ed25519 signature does not verify"


def _check_seed(seed: bytes) -> bytes:
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_SIZE:
        raise ValueError("ed25519 seed must be 32 bytes")
    return bytes(seed)


def generate_seed() -> bytes:
    """Return a fresh random 32-byte private seed."""
    return os.urandom(SEED_SIZE)


def public_key_from_seed(seed: bytes) -> bytes:
    """Return the 32-byte public key for ``seed``."""
    return bytes(SigningKey(_check_seed(seed)).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    """Return the 64-byte signature of ``message`` (deterministic, per RFC 8032)."""
    return SigningKey(_check_seed(seed)).sign(bytes(message)).signature


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`~strongroom.errors.InvalidSignature` unless ``signature`` is valid.

    Malformed key or signature lengths also raise InvalidSignature.
    """
    if (
        not isinstance(public_key, bytes | bytearray)
        or not isinstance(signature, bytes | bytearray)
        or len(public_key) != PUBLIC_KEY_SIZE
        or len(signature) != SIGNATURE_SIZE
    ):
        raise InvalidSignature(_NOT_VERIFIED)
    try:
        VerifyKey(bytes(public_key)).verify(bytes(message), bytes(signature))
    except (BadSignatureError, ValueError):
        raise InvalidSignature(_NOT_VERIFIED) from None


__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "generate_seed",
    "public_key_from_seed",
    "sign",
    "verify",
]
