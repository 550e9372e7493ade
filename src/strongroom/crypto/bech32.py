"""Bech32 and Bech32m (BIP-173 / BIP-350), plus SegWit address encoding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Final

CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX: Final[dict[str, int]] = {ch: i for i, ch in enumerate(CHARSET)}
_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_MAX_LENGTH: Final = 90


class Encoding(Enum):
    """Which checksum constant a string uses."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _create_checksum(hrp: str, data: Sequence[int], spec: Encoding) -> list[int]:
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ spec.value
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def _check_hrp(hrp: str) -> None:
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32 human-readable part is invalid")
    if hrp.lower() != hrp:
        raise ValueError("bech32 human-readable part must be lowercase")


def bech32_encode(hrp: str, data: Sequence[int], spec: Encoding = Encoding.BECH32) -> str:
    """Encode 5-bit ``data`` under ``hrp`` with a checksum of kind ``spec``."""
    _check_hrp(hrp)
    if any(not 0 <= d < 32 for d in data):
        raise ValueError("bech32 data values must be 5-bit")
    combined = [*data, *_create_checksum(hrp, data, spec)]
    result = hrp + "1" + "".join(CHARSET[d] for d in combined)
    if len(result) > _MAX_LENGTH:
        raise ValueError("bech32 string would be too long")
    return result


def bech32_decode(value: str) -> tuple[str, list[int], Encoding]:
    """Decode a Bech32/Bech32m string into (hrp, 5-bit data without checksum, encoding)."""
    if any(not 33 <= ord(c) <= 126 for c in value):
        raise ValueError("bech32 string contains invalid characters")
    if value.lower() != value and value.upper() != value:
        raise ValueError("bech32 string mixes upper and lower case")
    value = value.lower()
    if len(value) > _MAX_LENGTH:
        raise ValueError("bech32 string is too long")
    sep = value.rfind("1")
    if sep < 1 or sep + 7 > len(value):
        raise ValueError("bech32 separator is misplaced")
    hrp = value[:sep]
    data: list[int] = []
    for ch in value[sep + 1 :]:
        digit = _CHARSET_INDEX.get(ch)
        if digit is None:
            raise ValueError("bech32 data contains an invalid character")
        data.append(digit)
    const = _polymod([*_hrp_expand(hrp), *data])
    for spec in Encoding:
        if const == spec.value:
            return hrp, data[:-6], spec
    raise ValueError("bech32 checksum is invalid")


def convertbits(data: Iterable[int], frombits: int, tobits: int, *, pad: bool = True) -> list[int]:
    """Regroup a sequence of ``frombits``-bit values into ``tobits``-bit values."""
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    max_acc = (1 << (frombits + tobits - 1)) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("value out of range for bit conversion")
        acc = ((acc << frombits) | value) & max_acc
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding in bit conversion")
    return out


def encode_bytes(hrp: str, payload: bytes) -> str:
    """Bech32 (original constant) of 8-bit ``payload``, as used by Cosmos addresses."""
    return bech32_encode(hrp, convertbits(payload, 8, 5), Encoding.BECH32)


def decode_bytes(hrp: str, value: str) -> bytes:
    """Inverse of :func:`encode_bytes`; ValueError on a wrong hrp or checksum."""
    got_hrp, data, spec = bech32_decode(value)
    if got_hrp != hrp or spec is not Encoding.BECH32:
        raise ValueError("bech32 string has the wrong prefix or checksum kind")
    return bytes(convertbits(data, 5, 8, pad=False))


def encode_segwit(hrp: str, witness_version: int, program: bytes) -> str:
    """SegWit address (BIP-173 for v0, BIP-350 Bech32m for v1+)."""
    if not 0 <= witness_version <= 16:
        raise ValueError("witness version out of range")
    if not 2 <= len(program) <= 40:
        raise ValueError("witness program has an invalid length")
    if witness_version == 0 and len(program) not in (20, 32):
        raise ValueError("v0 witness program must be 20 or 32 bytes")
    spec = Encoding.BECH32 if witness_version == 0 else Encoding.BECH32M
    return bech32_encode(hrp, [witness_version, *convertbits(program, 8, 5)], spec)


def decode_segwit(hrp: str, address: str) -> tuple[int, bytes]:
    """Decode a SegWit address into (witness version, program); ValueError if invalid."""
    got_hrp, data, spec = bech32_decode(address)
    if got_hrp != hrp or not data:
        raise ValueError("segwit address has the wrong prefix or no data")
    version = data[0]
    if version > 16:
        raise ValueError("witness version out of range")
    expected = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    if spec is not expected:
        raise ValueError("segwit address uses the wrong checksum kind")
    program = bytes(convertbits(data[1:], 5, 8, pad=False))
    if not 2 <= len(program) <= 40:
        raise ValueError("witness program has an invalid length")
    if version == 0 and len(program) not in (20, 32):
        raise ValueError("v0 witness program must be 20 or 32 bytes")
    return version, program


__all__ = [
    "CHARSET",
    "Encoding",
    "bech32_decode",
    "bech32_encode",
    "convertbits",
    "decode_bytes",
    "decode_segwit",
    "encode_bytes",
    "encode_segwit",
]
