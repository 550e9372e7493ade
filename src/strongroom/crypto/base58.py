"""Base58 (Bitcoin alphabet) and Base58Check."""

from __future__ import annotations

import hashlib
from typing import Final

ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final[dict[str, int]] = {ch: i for i, ch in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Encode bytes; each leading zero byte becomes a leading ``1``."""
    stripped = data.lstrip(b"\x00")
    n_zeros = len(data) - len(stripped)
    n = int.from_bytes(stripped, "big")
    out: list[str] = []
    while n:
        n, rem = divmod(n, 58)
        out.append(ALPHABET[rem])
    return "1" * n_zeros + "".join(reversed(out))


def b58decode(s: str) -> bytes:
    """Decode a Base58 string; each leading ``1`` becomes a leading zero byte."""
    if not isinstance(s, str):
        raise ValueError("base58 value must be a string")  # noqa: TRY004
    n = 0
    for ch in s:
        digit = _INDEX.get(ch)
        if digit is None:
            raise ValueError("base58 value contains an invalid character")
        n = n * 58 + digit
    n_zeros = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * n_zeros + body


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def b58check_encode(payload: bytes) -> str:
    """Base58 of ``payload`` followed by the first 4 bytes of its double SHA-256."""
    return b58encode(payload + _checksum(payload))


def b58check_decode(s: str) -> bytes:
    """Inverse of :func:`b58check_encode`; ValueError if the checksum does not match."""
    raw = b58decode(s)
    if len(raw) < 4:
        raise ValueError("base58check value is too short")
    payload, checksum = raw[:-4], raw[-4:]
    if _checksum(payload) != checksum:
        raise ValueError("base58check checksum mismatch")
    return payload


__all__ = ["ALPHABET", "b58check_decode", "b58check_encode", "b58decode", "b58encode"]
