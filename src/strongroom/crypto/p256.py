"""NIST P-256 ECDSA for Turnkey API-key stamps (SIGNATURE_SCHEME_TK_API_P256)."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from strongroom.crypto.encoding import der_to_rs, hex_to_bytes
from strongroom.errors import InvalidSignature

N: Final[int] = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_NOT_VERIFIED: Final = "p256 signature does not verify"
_CURVE: Final = ec.SECP256R1()


@lru_cache(maxsize=4096)
def _load_public_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    if not ((len(public_key) == 33 and public_key[0] in (2, 3)) or (len(public_key) == 65 and public_key[0] == 4)):
        raise ValueError("p256 public key must be a 33-byte compressed or 65-byte uncompressed point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, public_key)
    except ValueError:
        raise ValueError("p256 public key is not a valid curve point") from None


def load_public_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    """Parse (and cache) a SEC1 P-256 point; ValueError if it is not a valid point."""
    if not isinstance(public_key, bytes | bytearray):
        raise ValueError("p256 public key must be bytes")  # noqa: TRY004
    return _load_public_key(bytes(public_key))


def verify_sha256_der(public_key: bytes, message: bytes, der_signature: bytes) -> None:
    """Verify ECDSA P-256 over SHA-256(message); high-s and padded DER integers are accepted.

    ValueError if ``public_key`` is not a valid point; InvalidSignature on any signature failure.
    """
    key = load_public_key(public_key)
    try:
        r, s = der_to_rs(der_signature, below=N)
    except ValueError:
        raise InvalidSignature(_NOT_VERIFIED) from None
    try:
        key.verify(encode_dss_signature(r, s), bytes(message), ec.ECDSA(hashes.SHA256()))
    except _CryptographyInvalidSignature:
        raise InvalidSignature(_NOT_VERIFIED) from None


def generate_private_key() -> tuple[str, str]:
    """Return (private scalar as 64 lowercase hex, compressed public key as 66 lowercase hex)."""
    private = ec.generate_private_key(_CURVE)
    scalar = private.private_numbers().private_value
    public = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return f"{scalar:064x}", public.hex()


def sign_sha256_der(private_hex: str, message: bytes) -> bytes:
    """Sign SHA-256(message) with a hex P-256 scalar; returns a DER signature (as a stamper would)."""
    raw = hex_to_bytes(private_hex)
    if len(raw) != 32:
        raise ValueError("p256 private key must be 32 bytes of hex")
    scalar = int.from_bytes(raw, "big")
    if not 0 < scalar < N:
        raise ValueError("p256 private key is out of range")
    private = ec.derive_private_key(scalar, _CURVE)
    return private.sign(bytes(message), ec.ECDSA(hashes.SHA256()))


def public_key_of(private_hex: str) -> str:
    """The compressed public key (66 lowercase hex) of a hex P-256 scalar; ValueError if it is not one."""
    raw = hex_to_bytes(private_hex)
    scalar = int.from_bytes(raw, "big")
    if len(raw) != 32 or not 0 < scalar < N:
        raise ValueError("p256 private key must be 32 bytes of hex, in range")
    public = ec.derive_private_key(scalar, _CURVE).public_key()
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint).hex()


__all__ = ["N", "generate_private_key", "public_key_of", "load_public_key", "sign_sha256_der", "verify_sha256_der"]
