"""Differential tests: ECDSA DER signatures (crypto/encoding.py ``der_to_rs``/``rs_to_der``) against
``cryptography``'s ``decode_dss_signature``/``encode_dss_signature`` (rust-asn1, strict DER).

Encoding must match byte for byte for every positive (r, s). Decoding is compared on valid
signatures, on signatures with random edits, and on random bytes.

Allow-listed disagreements:

- ``padded-integer`` (only Strongroom accepts): an INTEGER with redundant leading zero bytes
  (``02 02 00 01``). Strict DER forbids it and cryptography refuses; Strongroom tolerates it on
  purpose because some JavaScript stampers emit it (see the module docstring of
  ``crypto/encoding.py``). The value read is unambiguous, so we check it equals the value of the
  minimally re-encoded signature, which cryptography does accept.
- ``zero`` (only cryptography accepts): r or s equal to 0. It is valid DER, but never a valid
  ECDSA signature component, and Strongroom refuses it at parse time.

Everything else (wrong tags, indefinite or non-minimal lengths, overruns, trailing bytes,
negative integers) must be refused by both.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from diffkit import Outcome, mutated, run
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.encoding import der_to_rs, rs_to_der

components = st.one_of(
    st.integers(1, 2**256 - 1),
    st.integers(1, 2**16),
    st.integers(2**255, 2**256 - 1),  # top bit set: needs the 0x00 sign byte
    st.integers(1, 2**1100),  # long enough for a two-byte DER length
)


def _integers(der: bytes) -> list[bytes] | None:
    """The INTEGER contents inside a short-form SEQUENCE, or None if the layout is anything else."""
    if len(der) < 2 or der[0] != 0x30 or der[1] >= 0x80 or der[1] != len(der) - 2:
        return None
    out, pos = [], 2
    while pos < len(der):
        if pos + 2 > len(der) or der[pos] != 0x02 or der[pos + 1] >= 0x80:
            return None
        end = pos + 2 + der[pos + 1]
        if end > len(der):
            return None
        out.append(der[pos + 2 : end])
        pos = end
    return out if len(out) == 2 else None


def _allowed(ours: Outcome, ref: Outcome, der: bytes) -> str | None:
    if ours.ok and not ref.ok:
        ints = _integers(der)
        padded = ints is not None and any(len(c) > 1 and c[0] == 0 and c[1] < 0x80 for c in ints)
        if padded:
            # The lenient read must be the value of the minimal encoding, which cryptography accepts.
            assert decode_dss_signature(rs_to_der(*ours.value)) == ours.value
            return "padded-integer"
    if ref.ok and not ours.ok and 0 in ref.value:
        return "zero"
    return None


def _compare(der: bytes) -> None:
    ours = run(lambda: der_to_rs(der))
    ref = run(lambda: decode_dss_signature(der))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, der.hex()
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "cryptography"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed(ours, ref, der) is not None, f"only {who} refuses {der.hex()}: {reason!r}"


@settings(max_examples=300, deadline=None)
@given(components, components)
def test_encoding_matches_cryptography(r: int, s: int) -> None:
    der = rs_to_der(r, s)
    assert der == encode_dss_signature(r, s)
    assert der_to_rs(der) == decode_dss_signature(der) == (r, s)


@settings(max_examples=600, deadline=None)
@given(st.tuples(components, components).map(lambda rs: encode_dss_signature(*rs)).flatmap(mutated))
def test_mutated_signatures_agree(der: bytes) -> None:
    _compare(der)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_agree(der: bytes) -> None:
    _compare(der)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=12).map(lambda b: b"\x30" + bytes([len(b) + 6]) + b"\x02\x01\x01\x02\x01\x01" + b))
def test_sequence_with_extra_content_agrees(der: bytes) -> None:
    _compare(der)


@settings(max_examples=200, deadline=None)
@given(components, components, st.integers(0, 3), st.integers(0, 3))
def test_allow_listed_padded_integers(r: int, s: int, pad_r: int, pad_s: int) -> None:
    # Allow-list `padded-integer`: Strongroom reads redundant leading zeros, cryptography refuses them.
    def integer(n: int, pad: int) -> bytes:
        content = b"\x00" * pad + n.to_bytes(n.bit_length() // 8 + 1, "big")
        return b"\x02" + _len(len(content)) + content

    body = integer(r, pad_r) + integer(s, pad_s)
    der = b"\x30" + _len(len(body)) + body
    assert der_to_rs(der) == (r, s)
    ref = run(lambda: decode_dss_signature(der))
    assert ref.ok == (pad_r == pad_s == 0)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


@pytest.mark.parametrize("hex_", ["3006020100020101", "3006020101020100"])
def test_allow_listed_zero_component(hex_: str) -> None:
    # Allow-list `zero`: valid DER, never a valid ECDSA component; only cryptography accepts.
    der = bytes.fromhex(hex_)
    ours, ref = run(lambda: der_to_rs(der)), run(lambda: decode_dss_signature(der))
    assert ref.ok
    assert not ours.ok
    assert _allowed(ours, ref, der) == "zero"


@pytest.mark.parametrize(
    "hex_",
    [
        "30060201ff020101",  # negative r
        "3080020101020101",  # indefinite length
        "308106020101020101",  # non-minimal long-form length
        "300602010102010100",  # trailing byte
        "3106020101020101",  # wrong outer tag
        "3006030101020101",  # wrong integer tag
        "30050201010201",  # truncated
        "3000",  # empty sequence
        "",
    ],
)
def test_malformed_refused_by_both(hex_: str) -> None:
    der = bytes.fromhex(hex_)
    assert not run(lambda: der_to_rs(der)).ok
    assert not run(lambda: decode_dss_signature(der)).ok
