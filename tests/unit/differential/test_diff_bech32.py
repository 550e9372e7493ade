"""Differential tests: Bech32 / Bech32m and SegWit addresses (crypto/bech32.py) against bip-utils.

bip-utils' ``Bech32Encoder``/``Bech32Decoder`` (plain Bech32 over 8-bit data, as Cosmos uses)
and ``SegwitBech32Encoder``/``SegwitBech32Decoder`` (BIP-173 v0 / BIP-350 v1+) are compared with
``encode_bytes``/``decode_bytes`` and ``encode_segwit``/``decode_segwit`` on generated valid
strings, on strings with random character edits, and on the published BIP-173/BIP-350 valid
strings in tests/vectors/bech32.json (checksums cross-checked with bip-utils' polymod).

Allow-listed disagreements:

- ``too-long`` (only bip-utils accepts): strings over 90 characters. BIP-173 caps a Bech32
  string at 90; bip-utils does not check the length at all. Strongroom enforces the cap when
  decoding and when encoding.
- ``empty-data`` (only Strongroom accepts): a plain Bech32 string whose data part is only the
  6-character checksum (``a12uel5l``). BIP-173 lists such strings as valid and Strongroom
  decodes them to ``b""``; bip-utils demands at least one data character. (SegWit decoding
  needs the version character, and both refuse there.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bip_utils import Bech32Decoder, Bech32Encoder, SegwitBech32Decoder, SegwitBech32Encoder
from bip_utils.bech32.bech32 import Bech32Encodings, Bech32Utils
from diffkit import Outcome, run
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto import bech32

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "bech32.json").read_text())
MAX_LENGTH = 90

hrps = st.one_of(
    st.sampled_from(["bc", "tb", "cosmos", "a", "?"]),
    st.text(alphabet=[chr(c) for c in range(33, 127) if not chr(c).isupper()], min_size=1, max_size=12),
)
witness = st.one_of(
    st.tuples(st.just(0), st.one_of(st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32))),
    st.tuples(st.integers(1, 16), st.binary(min_size=2, max_size=40)),
)


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    """``text`` with one to three character edits: replace, case flip, insert, delete, truncate."""
    chars = list(text)
    pool = bech32.CHARSET + "1bBqQpP0oIi \u00e9"
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "case", "insert", "delete", "truncate"]))
        if not chars:
            op = "insert"
        if op == "replace":
            chars[draw(st.integers(0, len(chars) - 1))] = draw(st.sampled_from(pool))
        elif op == "case":
            i = draw(st.integers(0, len(chars) - 1))
            chars[i] = chars[i].swapcase()
        elif op == "insert":
            chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(pool)))
        elif op == "delete":
            del chars[draw(st.integers(0, len(chars) - 1))]
        else:
            del chars[draw(st.integers(0, len(chars))) :]
    return "".join(chars)


def _data_part_empty(text: str) -> bool:
    return len(text) - text.rfind("1") - 1 == 6


def _allowed(ours: Outcome, ref: Outcome, text: str) -> str | None:
    if ref.ok and not ours.ok and len(text) > MAX_LENGTH:
        return "too-long"
    if ours.ok and not ref.ok and _data_part_empty(text) and ours.value in (b"", ()):
        return "empty-data"
    return None


def _compare(ours: Outcome, ref: Outcome, text: str) -> None:
    if ours.ok and ref.ok:
        assert ours.value == ref.value, text
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "bip-utils"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed(ours, ref, text) is not None, f"only {who} refuses {text!r}: {reason!r}"


# --- plain Bech32 over bytes (Cosmos) ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(hrps, st.binary(max_size=50))
def test_encode_bytes_matches(hrp: str, payload: bytes) -> None:
    theirs = Bech32Encoder.Encode(hrp, payload)
    ours = run(lambda: bech32.encode_bytes(hrp, payload))
    if len(theirs) > MAX_LENGTH:
        assert not ours.ok  # allow-list `too-long`: we refuse to produce what BIP-173 forbids
    else:
        assert ours.value == theirs


@settings(max_examples=500, deadline=None)
@given(
    st.tuples(hrps, st.binary(max_size=40))
    .map(lambda hp: (hp[0], Bech32Encoder.Encode(*hp)))
    .flatmap(lambda ht: st.tuples(st.just(ht[0]), st.one_of(st.just(ht[1]), st.just(ht[1].upper()), edited(ht[1]))))
)
def test_decode_bytes_agrees(case: tuple[str, str]) -> None:
    hrp, text = case
    _compare(run(lambda: bech32.decode_bytes(hrp, text)), run(lambda: Bech32Decoder.Decode(hrp, text)), text)


@pytest.mark.parametrize("text", VECTORS["valid_bech32"] + VECTORS["valid_bech32m"])
def test_published_vectors_checksums_agree(text: str) -> None:
    hrp, data, spec = bech32.bech32_decode(text)
    expected = Bech32Encodings.BECH32 if text in VECTORS["valid_bech32"] else Bech32Encodings.BECH32M
    assert spec.name == expected.name
    checksum = bech32.bech32_encode(hrp, data, spec)[-6:]
    full = [*data, *(bech32.CHARSET.index(c) for c in checksum)]
    assert Bech32Utils.VerifyChecksum(hrp, full, expected)
    assert text.lower().endswith(checksum)


@pytest.mark.parametrize("text", [t for t in VECTORS["valid_bech32"] if _data_part_empty(t)])
def test_allow_listed_empty_data(text: str) -> None:
    # Allow-list `empty-data`: BIP-173 valid strings with no data characters.
    hrp = text[: text.rfind("1")].lower()
    ours, ref = run(lambda: bech32.decode_bytes(hrp, text)), run(lambda: Bech32Decoder.Decode(hrp, text))
    assert ours.ok
    assert ours.value == b""
    assert not ref.ok
    assert _allowed(ours, ref, text) == "empty-data"


def test_allow_listed_too_long() -> None:
    # Allow-list `too-long`: 91 characters; BIP-173's cap is 90.
    text = Bech32Encoder.Encode("a" * 20, bytes(40))
    assert len(text) > MAX_LENGTH
    ours, ref = run(lambda: bech32.decode_bytes("a" * 20, text)), run(lambda: Bech32Decoder.Decode("a" * 20, text))
    assert ref.ok
    assert not ours.ok
    assert _allowed(ours, ref, text) == "too-long"


# --- SegWit addresses ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["bc", "tb", "bcrt"]), witness)
def test_encode_segwit_matches(hrp: str, prog: tuple[int, bytes]) -> None:
    version, program = prog
    assert bech32.encode_segwit(hrp, version, program) == SegwitBech32Encoder.Encode(hrp, version, program)


@settings(max_examples=600, deadline=None)
@given(
    st.tuples(st.sampled_from(["bc", "tb"]), witness)
    .map(lambda hw: (hw[0], SegwitBech32Encoder.Encode(hw[0], *hw[1])))
    .flatmap(lambda ht: st.tuples(st.just(ht[0]), st.one_of(st.just(ht[1].upper()), edited(ht[1]))))
)
def test_decode_segwit_agrees(case: tuple[str, str]) -> None:
    hrp, text = case
    _compare(
        run(lambda: bech32.decode_segwit(hrp, text)),
        run(lambda: SegwitBech32Decoder.Decode(hrp, text)),
        text,
    )


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["bc", "tb"]), st.integers(0, 31), st.binary(max_size=45), st.sampled_from(bech32.Encoding))
def test_decode_segwit_with_any_version_length_and_checksum_agrees(
    hrp: str, version: int, program: bytes, spec: bech32.Encoding
) -> None:
    # Structurally well-formed strings that break the SegWit rules (version > 16, program
    # length, v0 length, wrong checksum constant for the version) must be refused by both.
    data = [version, *bech32.convertbits(program, 8, 5)]
    text = run(lambda: bech32.bech32_encode(hrp, data, spec))
    if not text.ok:
        return
    _compare(
        run(lambda: bech32.decode_segwit(hrp, text.value)),
        run(lambda: SegwitBech32Decoder.Decode(hrp, text.value)),
        text.value,
    )
