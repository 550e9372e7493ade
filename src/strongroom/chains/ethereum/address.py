"""Ethereum addresses: derivation from a secp256k1 key and EIP-55 mixed-case checksums."""

from __future__ import annotations

import re
from typing import Final

from strongroom.crypto.keccak import keccak256
from strongroom.crypto.secp256k1 import decompress

_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def checksum_address(addr20: bytes) -> str:
    """EIP-55 checksummed ``0x`` address for 20 raw bytes."""
    if not isinstance(addr20, bytes | bytearray) or len(addr20) != 20:
        raise ValueError("ethereum address must be 20 bytes")
    lower = bytes(addr20).hex()
    hashed = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(ch.upper() if ch.isalpha() and int(hashed[i], 16) >= 8 else ch for i, ch in enumerate(lower))


def address_from_public_key(public_key: bytes) -> str:
    """Checksummed address of a secp256k1 public key (compressed or uncompressed SEC1)."""
    point = decompress(public_key)
    return checksum_address(keccak256(point[1:])[-20:])


def to_checksum(address: str) -> str:
    """Re-case a ``0x`` + 40-hex address (any case) into its EIP-55 form."""
    if not isinstance(address, str) or _ADDRESS_RE.fullmatch(address) is None:
        raise ValueError("ethereum address must be 0x followed by 40 hex characters")
    return checksum_address(bytes.fromhex(address[2:]))


def is_address(s: str) -> bool:
    """True for ``0x`` + 40 hex; mixed-case input must carry a valid EIP-55 checksum."""
    if not isinstance(s, str) or _ADDRESS_RE.fullmatch(s) is None:
        return False
    body = s[2:]
    if body in (body.lower(), body.upper()):
        return True
    return to_checksum(s) == s


__all__ = ["address_from_public_key", "checksum_address", "is_address", "to_checksum"]
