"""Differential tests: Base58 / Base58Check (crypto/base58.py) against the ``base58`` package.

Encoding must match exactly; decoding is compared on valid strings, edited strings and random
text (mostly from the alphabet, so that many of them decode).

Allow-listed disagreement (only the reference accepts):

- ``trailing-whitespace``: ``base58.b58decode`` calls ``str.rstrip()`` first, so ``"2g\\n"`` or
  ``"2g "`` decodes. Strongroom refuses every character outside the alphabet: a padded address
  is a client bug we would rather report than silently fix. (Bitcoin Core also skips
  whitespace, so the reference follows it; neither side is wrong, we are just stricter.)
"""

from __future__ import annotations

import json
from pathlib import Path

import base58 as ref
import pytest
from diffkit import Outcome, run
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.base58 import ALPHABET, b58check_decode, b58check_encode, b58decode, b58encode

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "base58.json").read_text())["vectors"]

texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=40),
    st.text(alphabet=ALPHABET + "0OIl +/\t\n\u00e9\u3000", max_size=40),
    st.binary(max_size=30).map(lambda b: ref.b58encode(b).decode()),
    st.binary(max_size=30).map(lambda b: ref.b58encode_check(b).decode()),
)


def _allowed(ours: Outcome, ref_: Outcome, text: str) -> str | None:
    if ref_.ok and not ours.ok and text != text.rstrip():
        # The reference must have read exactly what we read without the whitespace.
        assert run(lambda: b58decode(text.rstrip())).value == ref.b58decode(text)
        return "trailing-whitespace"
    return None


def _compare(ours: Outcome, theirs: Outcome, text: str) -> None:
    if ours.ok and theirs.ok:
        assert ours.value == theirs.value, text
    elif ours.ok != theirs.ok:
        who = "Strongroom" if not ours.ok else "base58"
        reason = ours.error if not ours.ok else theirs.error
        assert _allowed(ours, theirs, text) is not None, f"only {who} refuses {text!r}: {reason!r}"


@pytest.mark.parametrize(("hex_", "text"), VECTORS)
def test_published_vectors_agree(hex_: str, text: str) -> None:
    data = bytes.fromhex(hex_)
    assert b58encode(data) == ref.b58encode(data).decode() == text
    assert b58decode(text) == ref.b58decode(text) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_encode_matches(data: bytes) -> None:
    assert b58encode(data) == ref.b58encode(data).decode()
    assert b58check_encode(data) == ref.b58encode_check(data).decode()


@settings(max_examples=500, deadline=None)
@given(texts)
def test_decode_agrees(text: str) -> None:
    _compare(run(lambda: b58decode(text)), run(lambda: ref.b58decode(text)), text)


@settings(max_examples=500, deadline=None)
@given(texts)
def test_check_decode_agrees(text: str) -> None:
    _compare(run(lambda: b58check_decode(text)), run(lambda: ref.b58decode_check(text)), text)


@pytest.mark.parametrize("text", ["2g\n", "2g ", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L\t"])
def test_allow_listed_trailing_whitespace(text: str) -> None:
    ours, theirs = run(lambda: b58decode(text)), run(lambda: ref.b58decode(text))
    assert theirs.ok
    assert not ours.ok
    assert _allowed(ours, theirs, text) == "trailing-whitespace"


@pytest.mark.parametrize("text", ["0", "O", "I", "l", " 2g", "2 g", "+", "\u00e9"])
def test_outside_alphabet_refused_by_both(text: str) -> None:
    assert not run(lambda: b58decode(text)).ok
    assert not run(lambda: ref.b58decode(text)).ok
