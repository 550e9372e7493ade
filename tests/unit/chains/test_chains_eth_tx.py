"""Unsigned Ethereum transaction parsing, signing hashes, signed serialisation and policy fields."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum import tx as ethtx
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto import secp256k1
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


EIP155 = _load("eip155_example.json")
TXS = _load("eth_transactions.json")
KEY = bytes.fromhex(TXS["private_key"])
SENDER: str = TXS["sender"]
BY_NAME: dict[str, dict[str, str]] = {v["name"]: v for v in TXS["transactions"]}


def _recover_sender(digest: bytes, sig: secp256k1.RecoverableSignature) -> str:
    public = secp256k1._recover(digest, sig.r, sig.s, sig.v)
    assert public is not None
    return address_from_public_key(public)


# --- EIP-155 worked example -----------------------------------------------------------------


def test_eip155_example_fields_and_hash() -> None:
    tx = ethtx.parse_unsigned_transaction(EIP155["signing_data"])
    fields = EIP155["fields"]
    assert tx.tx_type == ethtx.TYPE_LEGACY
    assert tx.type_name == "LEGACY"
    assert tx.nonce == fields["nonce"]
    assert tx.gas_price == fields["gas_price"]
    assert tx.gas == fields["gas"]
    assert tx.to == fields["to"]
    assert tx.value == fields["value"]
    assert tx.data == b""
    assert tx.chain_id == fields["chain_id"]
    assert tx.encode_unsigned().hex() == EIP155["signing_data"]
    assert tx.signing_hash().hex() == EIP155["signing_hash"]


def test_eip155_example_signature() -> None:
    tx = ethtx.parse_unsigned_transaction("0x" + EIP155["signing_data"])
    sig = secp256k1.sign_digest(bytes.fromhex(EIP155["private_key"]), tx.signing_hash())
    assert sig.r == int(EIP155["r"])
    assert sig.s == int(EIP155["s"])
    assert tx.chain_id is not None
    assert tx.chain_id * 2 + 35 + sig.v == EIP155["v"]
    signed = tx.serialize_signed(sig)
    assert signed.hex() == EIP155["signed"]
    decoded = ethtx.parse_signed_transaction(signed.hex())
    assert decoded.tx == tx
    assert decoded.signature == sig


def test_hex_forms_accepted() -> None:
    raw = EIP155["signing_data"]
    expected = ethtx.parse_unsigned_transaction(raw)
    assert ethtx.parse_unsigned_transaction("0x" + raw.upper()) == expected
    assert ethtx.parse_unsigned_transaction("0X" + raw) == expected
    assert ethtx.decode_unsigned_transaction(bytes.fromhex(raw)) == expected


# --- cross-checked vectors for every type ----------------------------------------------------


@pytest.mark.parametrize("vector", TXS["transactions"], ids=[v["name"] for v in TXS["transactions"]])
def test_vectors_sign_byte_for_byte(vector: dict[str, str]) -> None:
    tx = ethtx.parse_unsigned_transaction(vector["unsigned"])
    assert tx.encode_unsigned().hex() == vector["unsigned"]
    assert tx.signing_hash().hex() == vector["signing_hash"]
    sig = secp256k1.sign_digest(KEY, tx.signing_hash())
    signed = tx.serialize_signed(sig)
    assert signed.hex() == vector["signed"]
    if "tx_hash" in vector:
        assert keccak256(signed).hex() == vector["tx_hash"]
    decoded = ethtx.parse_signed_transaction(signed)
    assert decoded.tx == tx
    assert decoded.signature == sig
    assert _recover_sender(decoded.tx.signing_hash(), decoded.signature) == SENDER


def test_vector_types() -> None:
    types = {name: ethtx.parse_unsigned_transaction(v["unsigned"]) for name, v in BY_NAME.items()}
    assert {n: t.type_name for n, t in types.items()} == {
        "legacy_pre155": "LEGACY",
        "type1": "TYPE_1",
        "type2": "TYPE_2",
        "type2_create": "TYPE_2",
        "type3": "TYPE_3",
        "type4": "TYPE_4",
    }
    assert types["legacy_pre155"].chain_id is None
    assert types["type2_create"].to is None
    type1 = types["type1"]
    assert type1.access_list == (
        ethtx.AccessListEntry(
            address="0x000000000000000000000000000000000000dEaD",
            storage_keys=(bytes(31) + b"\x01", b"\xab" * 32),
        ),
    )
    type3 = types["type3"]
    assert type3.max_fee_per_blob_gas == 2 * 10**9
    assert len(type3.blob_versioned_hashes) == 1
    assert type3.blob_versioned_hashes[0][0] == 1
    type4 = types["type4"]
    (auth,) = type4.authorization_list
    assert auth.address == "0x63c0c19a282a1B52b07dD5a65b58948A07DAE32B"
    assert (auth.chain_id, auth.nonce) == (1, 5)


# --- round trips with fresh transactions -----------------------------------------------------


def _round_trip(tx: ethtx.EthTransaction) -> None:
    unsigned_hex = tx.encode_unsigned().hex()
    parsed = ethtx.parse_unsigned_transaction(unsigned_hex)
    assert parsed == tx
    secret = bytes.fromhex("01" * 32)
    sig = secp256k1.sign_digest(secret, parsed.signing_hash())
    decoded = ethtx.parse_signed_transaction(parsed.serialize_signed(sig))
    assert decoded.tx == tx
    assert decoded.signature == sig
    expected = address_from_public_key(secp256k1.public_key_from_secret(secret))
    assert _recover_sender(decoded.tx.signing_hash(), decoded.signature) == expected


def test_eip1559_round_trip() -> None:
    _round_trip(
        ethtx.EthTransaction(
            tx_type=ethtx.TYPE_DYNAMIC_FEE,
            chain_id=8453,
            nonce=42,
            gas=65_000,
            to="0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
            value=123_456_789,
            data=bytes.fromhex("a9059cbb") + bytes(64),
            max_priority_fee_per_gas=1_000_000,
            max_fee_per_gas=2_000_000_000,
            access_list=(ethtx.AccessListEntry(address="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", storage_keys=()),),
        )
    )


def test_eip2930_round_trip() -> None:
    _round_trip(
        ethtx.EthTransaction(
            tx_type=ethtx.TYPE_ACCESS_LIST,
            chain_id=1,
            nonce=0,
            gas=30_000,
            to=None,
            value=0,
            data=b"\x60\x80",
            gas_price=7,
            access_list=(
                ethtx.AccessListEntry(
                    address="0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", storage_keys=(bytes(32), b"\x01" * 32)
                ),
            ),
        )
    )


def test_legacy_large_chain_id_round_trip() -> None:
    _round_trip(
        ethtx.EthTransaction(
            tx_type=ethtx.TYPE_LEGACY,
            chain_id=2**40 + 3,
            nonce=2**64 - 1,
            gas=21_000,
            to="0x3535353535353535353535353535353535353535",
            value=2**256 - 1,
            data=b"",
            gas_price=1,
        )
    )


# --- policy fields ---------------------------------------------------------------------------


def test_policy_fields_eip155() -> None:
    tx = ethtx.parse_unsigned_transaction(EIP155["signing_data"])
    assert tx.policy_fields(SENDER) == {
        "from": SENDER.lower(),
        "to": "0x3535353535353535353535353535353535353535",
        "data": "0x",
        "value": 10**18,
        "gas": 21000,
        "gas_price": 20 * 10**9,
        "chain_id": 1,
        "nonce": 9,
        "max_fee_per_gas": None,
        "max_priority_fee_per_gas": None,
        "max_fee_per_blob_gas": None,
        "type": "LEGACY",
    }


def test_policy_fields_typed() -> None:
    type2 = ethtx.parse_unsigned_transaction(BY_NAME["type2"]["unsigned"]).policy_fields(
        SENDER.upper().replace("X", "x")
    )
    assert type2["from"] == SENDER.lower()
    assert type2["to"] == "0xd8da6bf26964af9d7eed9e03e53415d37aa96045"
    assert type2["gas_price"] is None
    assert (type2["max_priority_fee_per_gas"], type2["max_fee_per_gas"]) == (1_500_000_000, 40_000_000_000)
    assert type2["chain_id"] == 11155111
    assert type2["type"] == "TYPE_2"
    create = ethtx.parse_unsigned_transaction(BY_NAME["type2_create"]["unsigned"]).policy_fields(SENDER)
    assert create["to"] is None
    assert create["data"] == "0x6080604052"
    blob = ethtx.parse_unsigned_transaction(BY_NAME["type3"]["unsigned"]).policy_fields(SENDER)
    assert blob["max_fee_per_blob_gas"] == 2 * 10**9
    assert blob["type"] == "TYPE_3"
    pre155 = ethtx.parse_unsigned_transaction(BY_NAME["legacy_pre155"]["unsigned"]).policy_fields(SENDER)
    assert pre155["chain_id"] is None
    for fields in (type2, create, blob, pre155):
        assert set(fields) == {
            "from",
            "to",
            "data",
            "value",
            "gas",
            "gas_price",
            "chain_id",
            "nonce",
            "max_fee_per_gas",
            "max_priority_fee_per_gas",
            "max_fee_per_blob_gas",
            "type",
        }
    with pytest.raises(InvalidRequest, match="sender address"):
        ethtx.parse_unsigned_transaction(EIP155["signing_data"]).policy_fields("0x1234")


# --- rejections ------------------------------------------------------------------------------


def _typed(tx_type: int, fields: list[rlp.RlpEncodable]) -> str:
    return (bytes([tx_type]) + rlp.encode(fields)).hex()


_U = rlp.encode_uint
_TO = bytes.fromhex("35" * 20)
_1559_BASE: list[rlp.RlpEncodable] = [_U(1), _U(0), _U(1), _U(2), _U(21000), _TO, _U(0), b"", []]


@pytest.mark.parametrize(
    ("unsigned", "message"),
    [
        ("", "is empty"),
        ("0x", "is empty"),
        ("abc", "must be hex"),
        ("zz", "must be hex"),
        ("0x0x00", "must be hex"),
        ("80", "neither a typed envelope nor an RLP list"),
        ("05c0", "unsupported type 0x05"),
        ("00c0", "unsupported type 0x00"),
        ("76c0", "Tempo"),
        ("02", "type byte but no body"),
        ("02c0c0", "not valid RLP: 1 trailing bytes"),
        ("0281", "not valid RLP"),
        ("0280", "not an RLP list"),
        ("c0", "legacy transaction must have 6 or 9 fields, got 0"),
        ("02c0", "type 2 transaction must have 9 fields, got 0"),
        # legacy, EIP-155 form, but r and s set: already signed
        (
            rlp.encode([_U(0), _U(1), _U(21000), _TO, _U(0), b"", _U(37), _U(1), _U(2)]).hex(),
            "already signed",
        ),
        (rlp.encode([_U(0), _U(1), _U(21000), _TO, _U(0), b"", b"", b"", b""]).hex(), "chain id must not be 0"),
        # typed with yParity, r, s present: already signed
        (_typed(2, [*_1559_BASE, _U(1), _U(5), _U(6)]), "already signed"),
        (_typed(2, [b"\x00", *_1559_BASE[1:]]), "`chainId` has leading zero"),
        (_typed(2, [*_1559_BASE[:5], b"\x35" * 19, *_1559_BASE[6:]]), "`to` must be empty or 20 bytes, got 19"),
        (_typed(2, [*_1559_BASE[:1], b"\x01" * 9, *_1559_BASE[2:]]), "`nonce` does not fit in 64 bits"),
        (_typed(2, [*_1559_BASE[:7], [], *_1559_BASE[8:]]), "`data` must be a byte string"),
        (_typed(2, [*_1559_BASE[:8], [[_TO]]]), r"`accessList\[0\]` must have 2 elements"),
        (_typed(2, [*_1559_BASE[:8], [[_TO, [b"\x01"]]]]), r"storageKeys\[0\]` must be 32 bytes"),
        (_typed(3, [*_1559_BASE, _U(1), []]), "`blobVersionedHashes` must not be empty"),
        (_typed(3, [*_1559_BASE[:5], b"", *_1559_BASE[6:], _U(1), [bytes(32)]]), "`to` is required"),
        (_typed(3, [[*_1559_BASE, _U(1), [bytes(32)]], [], [], []]), "sidecars"),
        (_typed(4, [*_1559_BASE, []]), "`authorizationList` must not be empty"),
        (_typed(4, [*_1559_BASE, [[_U(1), _TO, _U(0)]]]), r"`authorizationList\[0\]` must have 6 elements"),
        (
            _typed(4, [*_1559_BASE[:5], b"", *_1559_BASE[6:], [[_U(1), _TO, _U(0), _U(0), _U(1), _U(1)]]]),
            "`to` is required",
        ),
    ],
)
def test_rejections(unsigned: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        ethtx.parse_unsigned_transaction(unsigned)


def test_rejects_oversized_input() -> None:
    big = "ab" * (ethtx.MAX_TRANSACTION_BYTES + 1)
    with pytest.raises(InvalidRequest, match="larger than"):
        ethtx.parse_unsigned_transaction(big)
    with pytest.raises(InvalidRequest, match="larger than"):
        ethtx.decode_unsigned_transaction(bytes.fromhex(big))


def test_rejects_non_string() -> None:
    with pytest.raises(InvalidRequest, match="hex string"):
        ethtx.parse_unsigned_transaction(123)  # type: ignore[arg-type]


def test_signed_parser_rejects_unsigned_and_bad_v() -> None:
    with pytest.raises(InvalidRequest, match="must have 12 fields"):
        ethtx.parse_signed_transaction(BY_NAME["type2"]["unsigned"])
    bad_v = rlp.encode([_U(0), _U(1), _U(21000), _TO, _U(0), b"", _U(30), _U(1), _U(2)])
    with pytest.raises(InvalidRequest, match="legacy `v` 30"):
        ethtx.parse_signed_transaction(bad_v)
    bad_parity = _typed(2, [*_1559_BASE, _U(2), _U(5), _U(6)])
    with pytest.raises(InvalidRequest, match="`yParity` must be 0 or 1"):
        ethtx.parse_signed_transaction(bad_parity)


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, 5), (5, 0), (secp256k1.N, 5), (5, secp256k1.N), (2**256 - 1, 5)],
)
def test_signed_parser_rejects_out_of_range_signature(r: int, s: int) -> None:
    # Regression (found by the eth-account differential test): the signed parser used to hand
    # back r = 0 (or r >= n) as a RecoverableSignature that serialize_signed itself refuses.
    typed = _typed(2, [*_1559_BASE, _U(1), _U(r), _U(s)])
    legacy = rlp.encode([_U(0), _U(1), _U(21000), _TO, _U(0), b"", _U(37), _U(r), _U(s)])
    for signed in (typed, legacy):
        with pytest.raises(InvalidRequest, match=r"`r` and `s` must be in \[1, n-1\]"):
            ethtx.parse_signed_transaction(signed)
    ok = _typed(2, [*_1559_BASE, _U(1), _U(secp256k1.N - 1), _U(1)])
    assert ethtx.parse_signed_transaction(ok).signature.r == secp256k1.N - 1


def test_serialize_signed_validates_signature() -> None:
    tx = ethtx.parse_unsigned_transaction(EIP155["signing_data"])
    with pytest.raises(ValueError, match="recovery id"):
        tx.serialize_signed(secp256k1.RecoverableSignature(r=1, s=1, v=27))
    with pytest.raises(ValueError, match="r and s"):
        tx.serialize_signed(secp256k1.RecoverableSignature(r=0, s=1, v=0))


def test_pre155_signed_uses_27_28() -> None:
    tx = ethtx.parse_unsigned_transaction(BY_NAME["legacy_pre155"]["unsigned"])
    sig = secp256k1.sign_digest(KEY, tx.signing_hash())
    items = rlp.decode(tx.serialize_signed(sig))
    assert isinstance(items, list)
    assert rlp.decode_uint(items[6], "v") == 27 + sig.v
    other = replace(sig, v=1 - sig.v)
    items = rlp.decode(tx.serialize_signed(other))
    assert isinstance(items, list)
    assert rlp.decode_uint(items[6], "v") == 27 + other.v


# --- fuzzing: malformed input only ever raises InvalidRequest --------------------------------


def _parse_or_invalid(data: bytes) -> None:
    try:
        tx = ethtx.decode_unsigned_transaction(data)
    except InvalidRequest:
        return
    assert tx.encode_unsigned() == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _parse_or_invalid(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"", b"\x01", b"\x02", b"\x03", b"\x04"]), st.binary(max_size=300))
def test_random_typed_bodies(prefix: bytes, body: bytes) -> None:
    _parse_or_invalid(prefix + body)


_FIELD = st.one_of(st.binary(max_size=40), st.lists(st.binary(max_size=33), max_size=3))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"", b"\x01", b"\x02", b"\x03", b"\x04"]), st.lists(_FIELD, min_size=5, max_size=14))
def test_random_field_lists(prefix: bytes, fields: list[rlp.RlpEncodable]) -> None:
    """Well-formed RLP lists with random fields: every failure is an InvalidRequest."""
    _parse_or_invalid(prefix + rlp.encode(fields))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_random_text(text: str) -> None:
    with contextlib.suppress(InvalidRequest):
        ethtx.parse_unsigned_transaction(text)
