"""Differential tests: EIP-191 personal-message digests (``messages.eip191_hash``) against
eth-account (``encode_defunct`` hashed with ``_hash_eip191_message``).

The digest is ``keccak256("\\x19Ethereum Signed Message:\\n" + len(message) + message)`` with the
length in decimal; inputs cover empty messages, lengths with one to five decimal digits, and
messages that themselves start with the prefix. No disagreement is allowed: the input is raw
bytes, so there is nothing either side could refuse.
"""

from __future__ import annotations

import pytest
from eth_account.messages import _hash_eip191_message, encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum.messages import eip191_hash

PREFIX = b"\x19Ethereum Signed Message:\n"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.integers(0, 20000).map(lambda n: bytes(n % 251 for _ in range(n))),
        st.binary(max_size=40).map(lambda b: PREFIX + b"32" + b),
    )
)
def test_bytes_agree(message: bytes) -> None:
    assert eip191_hash(message) == bytes(_hash_eip191_message(encode_defunct(primitive=message)))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_text_agrees(text: str) -> None:
    # Text is signed as its UTF-8 bytes (length counted in bytes, not characters).
    assert eip191_hash(text.encode("utf-8")) == bytes(_hash_eip191_message(encode_defunct(text=text)))


@pytest.mark.parametrize("n", [0, 1, 9, 10, 99, 100, 999, 1000, 10000])
def test_length_boundaries_agree(n: int) -> None:
    message = b"a" * n
    assert eip191_hash(message) == bytes(_hash_eip191_message(encode_defunct(primitive=message)))
