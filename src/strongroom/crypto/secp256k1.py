"""secp256k1 ECDSA: key handling, signature normalisation and verification.

:func:`normalize` is the single gate every secp256k1 signature passes through, whether it came
from the HSM or from software: it enforces low-s, finds the recovery id and verifies the result.

Software signing and key derivation call libsecp256k1 directly (through coincurve's cffi module)
on the caller's buffer, rather than `coincurve.PrivateKey`, which copies the secret into an
immutable `bytes` attribute (and through a Python int for its range check). No copy of the
secret is made here; the caller owns the buffer and wipes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from coincurve import PublicKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from strongroom.crypto.encoding import der_to_rs, int_to_32, rs_to_der
from strongroom.crypto.keccak import keccak256
from strongroom.crypto.memory import c_buffer, random_buffer, wipe
from strongroom.errors import InvalidSignature

N: Final[int] = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N: Final[int] = N // 2
_N_BYTES: Final = N.to_bytes(32, "big")

_NOT_VERIFIED: Final = "secp256k1 signature does not verify"
_EIP191_PREFIX: Final = b"\x19Ethereum Signed Message:\n"


@dataclass(frozen=True, slots=True)
class RecoverableSignature:
    """An ECDSA signature with its recovery id ``v`` (0 or 1, the parity of R's y)."""

    r: int
    s: int
    v: int

    def to_bytes65(self) -> bytes:
        """Serialise as r (32 bytes) || s (32 bytes) || v (1 byte)."""
        return int_to_32(self.r) + int_to_32(self.s) + bytes([self.v])


def _load_public_key(public_key: bytes) -> PublicKey:
    """Parse a SEC1 compressed (33) or uncompressed (65) point; ValueError if invalid."""
    if not isinstance(public_key, bytes | bytearray):
        raise ValueError("secp256k1 public key must be bytes")  # noqa: TRY004
    data = bytes(public_key)
    if not ((len(data) == 33 and data[0] in (2, 3)) or (len(data) == 65 and data[0] == 4)):
        raise ValueError("secp256k1 public key must be a 33-byte compressed or 65-byte uncompressed point")
    try:
        return PublicKey(data)
    except ValueError:
        raise ValueError("secp256k1 public key is not a valid curve point") from None


def _format(key: PublicKey, *, compressed: bool) -> bytes:
    out: bytes = key.format(compressed=compressed)
    return out


def _valid_secret(secret: bytes | bytearray) -> bool:
    # Compared as big-endian bytes (no int copy of the secret is made).
    return len(secret) == 32 and any(secret) and secret < _N_BYTES


def _secret_ptr(secret: bytes | bytearray) -> Any:
    """The secret as a C argument, without a copy; ValueError unless it is a valid scalar."""
    if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
        raise ValueError("secp256k1 secret must be 32 bytes")
    if not _valid_secret(secret):
        raise ValueError("secp256k1 secret is out of range")
    return c_buffer(secret, ffi) if isinstance(secret, bytearray) else secret


def _public_key_of(secret: bytes | bytearray) -> bytes:
    """The 33-byte compressed public key of a secret."""
    point = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_create(GLOBAL_CONTEXT.ctx, point, _secret_ptr(secret)):
        raise ValueError("secp256k1 secret is out of range")  # pragma: no cover - checked above
    out = ffi.new("unsigned char[]", 33)
    out_len = ffi.new("size_t *", 33)
    lib.secp256k1_ec_pubkey_serialize(GLOBAL_CONTEXT.ctx, out, out_len, point, lib.SECP256K1_EC_COMPRESSED)
    return bytes(ffi.buffer(out, 33))


def _check_digest(digest: bytes) -> bytes:
    if not isinstance(digest, bytes | bytearray) or len(digest) != 32:
        raise ValueError("digest must be exactly 32 bytes")
    return bytes(digest)


def compress(public_key: bytes) -> bytes:
    """Return the 33-byte compressed form of a valid point (given in either form)."""
    return _format(_load_public_key(public_key), compressed=True)


def decompress(public_key: bytes) -> bytes:
    """Return the 65-byte ``04 || X || Y`` form of a valid point (given in either form)."""
    return _format(_load_public_key(public_key), compressed=False)


def generate_secret() -> bytearray:
    """Return a fresh random 32-byte valid scalar in a buffer the caller must wipe."""
    while True:
        secret = random_buffer(32)
        if _valid_secret(secret):
            return secret
        wipe(secret)  # pragma: no cover - probability about 2**-128


def public_key_from_secret(secret: bytes | bytearray, *, compressed: bool = False) -> bytes:
    """Derive the SEC1 public key for ``secret`` (uncompressed unless ``compressed``)."""
    point = _public_key_of(secret)
    return point if compressed else decompress(point)


def _recover(digest: bytes, r: int, s: int, v: int) -> bytes | None:
    """Recover the compressed public key for (r, s, v), or None if recovery fails."""
    try:
        key = PublicKey.from_signature_and_message(int_to_32(r) + int_to_32(s) + bytes([v]), digest, hasher=None)
    except ValueError:
        return None
    return _format(key, compressed=True)


def _verify_low_s(key: PublicKey, digest: bytes, r: int, s: int) -> bool:
    """libsecp256k1 verification; requires 0 < r < N and 0 < s <= HALF_N."""
    ok: bool = key.verify(rs_to_der(r, s), digest, hasher=None)
    return ok


def normalize(digest: bytes, r: int, s: int, public_key: bytes) -> RecoverableSignature:
    """Turn a raw (r, s) over ``digest`` into a verified low-s signature with its recovery id.

    Raises ValueError for a malformed digest or public key, and
    :class:`~strongroom.errors.InvalidSignature` if the signature is not valid for ``public_key``.
    """
    digest = _check_digest(digest)
    key = _load_public_key(public_key)
    if not (0 < r < N and 0 < s < N):
        raise InvalidSignature(_NOT_VERIFIED)
    if s > HALF_N:
        s = N - s
    expected = _format(key, compressed=True)
    for v in (0, 1):
        if _recover(digest, r, s, v) == expected:
            if not _verify_low_s(key, digest, r, s):  # pragma: no cover - recovery implies validity
                break
            return RecoverableSignature(r=r, s=s, v=v)
    raise InvalidSignature(_NOT_VERIFIED)


def sign_digest(secret: bytes | bytearray, digest: bytes) -> RecoverableSignature:
    """Sign a 32-byte digest in software (RFC 6979 nonces), then pass it through :func:`normalize`.

    No copy of ``secret`` is made; pass a bytearray and wipe it afterwards to leave none behind.
    """
    digest = _check_digest(digest)
    public_key = _public_key_of(secret)
    signature = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not lib.secp256k1_ecdsa_sign_recoverable(
        GLOBAL_CONTEXT.ctx, signature, digest, _secret_ptr(secret), ffi.NULL, ffi.NULL
    ):
        raise ValueError("secp256k1 signing failed")  # pragma: no cover - the secret was checked
    compact = ffi.new("unsigned char[]", 64)
    recid = ffi.new("int *")
    lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(GLOBAL_CONTEXT.ctx, compact, recid, signature)
    sig64 = bytes(ffi.buffer(compact, 64))
    return normalize(digest, int.from_bytes(sig64[:32], "big"), int.from_bytes(sig64[32:], "big"), public_key)


def _verify_der_digest(public_key: bytes, digest: bytes, der_signature: bytes) -> None:
    key = _load_public_key(public_key)
    try:
        r, s = der_to_rs(der_signature, below=N)
    except ValueError:
        raise InvalidSignature(_NOT_VERIFIED) from None
    if s > HALF_N:
        s = N - s
    if not _verify_low_s(key, digest, r, s):
        raise InvalidSignature(_NOT_VERIFIED)


def verify_sha256_der(public_key: bytes, message: bytes, der_signature: bytes) -> None:
    """Verify a (leniently) DER-encoded ECDSA signature over SHA-256(message); high-s is accepted.

    ValueError if ``public_key`` is not a valid point; InvalidSignature on any signature failure.
    """
    _verify_der_digest(public_key, hashlib.sha256(message).digest(), der_signature)


def eip191_digest(message: bytes) -> bytes:
    """Keccak-256 of the EIP-191 ``personal_sign`` envelope around ``message``."""
    return keccak256(_EIP191_PREFIX + str(len(message)).encode("ascii") + message)


def verify_eip191_der(public_key: bytes, message: bytes, der_signature: bytes) -> None:
    """Like :func:`verify_sha256_der`, but over the EIP-191 personal-message digest."""
    _verify_der_digest(public_key, eip191_digest(message), der_signature)


__all__ = [
    "HALF_N",
    "N",
    "RecoverableSignature",
    "compress",
    "decompress",
    "eip191_digest",
    "generate_secret",
    "normalize",
    "public_key_from_secret",
    "sign_digest",
    "verify_eip191_der",
    "verify_sha256_der",
]
