"""secp256k1 ECDSA: key handling, signature normalisation and verification.

:func:`normalize` is the single gate every secp256k1 signature passes through, whether it came
from the HSM or from software: it enforces low-s, finds the recovery id and verifies the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from coincurve import PrivateKey, PublicKey

from strongroom.crypto.encoding import der_to_rs, int_to_32, rs_to_der
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidSignature

N: Final[int] = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N: Final[int] = N // 2

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


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
        raise ValueError("secp256k1 secret must be 32 bytes")
    value = int.from_bytes(secret, "big")
    if not 0 < value < N:
        raise ValueError("secp256k1 secret is out of range")
    return bytes(secret)


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


def generate_secret() -> bytes:
    """Return a fresh random 32-byte secret that is a valid scalar."""
    secret: bytes = PrivateKey().secret
    return secret


def public_key_from_secret(secret: bytes, *, compressed: bool = False) -> bytes:
    """Derive the SEC1 public key for ``secret`` (uncompressed unless ``compressed``)."""
    key = PublicKey.from_valid_secret(_check_secret(secret))
    return _format(key, compressed=compressed)


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


def sign_digest(secret: bytes, digest: bytes) -> RecoverableSignature:
    """Sign a 32-byte digest in software (RFC 6979 nonces), then pass it through :func:`normalize`."""
    digest = _check_digest(digest)
    private = PrivateKey(_check_secret(secret))
    sig65: bytes = private.sign_recoverable(digest, hasher=None)
    r = int.from_bytes(sig65[:32], "big")
    s = int.from_bytes(sig65[32:64], "big")
    return normalize(digest, r, s, _format(private.public_key, compressed=True))


def _verify_der_digest(public_key: bytes, digest: bytes, der_signature: bytes) -> None:
    key = _load_public_key(public_key)
    try:
        r, s = der_to_rs(der_signature)
    except ValueError:
        raise InvalidSignature(_NOT_VERIFIED) from None
    if not (r < N and s < N):
        raise InvalidSignature(_NOT_VERIFIED)
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
