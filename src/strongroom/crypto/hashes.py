"""Composite hashes used by address formats."""

from __future__ import annotations

import hashlib

from Crypto.Hash import RIPEMD160


def ripemd160(data: bytes) -> bytes:
    """RIPEMD-160 of ``data`` (pycryptodome: OpenSSL 3 may not provide it)."""
    digest: bytes = RIPEMD160.new(bytes(data)).digest()
    return digest


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256 of ``data`` (the Bitcoin/Cosmos public-key hash)."""
    return ripemd160(hashlib.sha256(data).digest())


__all__ = ["hash160", "ripemd160"]
