"""Lenient ECDSA DER parsing and strict DER encoding."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto.encoding import der_to_rs, rs_to_der

_R = 0x3623DEFD618EB3E219970496407EBE92447317DAD75E412BD4A6267C3B5E2223
_S_HIGH_BIT = 0x8245B740848A72D08B60D6C84F339737B63DB3BCBADB3BD0DCB1BFB865715D8B


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes([tag, len(content)]) + content


def _int(content: bytes) -> bytes:
    return _tlv(0x02, content)


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


_ONE = _int(b"\x01")


@given(st.integers(min_value=1, max_value=2**256 - 1), st.integers(min_value=1, max_value=2**256 - 1))
def test_rs_to_der_matches_cryptography_and_round_trips(r: int, s: int) -> None:
    der = rs_to_der(r, s)
    assert der == encode_dss_signature(r, s)
    assert der_to_rs(der) == (r, s)
    assert decode_dss_signature(der) == (r, s)


def test_rs_to_der_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        rs_to_der(0, 1)
    with pytest.raises(ValueError):
        rs_to_der(1, -1)


def test_rs_to_der_adds_sign_byte() -> None:
    assert rs_to_der(0x80, 0x7F) == bytes.fromhex("3007020200800201" + "7f")


@pytest.mark.parametrize("pad", [1, 2, 5])
def test_non_minimal_integers_accepted(pad: int) -> None:
    zeros = b"\x00" * pad
    der = _seq(_int(zeros + _R.to_bytes(32, "big")), _int(zeros + _S_HIGH_BIT.to_bytes(33, "big")))
    assert der_to_rs(der) == (_R, _S_HIGH_BIT)


def test_padded_small_integers_accepted() -> None:
    # @turnkey/wallet-stamper style: fixed 33-byte integers even when a shorter form exists.
    der = _seq(_int(b"\x00" * 32 + b"\x05"), _int(b"\x00" * 32 + b"\x07"))
    assert der_to_rs(der) == (5, 7)


def test_long_form_sequence_length_accepted() -> None:
    r_part = _int(b"\x00" * 70 + b"\x01")
    s_part = _int(b"\x00" * 70 + b"\x02")
    body = r_part + s_part
    der = b"\x30\x81" + bytes([len(body)]) + body
    assert der_to_rs(der) == (1, 2)


_VALID = rs_to_der(_R, _S_HIGH_BIT)

_INVALID: dict[str, bytes] = {
    "empty": b"",
    "only tag": b"\x30",
    "trailing zero byte": _VALID + b"\x00",
    "trailing garbage": _VALID + b"\xde\xad",
    "truncated by one": _VALID[:-1],
    "truncated inside r": _VALID[:10],
    "wrong sequence tag (SET)": b"\x31" + _VALID[1:],
    "wrong integer tag (BIT STRING)": _seq(_tlv(0x03, b"\x01"), _ONE),
    "wrong second tag (OCTET STRING)": _seq(_ONE, _tlv(0x04, b"\x01")),
    "zero r": _seq(_int(b"\x00"), _ONE),
    "zero s padded": _seq(_ONE, _int(b"\x00\x00\x00")),
    "negative r": _seq(_int(b"\x80"), _ONE),
    "negative s": _seq(_ONE, _int(b"\xff\x01")),
    "empty integer": _seq(_int(b""), _ONE),
    "only one integer": _seq(_ONE),
    "three integers": _seq(_ONE, _ONE, _ONE),
    "sequence length overruns": b"\x30\x7f" + _ONE + _ONE,
    "sequence length too short": b"\x30\x03" + _ONE + _ONE,
    "integer length overruns sequence": b"\x30\x06\x02\x05\x01\x02\x01\x01",
    "indefinite length": b"\x30\x80" + _ONE + _ONE + b"\x00\x00",
    "four-byte long-form length": b"\x30\x84\x00\x00\x00\x06" + _ONE + _ONE,
    "non-minimal long-form length": b"\x30\x81\x06" + _ONE + _ONE,
    "long-form length with leading zero": b"\x30\x82\x00\x06" + _ONE + _ONE,
    "long-form length truncated": b"\x30\x82\x01",
    "integer indefinite length": b"\x30\x06\x02\x80\x01\x02\x01\x01",
    "nested sequence": _seq(_seq(_ONE, _ONE)),
}


@pytest.mark.parametrize("der", list(_INVALID.values()), ids=list(_INVALID))
def test_invalid_encodings_rejected(der: bytes) -> None:
    with pytest.raises(ValueError):
        der_to_rs(der)


def test_non_bytes_rejected() -> None:
    with pytest.raises(ValueError):
        der_to_rs("3006020101020101")  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        r, s = der_to_rs(data)
    except ValueError:
        return
    assert r > 0
    assert s > 0
