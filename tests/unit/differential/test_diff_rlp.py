"""Differential tests: Strongroom's RLP codec (chains/ethereum/rlp.py) against pyrlp (`rlp`).

pyrlp 4/5 decodes with ``strict=True`` as canonically as Strongroom does: it refuses a single
byte below 0x80 wrapped as a string, long-form lengths under 56, length fields with leading
zeros, list payloads that are over- or under-filled, and trailing bytes. So on canonical
questions the two must agree exactly.

Allow-listed disagreements (Strongroom refuses, pyrlp accepts), all deliberate resource caps:

- ``depth``: lists nested deeper than ``rlp.MAX_DEPTH`` (32). pyrlp recurses until Python's
  recursion limit; Strongroom caps nesting so a 1 MiB input cannot exhaust the stack.
- ``size``: inputs larger than ``max_size`` (1 MiB by default); pyrlp has no cap.
- ``uint-width`` (integers only): :func:`rlp.decode_uint` refuses values of ``max_bits`` or more
  (256 by default); pyrlp's ``big_endian_int`` sedes has no width.
- ``list-as-int`` (integers only): pyrlp's ``big_endian_int`` reads an empty list as 0, a laxity
  of the reference; :func:`rlp.decode_uint` refuses a list.

No disagreement the other way (pyrlp refuses, Strongroom accepts) is allowed.
"""

from __future__ import annotations

import pyrlp_shim as pyrlp
import pytest
from diffkit import Outcome, mutated, run
from hypothesis import given, settings
from hypothesis import strategies as st
from rlp.sedes import big_endian_int

from strongroom.chains.ethereum import rlp

items = st.recursive(
    st.binary(max_size=70),
    lambda children: st.lists(children, max_size=6),
    max_leaves=24,
)


def _depth(item: object) -> int:
    if isinstance(item, list):
        return 1 + max((_depth(child) for child in item), default=0)
    return 0


def _allowed(ours: Outcome, ref: Outcome, data: bytes) -> str | None:
    """The allow-list entry that explains a disagreement, or None if it is unexplained."""
    if not ours.ok and ref.ok:
        if _depth(ref.value) > rlp.MAX_DEPTH:
            return "depth"
        if len(data) > rlp.MAX_INPUT_BYTES:
            return "size"
    return None


def _compare(data: bytes, **limits: int) -> None:
    ours = run(lambda: rlp.decode(data, **limits))
    ref = run(lambda: pyrlp.decode(data))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, data.hex()
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "pyrlp"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed(ours, ref, data) is not None, f"only {who} refuses {data.hex()}: {reason!r}"


@settings(max_examples=300, deadline=None)
@given(items)
def test_encode_matches_pyrlp(item: rlp.RlpEncodable) -> None:
    assert rlp.encode(item) == pyrlp.encode(item)


@settings(max_examples=300, deadline=None)
@given(items)
def test_decode_of_valid_encodings_matches(item: rlp.RlpEncodable) -> None:
    encoded = pyrlp.encode(item)
    assert rlp.decode(encoded) == pyrlp.decode(encoded) == item


@settings(max_examples=600, deadline=None)
@given(items.map(pyrlp.encode).flatmap(mutated))
def test_mutated_encodings_agree(data: bytes) -> None:
    _compare(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_agree(data: bytes) -> None:
    _compare(data)


# Hand-picked non-canonical encodings: both must refuse each of them.
NON_CANONICAL = [
    "8100",  # single byte below 0x80 wrapped as a one-byte string
    "817f",
    "b80100",  # long-form length for a 1-byte string
    "b90038" + "00" * 56,  # length field with a leading zero
    "f800",  # long-form list length for an empty list
    "c3830102",  # child string overruns its list
    "c48301020304",  # list payload shorter than its contents (trailing byte after)
    "c20102" + "00",  # trailing byte after the top-level item
    "",  # empty input
    "b8",  # length field missing
    "f9",
]


@pytest.mark.parametrize("hex_", NON_CANONICAL)
def test_non_canonical_refused_by_both(hex_: str) -> None:
    data = bytes.fromhex(hex_)
    ours, ref = run(lambda: rlp.decode(data)), run(lambda: pyrlp.decode(data))
    assert not ours.ok
    assert not ref.ok


def test_allow_listed_depth_disagreement() -> None:
    # Allow-list `depth`: 33 nested lists. pyrlp accepts; Strongroom refuses by design.
    item: list[object] = []
    for _ in range(rlp.MAX_DEPTH):
        item = [item]
    data = pyrlp.encode(item)
    ours, ref = run(lambda: rlp.decode(data)), run(lambda: pyrlp.decode(data))
    assert ref.ok
    assert not ours.ok
    assert "nested deeper" in str(ours.error)
    assert _depth(ref.value) == rlp.MAX_DEPTH + 1
    assert _allowed(ours, ref, data) == "depth"
    # One level less is inside the cap, and then both agree.
    assert rlp.decode(pyrlp.encode(item[0])) == pyrlp.decode(pyrlp.encode(item[0]))


def test_allow_listed_size_disagreement() -> None:
    # Allow-list `size`: a caller-chosen cap (the transaction parser uses 128 KiB); pyrlp has none.
    data = pyrlp.encode(b"\x01" * 200)
    ours, ref = run(lambda: rlp.decode(data, max_size=100)), run(lambda: pyrlp.decode(data))
    assert ref.ok
    assert not ours.ok


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=34), st.integers(0, 2**260).map(rlp.encode_uint)))
def test_decode_uint_matches_big_endian_int(raw: bytes) -> None:
    ours = run(lambda: rlp.decode_uint(raw, "x"))
    ref = run(lambda: big_endian_int.deserialize(raw))
    if ours.ok and ref.ok:
        assert ours.value == ref.value
    elif ours.ok != ref.ok:
        # Allow-list `uint-width`: only Strongroom refuses, and only for values of 256 bits or more.
        assert ref.ok, f"only pyrlp refuses {raw.hex()}: {ref.error!r}"
        assert ref.value >> 256, f"only Strongroom refuses {raw.hex()}: {ours.error!r}"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**256 - 1))
def test_encode_uint_matches_big_endian_int(value: int) -> None:
    assert rlp.encode_uint(value) == big_endian_int.serialize(value)


def test_allow_listed_list_as_int() -> None:
    # Allow-list `list-as-int` (integers only): pyrlp's big_endian_int sedes reads an empty *list*
    # as 0 (it checks len() only); an integer is a byte string, so Strongroom refuses.
    item = pyrlp.decode(bytes.fromhex("c0"))
    assert big_endian_int.deserialize(item) == 0
    assert not run(lambda: rlp.decode_uint(item, "x")).ok
