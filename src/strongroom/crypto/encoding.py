"""Byte-level encodings: hex, base64url, fixed-width integers and ECDSA DER signatures.

The DER parser is deliberately lenient about one thing only: INTEGER contents may carry redundant
leading zero bytes (some JavaScript stampers emit them). Everything else must be well formed.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

_HEX_RE: Final = re.compile(r"[0-9a-fA-F]*")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*")

_TAG_SEQUENCE: Final = 0x30
_TAG_INTEGER: Final = 0x02


def hex_to_bytes(value: str) -> bytes:
    """Decode hex with an optional ``0x``/``0X`` prefix, in either case."""
    if not isinstance(value, str):
        raise ValueError("hex value must be a string")  # noqa: TRY004
    body = value[2:] if value[:2] in ("0x", "0X") else value
    if _HEX_RE.fullmatch(body) is None:
        raise ValueError("hex value contains non-hex characters")
    if len(body) % 2:
        raise ValueError("hex value has an odd number of digits")
    return bytes.fromhex(body)


def b64url_decode(value: str) -> bytes:
    """Decode base64url (RFC 4648 §5), with or without ``=`` padding."""
    if not isinstance(value, str):
        raise ValueError("base64url value must be a string")  # noqa: TRY004
    body = value.rstrip("=")
    padding = len(value) - len(body)
    if _B64URL_RE.fullmatch(body) is None:
        raise ValueError("base64url value contains invalid characters")
    if len(body) % 4 == 1:
        raise ValueError("base64url value has an invalid length")
    expected_padding = -len(body) % 4
    if padding not in (0, expected_padding):
        raise ValueError("base64url value has invalid padding")
    try:
        return base64.b64decode(body + "=" * expected_padding, altchars=b"-_", validate=True)
    except binascii.Error as exc:  # pragma: no cover - the checks above are exhaustive
        raise ValueError("base64url value is invalid") from exc


def b64url_encode(data: bytes) -> str:
    """Encode as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_to_32(n: int) -> bytes:
    """Encode a non-negative integer below 2**256 as 32 big-endian bytes."""
    if n < 0 or n >= 1 << 256:
        raise ValueError("integer does not fit in 32 unsigned bytes")
    return n.to_bytes(32, "big")


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    """Read a DER length at ``pos``; return (length, position after it)."""
    if pos >= len(data):
        raise ValueError("der signature is truncated")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n_bytes = first & 0x7F
    if n_bytes == 0:
        raise ValueError("der signature uses an indefinite length")
    if n_bytes > 2:
        raise ValueError("der signature has an oversized length field")
    if pos + n_bytes > len(data):
        raise ValueError("der signature is truncated")
    raw = data[pos : pos + n_bytes]
    if raw[0] == 0:
        raise ValueError("der signature has a non-minimal length field")
    length = int.from_bytes(raw, "big")
    if length < 0x80:
        raise ValueError("der signature has a non-minimal length field")
    return length, pos + n_bytes


def _read_integer(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a positive DER INTEGER (leading zero padding tolerated) within ``data[pos:end]``."""
    if pos >= end:
        raise ValueError("der signature is truncated")
    if data[pos] != _TAG_INTEGER:
        raise ValueError("der signature integer has the wrong tag")
    length, pos = _read_length(data, pos + 1)
    if length == 0:
        raise ValueError("der signature integer is empty")
    if pos + length > end:
        raise ValueError("der signature integer overruns its container")
    content = data[pos : pos + length]
    if content[0] & 0x80:
        raise ValueError("der signature integer is negative")
    value = int.from_bytes(content, "big")
    if value == 0:
        raise ValueError("der signature integer is zero")
    return value, pos + length


def der_to_rs(der: bytes, below: int | None = None) -> tuple[int, int]:
    """Parse an ECDSA signature ``SEQUENCE { INTEGER r, INTEGER s }``.

    Accepts INTEGERs with redundant leading zero bytes; rejects anything else that is not DER:
    wrong tags, bad or overrunning lengths, trailing bytes, negative or zero values, and with
    `below` (the curve's group order) values that are not below it.
    """
    if not isinstance(der, bytes | bytearray | memoryview):
        raise ValueError("der signature must be bytes")  # noqa: TRY004
    data = bytes(der)
    if not data or data[0] != _TAG_SEQUENCE:
        raise ValueError("der signature is not a sequence")
    seq_len, pos = _read_length(data, 1)
    end = pos + seq_len
    if end > len(data):
        raise ValueError("der signature sequence overruns the input")
    if end != len(data):
        raise ValueError("der signature has trailing bytes")
    r, pos = _read_integer(data, pos, end)
    s, pos = _read_integer(data, pos, end)
    if pos != end:
        raise ValueError("der signature sequence has extra content")
    if below is not None and not (r < below and s < below):
        raise ValueError("der signature value is not below the group order")
    return r, s


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_integer(n: int) -> bytes:
    # bit_length // 8 + 1 bytes leaves room for a 0x00 sign byte exactly when the top bit is set.
    content = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return bytes([_TAG_INTEGER]) + _der_length(len(content)) + content


def rs_to_der(r: int, s: int) -> bytes:
    """Encode (r, s) as a strict, minimal DER ECDSA signature."""
    if r <= 0 or s <= 0:
        raise ValueError("signature components must be positive")
    body = _der_integer(r) + _der_integer(s)
    return bytes([_TAG_SEQUENCE]) + _der_length(len(body)) + body


__all__ = ["b64url_decode", "b64url_encode", "der_to_rs", "hex_to_bytes", "int_to_32", "rs_to_der"]
