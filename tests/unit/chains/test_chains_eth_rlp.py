"""RLP encoding and strict canonical decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum import rlp
from strongroom.errors import InvalidRequest

# Examples from the Ethereum wiki / yellow paper appendix B.
KNOWN: list[tuple[rlp.RlpEncodable, str]] = [
    (b"dog", "83646f67"),
    ([b"cat", b"dog"], "c88363617483646f67"),
    (b"", "80"),
    ([], "c0"),
    (b"\x00", "00"),
    (b"\x0f", "0f"),
    (b"\x04\x00", "820400"),
    ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
    (
        b"Lorem ipsum dolor sit amet, consectetur adipisicing elit",
        "b838" + b"Lorem ipsum dolor sit amet, consectetur adipisicing elit".hex(),
    ),
    (b"\x80", "8180"),
]


@pytest.mark.parametrize(("item", "encoded"), KNOWN)
def test_known_encodings(item: rlp.RlpEncodable, encoded: str) -> None:
    assert rlp.encode(item).hex() == encoded
    assert rlp.decode(bytes.fromhex(encoded)) == item


def test_encode_uint() -> None:
    assert rlp.encode_uint(0) == b""
    assert rlp.encode_uint(15) == b"\x0f"
    assert rlp.encode_uint(1024) == b"\x04\x00"
    assert rlp.encode(rlp.encode_uint(0)) == b"\x80"
    with pytest.raises(ValueError):
        rlp.encode_uint(-1)
    with pytest.raises(ValueError):
        rlp.encode_uint(True)


def test_encode_rejects_str() -> None:
    with pytest.raises(TypeError):
        rlp.encode("dog")  # type: ignore[arg-type]


def test_long_list() -> None:
    item = [b"x" * 30, b"y" * 30]
    encoded = rlp.encode(item)
    assert encoded[0] == 0xF8
    assert rlp.decode(encoded) == item


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("", "empty"),
        ("8100", "single byte below 0x80"),
        ("817f", "single byte below 0x80"),
        ("b80100", "shorter than 56"),
        ("b837" + "00" * 55, "shorter than 56"),
        ("b90038" + "00" * 56, "leading zero"),
        ("f801c0", "shorter than 56"),
        ("f800", "leading zero"),
        ("f90000", "leading zero"),
        ("83646f", "past the end"),
        ("c88363617483646f", "past the end"),
        ("c3836361", "past the end"),
        ("8000", "trailing"),
        ("c0c0", "trailing"),
        ("b8", "past the end"),
        ("bf" + "ff" * 8, "past the end"),
        ("c2c1", "past the end"),
    ],
)
def test_non_canonical_rejected(encoded: str, reason: str) -> None:
    with pytest.raises(rlp.RlpError, match=reason) as info:
        rlp.decode(bytes.fromhex(encoded))
    assert isinstance(info.value, InvalidRequest)


def test_size_and_depth_caps() -> None:
    with pytest.raises(rlp.RlpError, match="limit"):
        rlp.decode(rlp.encode(b"x" * 100), max_size=50)
    nested: rlp.RlpEncodable = []
    for _ in range(40):
        nested = [nested]
    with pytest.raises(rlp.RlpError, match="nested deeper"):
        rlp.decode(rlp.encode(nested))
    assert rlp.decode(rlp.encode(nested), max_depth=41) is not None
    # A deep header-only input must not blow the Python stack either.
    with pytest.raises(rlp.RlpError):
        rlp.decode(b"\xc1" * 5000)


def test_decode_uint() -> None:
    assert rlp.decode_uint(b"", "n") == 0
    assert rlp.decode_uint(b"\x01\x00", "n") == 256
    with pytest.raises(rlp.RlpError, match="`n` has leading zero"):
        rlp.decode_uint(b"\x00", "n")
    with pytest.raises(rlp.RlpError, match="`n` has leading zero"):
        rlp.decode_uint(b"\x00\x01", "n")
    with pytest.raises(rlp.RlpError, match="64 bits"):
        rlp.decode_uint(b"\x01" + b"\x00" * 8, "n", max_bits=64)
    assert rlp.decode_uint(b"\xff" * 8, "n", max_bits=64) == 2**64 - 1
    with pytest.raises(rlp.RlpError, match="not a list"):
        rlp.decode_uint([], "n")


def test_decode_bytes_and_list() -> None:
    assert rlp.decode_bytes(b"ab", "x", length=2) == b"ab"
    with pytest.raises(rlp.RlpError, match="must be 3 bytes"):
        rlp.decode_bytes(b"ab", "x", length=3)
    with pytest.raises(rlp.RlpError, match="not a list"):
        rlp.decode_bytes([b"a"], "x")
    with pytest.raises(rlp.RlpError, match="must be a list"):
        rlp.decode_list(b"a", "x")


items: st.SearchStrategy[rlp.RlpItem] = st.recursive(
    st.binary(max_size=80),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(items)
def test_round_trip(item: rlp.RlpItem) -> None:
    encoded = rlp.encode(item)
    assert rlp.decode(encoded) == item
    assert rlp.encode(rlp.decode(encoded)) == encoded


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_uint_round_trip(value: int) -> None:
    assert rlp.decode_uint(rlp.decode(rlp.encode(rlp.encode_uint(value))), "v") == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_rlp_error(data: bytes) -> None:
    try:
        item = rlp.decode(data)
    except rlp.RlpError:
        return
    # Whatever decodes is canonical: re-encoding gives back the same bytes.
    assert rlp.encode(item) == data
