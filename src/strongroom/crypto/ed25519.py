"""Ed25519 (RFC 8032) signing and verification via PyNaCl/libsodium.

Signing and key derivation call libsodium directly (through PyNaCl's cffi module) rather than
`nacl.signing.SigningKey`, which keeps the seed and the 64-byte secret key as immutable `bytes`
attributes that cannot be wiped. Here the seed stays in the caller's buffer and the expanded
secret key (seed || public key) lives in a bytearray that is zeroed before returning; libsodium
wipes its own intermediates (the hashed scalar and the nonce) itself.
"""

from __future__ import annotations

from nacl._sodium import ffi, lib
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from strongroom.crypto.memory import c_buffer, random_buffer, wipe
from strongroom.errors import InvalidSignature

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_NOT_VERIFIED = "ed25519 signature does not verify"


_SECRET_KEY_SIZE = 64


def _check_seed(seed: bytes | bytearray) -> None:
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_SIZE:
        raise ValueError("ed25519 seed must be 32 bytes")


def _keypair(seed: bytes | bytearray, secret_key: bytearray) -> bytes:
    """Fill ``secret_key`` (64 bytes) from ``seed`` without copying the seed; return the public key."""
    public = ffi.new("unsigned char[]", PUBLIC_KEY_SIZE)
    seed_ptr = c_buffer(seed) if isinstance(seed, bytearray) else seed
    if lib.crypto_sign_seed_keypair(public, c_buffer(secret_key), seed_ptr) != 0:  # pragma: no cover
        raise ValueError("ed25519 key derivation failed")
    return bytes(ffi.buffer(public, PUBLIC_KEY_SIZE))


def generate_seed() -> bytearray:
    """Return a fresh random 32-byte private seed in a buffer the caller must :func:`wipe`."""
    return random_buffer(SEED_SIZE)


def public_key_from_seed(seed: bytes | bytearray) -> bytes:
    """Return the 32-byte public key for ``seed``."""
    _check_seed(seed)
    secret_key = bytearray(_SECRET_KEY_SIZE)
    try:
        return _keypair(seed, secret_key)
    finally:
        wipe(secret_key)


def sign(seed: bytes | bytearray, message: bytes) -> bytes:
    """Return the 64-byte signature of ``message`` (deterministic, per RFC 8032).

    No copy of ``seed`` is made; pass a bytearray and wipe it afterwards to leave none behind.
    """
    _check_seed(seed)
    message = bytes(message)
    secret_key = bytearray(_SECRET_KEY_SIZE)
    # Combined mode (signature || message): PyNaCl's cffi module does not expose the detached call.
    signed = ffi.new("unsigned char[]", SIGNATURE_SIZE + len(message))
    signed_len = ffi.new("unsigned long long *")
    try:
        _keypair(seed, secret_key)
        if lib.crypto_sign(signed, signed_len, message, len(message), c_buffer(secret_key)) != 0:
            raise ValueError("ed25519 signing failed")  # pragma: no cover
    finally:
        wipe(secret_key)
    return bytes(ffi.buffer(signed, SIGNATURE_SIZE))


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
