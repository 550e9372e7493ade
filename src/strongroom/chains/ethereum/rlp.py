"""Recursive Length Prefix (RLP) encoding, with strict canonical decoding.

An RLP item is a byte string or a list of items. Decoding accepts only the one canonical
encoding of each item: a single byte below 0x80 must stand for itself, lengths use the short
form whenever it fits and carry no leading zero bytes, list payloads are filled exactly, and
nothing may follow the top-level item. Integers (:func:`decode_uint`) must be minimal big-endian
byte strings (no leading zero bytes; zero is the empty string).

Decoding errors are :class:`RlpError`, a subclass of :class:`~strongroom.errors.InvalidRequest`
whose message names the defect (callers usually prefix it with what they were decoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeAlias

from strongroom.errors import InvalidRequest

RlpItem: TypeAlias = "bytes | list[RlpItem]"
"""A decoded item: bytes, or a list of items."""

RlpEncodable: TypeAlias = "bytes | bytearray | Sequence[RlpEncodable]"
"""What :func:`encode` accepts: bytes-like strings and (nested) sequences of them."""

MAX_INPUT_BYTES: Final = 1 << 20
"""Default cap on the size of the encoded input to :func:`decode`."""

MAX_DEPTH: Final = 32
"""Default cap on list nesting accepted by :func:`decode`."""

_SHORT_LIMIT: Final = 56


class RlpError(InvalidRequest):
    """The input is not canonical RLP, or a decoded item has the wrong shape."""


def _length_prefix(length: int, offset: int) -> bytes:
    if length < _SHORT_LIMIT:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded


def encode(item: RlpEncodable) -> bytes:
    """Encode a byte string or a (nested) sequence of byte strings."""
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
        if len(data) == 1 and data[0] < 0x80:
            return data
        return _length_prefix(len(data), 0x80) + data
    if isinstance(item, str | memoryview):
        raise TypeError("rlp can only encode bytes and sequences of items")
    payload = b"".join(encode(child) for child in item)
    return _length_prefix(len(payload), 0xC0) + payload


def encode_uint(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (zero is ``b""``), ready for :func:`encode`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("rlp integers must be non-negative ints")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _read_length(data: bytes, pos: int, n_bytes: int, end: int) -> int:
    if pos + n_bytes > end:
        raise RlpError("length field runs past the end of the input")
    raw = data[pos : pos + n_bytes]
    if raw[0] == 0:
        raise RlpError("length field has leading zero bytes")
    length = int.from_bytes(raw, "big")
    if length < _SHORT_LIMIT:
        raise RlpError("long-form length used for a payload shorter than 56 bytes")
    return length


def _decode_at(data: bytes, pos: int, end: int, depth: int, max_depth: int) -> tuple[RlpItem, int]:
    """Decode one item starting at ``pos`` within ``data[:end]``; return it and the next position."""
    if pos >= end:
        raise RlpError("unexpected end of input")
    prefix = data[pos]
    if prefix < 0x80:
        return data[pos : pos + 1], pos + 1
    if prefix <= 0xB7:
        length = prefix - 0x80
        start = pos + 1
        if start + length > end:
            raise RlpError("string runs past the end of its container")
        if length == 1 and data[start] < 0x80:
            raise RlpError("single byte below 0x80 must be encoded as itself")
        return data[start : start + length], start + length
    if prefix <= 0xBF:
        n_bytes = prefix - 0xB7
        length = _read_length(data, pos + 1, n_bytes, end)
        start = pos + 1 + n_bytes
        if start + length > end:
            raise RlpError("string runs past the end of its container")
        return data[start : start + length], start + length
    if prefix <= 0xF7:
        length = prefix - 0xC0
        start = pos + 1
    else:
        n_bytes = prefix - 0xF7
        length = _read_length(data, pos + 1, n_bytes, end)
        start = pos + 1 + n_bytes
    stop = start + length
    if stop > end:
        raise RlpError("list runs past the end of its container")
    if depth >= max_depth:
        raise RlpError(f"lists are nested deeper than {max_depth} levels")
    items: list[RlpItem] = []
    cursor = start
    while cursor < stop:
        child, cursor = _decode_at(data, cursor, stop, depth + 1, max_depth)
        items.append(child)
    return items, stop


def decode(data: bytes, *, max_size: int = MAX_INPUT_BYTES, max_depth: int = MAX_DEPTH) -> RlpItem:
    """Decode exactly one canonical RLP item that spans all of ``data``.

    Raises :class:`RlpError` if ``data`` is larger than ``max_size``, nests lists deeper than
    ``max_depth``, is not canonical, or has trailing bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("rlp input must be bytes")
    raw = bytes(data)
    if len(raw) > max_size:
        raise RlpError(f"input is {len(raw)} bytes, more than the {max_size}-byte limit")
    if not raw:
        raise RlpError("input is empty")
    item, pos = _decode_at(raw, 0, len(raw), 0, max_depth)
    if pos != len(raw):
        raise RlpError(f"{len(raw) - pos} trailing bytes after the item")
    return item


def decode_uint(item: RlpItem, what: str, *, max_bits: int = 256) -> int:
    """Read a canonical RLP integer (no leading zero bytes) below ``2**max_bits``."""
    if not isinstance(item, bytes):
        raise RlpError(f"`{what}` must be an integer, not a list")
    if item[:1] == b"\x00":
        raise RlpError(f"`{what}` has leading zero bytes")
    value = int.from_bytes(item, "big")
    if value >> max_bits:
        raise RlpError(f"`{what}` does not fit in {max_bits} bits")
    return value


def decode_bytes(item: RlpItem, what: str, *, length: int | None = None) -> bytes:
    """Read a byte string item, optionally of an exact ``length``."""
    if not isinstance(item, bytes):
        raise RlpError(f"`{what}` must be a byte string, not a list")
    if length is not None and len(item) != length:
        raise RlpError(f"`{what}` must be {length} bytes, got {len(item)}")
    return item


def decode_list(item: RlpItem, what: str) -> list[RlpItem]:
    """Read a list item."""
    if not isinstance(item, list):
        raise RlpError(f"`{what}` must be a list, not a byte string")
    return item


__all__ = [
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "RlpEncodable",
    "RlpError",
    "RlpItem",
    "decode",
    "decode_bytes",
    "decode_list",
    "decode_uint",
    "encode",
    "encode_uint",
]
