"""Keccak-256 as used by Ethereum (the pre-standard padding, not NIST SHA3-256)."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of ``data``."""
    digest: bytes = _keccak.new(digest_bits=256, data=bytes(data)).digest()
    return digest


__all__ = ["keccak256"]
