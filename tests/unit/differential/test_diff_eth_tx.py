"""Differential tests: unsigned/signed Ethereum transactions (chains/ethereum/tx.py) against
eth-account (``Account.sign_transaction``, ``TypedTransaction``, the legacy ``Transaction`` sedes).

For all five types (legacy pre-EIP-155 and EIP-155, EIP-2930, EIP-1559, EIP-4844 body, EIP-7702)
hypothesis builds transaction dicts within protocol widths and eth-account signs them. Then:

- the unsigned form (eth-account's signed encoding with the signature stripped by pyrlp, and for
  EIP-155 the ``chainId, 0, 0`` suffix) decodes in Strongroom to the same fields, re-encodes to
  the same bytes, and has the signing hash eth-account computes;
- Strongroom's ``serialize_signed`` with eth-account's signature reproduces the signed bytes;
- signed encodings with random byte edits and with field-level edits (decoded, one field replaced,
  dropped or added, re-encoded with pyrlp, so most stay well-formed RLP) are decoded by both: when
  both accept, fields, signing hash and (y-parity, r, s) must agree;
- unsigned encodings with field-level edits are decoded by Strongroom's ``decode_unsigned_transaction``
  (what ``sign_transaction`` runs) and by eth-account's unsigned serializers: when both accept,
  fields and signing hash must agree.

Allow-listed disagreements. One is "only Strongroom accepts":

- ``auth-y-parity``: an EIP-7702 authorization tuple whose yParity is 2..255. EIP-7702 bounds it
  to 8 bits for the *transaction* to be valid (a tuple that then fails recovery is skipped at
  execution, the transaction stays valid), which is what Strongroom checks; eth-account's
  validator demands 0 or 1.

All the others are "only eth-account accepts":

- ``uint-width``: an integer wider than its protocol field (nonce, gas, an authorization nonce
  above 64 bits; yParity above 8 bits; any quantity above 256 bits). eth-account's
  ``big_endian_int`` sedes has no width; clients and nodes reject such transactions.
- ``y-parity``: a typed transaction whose yParity is not 0 or 1 (eth-account stores any int).
- ``legacy-v``: a legacy ``v`` of 0/1 (eth-account reads it as 27/28) or 35/36 (chain id 0), or
  an unsigned EIP-155 form ``chainId, 0, 0`` with chain id 0. None of these is valid on any
  network.
- ``to-required``: a blob (type 3) or set-code (type 4) transaction with an empty ``to``. EIP-4844
  and EIP-7702 forbid contract creation; eth-account's sedes allows the empty address.
  (An empty ``authorizationList`` or ``blobVersionedHashes``, which the EIPs also forbid, is
  refused by both.)
- ``already-signed`` (unsigned input only): a 9-field legacy list whose r or s is non-zero is a
  signed transaction; Strongroom refuses to re-sign it (tx.py's rule), eth-account's 9-field
  serializer reads it.
- ``sig-range``: r or s outside [1, n-1] (n the secp256k1 order). No sender can be recovered from
  such a signature and ``serialize_signed`` refuses it, so Strongroom's signed parser does too.
  eth-account's decoder accepts r or s >= n, and 0 in legacy transactions (in typed ones it
  happens to refuse 0, because its field validator treats the int 0 as "missing").
- ``list-as-int``: an empty RLP *list* (``0xc0``) where an integer belongs. pyrlp's
  ``big_endian_int`` sedes reads ``[]`` as 0 (it only looks at ``len()`` and falls back to
  ``b"\\x00"``), a laxity in the reference; an integer is a byte string and Strongroom says so.
"""

from __future__ import annotations

from typing import Any

import pyrlp_shim as pyrlp
import pytest
from diffkit import Outcome, edited_rlp_item, mutated, run
from eth_account import Account
from eth_account._utils.legacy_transactions import (
    Transaction,
    UnsignedTransaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account._utils.signing import extract_chain_id, hash_of_signed_transaction
from eth_account._utils.transaction_utils import transaction_rlp_to_rpc_structure
from eth_account.typed_transactions import (
    AccessListTransaction,
    BlobTransaction,
    DynamicFeeTransaction,
    SetCodeTransaction,
    TypedTransaction,
)
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum import tx as ethtx
from strongroom.crypto.secp256k1 import N, RecoverableSignature

KEY = "0x" + "46" * 32
U64 = 2**64 - 1
U256 = 2**256 - 1

quantities = st.one_of(st.integers(0, 1000), st.integers(0, U256))
u64s = st.one_of(st.integers(0, 1000), st.integers(0, U64))
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
hashes32 = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
access_lists = st.lists(
    st.fixed_dictionaries({"address": addresses, "storageKeys": st.lists(hashes32, max_size=3)}), max_size=3
)
authorizations = st.lists(
    st.fixed_dictionaries(
        {
            "chainId": quantities,
            "address": addresses,
            "nonce": u64s,
            "yParity": st.integers(0, 1),
            "r": st.integers(1, U256),
            "s": st.integers(1, U256),
        }
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def transactions(draw: st.DrawFn, tx_type: int | None = None) -> dict[str, Any]:
    """An eth-account transaction dict; ``tx_type`` None means legacy (with or without EIP-155)."""
    d: dict[str, Any] = {
        "nonce": draw(u64s),
        "gas": draw(u64s),
        "value": draw(quantities),
        "data": "0x" + draw(st.binary(max_size=80)).hex(),
    }
    to = draw(st.one_of(st.none(), addresses)) if tx_type in (None, 1, 2) else draw(addresses)
    if to is not None:
        d["to"] = to
    if tx_type is None:
        d["gasPrice"] = draw(quantities)
        chain = draw(st.one_of(st.none(), st.integers(1, 2**64)))
        if chain is not None:
            d["chainId"] = chain
        return d
    d["type"] = tx_type
    d["chainId"] = draw(st.one_of(st.integers(1, 2**32), quantities.filter(bool)))
    d["accessList"] = draw(access_lists)
    if tx_type == 1:
        d["gasPrice"] = draw(quantities)
        return d
    d["maxPriorityFeePerGas"] = draw(quantities)
    d["maxFeePerGas"] = draw(quantities)
    if tx_type == 3:
        d["maxFeePerBlobGas"] = draw(quantities)
        d["blobVersionedHashes"] = draw(st.lists(hashes32, min_size=1, max_size=3))
    elif tx_type == 4:
        d["authorizationList"] = draw(authorizations)
    return d


any_transaction = st.sampled_from([None, 1, 2, 3, 4]).flatmap(transactions)


def _unsigned_from_signed(raw: bytes, d: dict[str, Any]) -> bytes:
    """Strip (v, r, s) with pyrlp; EIP-155 legacy gets its ``chainId, 0, 0`` suffix."""
    if raw[0] >= 0xC0:
        fields = pyrlp.decode(raw)[:6]
        if "chainId" in d:
            fields += [d["chainId"].to_bytes((d["chainId"].bit_length() + 7) // 8, "big"), b"", b""]
        return pyrlp.encode(fields)
    return raw[:1] + pyrlp.encode(pyrlp.decode(raw[1:])[:-3])


def _ref_signing_hash(d: dict[str, Any]) -> bytes:
    return bytes(serializable_unsigned_transaction_from_dict(dict(d)).hash())


def _hex(value: object) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value).lower()


def _ours_fields(t: ethtx.EthTransaction) -> dict[str, Any]:
    """Strongroom's decoded transaction in a shape shared with :func:`_ref_fields`."""
    out: dict[str, Any] = {
        "type": t.tx_type,
        "chainId": t.chain_id,
        "nonce": t.nonce,
        "gas": t.gas,
        "to": t.to.lower() if t.to else None,
        "value": t.value,
        "data": "0x" + t.data.hex(),
    }
    if t.tx_type in (0, 1):
        out["gasPrice"] = t.gas_price
    else:
        out["maxPriorityFeePerGas"] = t.max_priority_fee_per_gas
        out["maxFeePerGas"] = t.max_fee_per_gas
    if t.tx_type:
        out["accessList"] = [
            (e.address.lower(), [int.from_bytes(k, "big") for k in e.storage_keys]) for e in t.access_list
        ]
    if t.tx_type == 3:
        out["maxFeePerBlobGas"] = t.max_fee_per_blob_gas
        out["blobVersionedHashes"] = ["0x" + h.hex() for h in t.blob_versioned_hashes]
    if t.tx_type == 4:
        out["authorizationList"] = [
            (a.chain_id, a.address.lower(), a.nonce, a.y_parity, a.r, a.s) for a in t.authorization_list
        ]
    return out


def _ref_fields(d: dict[str, Any], tx_type: int, chain_id: int | None) -> dict[str, Any]:
    """An eth-account dict (as decoded by eth-account or as given to it) in the shared shape."""
    to = d.get("to") or None
    out: dict[str, Any] = {
        "type": tx_type,
        "chainId": chain_id,
        "nonce": d["nonce"],
        "gas": d["gas"],
        "to": _hex(to) if to else None,
        "value": d["value"],
        "data": _hex(HexBytes(d["data"])),
    }
    if tx_type in (0, 1):
        out["gasPrice"] = d["gasPrice"]
    else:
        out["maxPriorityFeePerGas"] = d["maxPriorityFeePerGas"]
        out["maxFeePerGas"] = d["maxFeePerGas"]
    if tx_type:
        out["accessList"] = [
            (_hex(HexBytes(e["address"])), [k if isinstance(k, int) else int(k, 16) for k in e["storageKeys"]])
            for e in d["accessList"]
        ]
    if tx_type == 3:
        out["maxFeePerBlobGas"] = d["maxFeePerBlobGas"]
        out["blobVersionedHashes"] = [_hex(HexBytes(h)) for h in d["blobVersionedHashes"]]
    if tx_type == 4:
        out["authorizationList"] = [
            (a["chainId"], _hex(HexBytes(a["address"])), a["nonce"], a["yParity"], a["r"], a["s"])
            for a in d["authorizationList"]
        ]
    return out


# --- valid transactions ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(any_transaction)
def test_valid_transactions_agree(d: dict[str, Any]) -> None:
    signed = Account.sign_transaction(dict(d), KEY)
    raw = bytes(signed.raw_transaction)
    unsigned = _unsigned_from_signed(raw, d)

    ours = ethtx.decode_unsigned_transaction(unsigned)
    tx_type = d.get("type", 0)
    assert _ours_fields(ours) == _ref_fields(d, tx_type, d.get("chainId"))
    assert ours.encode_unsigned() == unsigned
    assert ours.signing_hash() == _ref_signing_hash(d)

    parsed = ethtx.parse_signed_transaction(raw)
    assert parsed.tx == ours
    if tx_type:
        y_parity = signed.v
    elif "chainId" in d:
        y_parity = signed.v - 35 - 2 * d["chainId"]  # EIP-155 v
    else:
        y_parity = signed.v - 27
    assert parsed.signature == RecoverableSignature(r=signed.r, s=signed.s, v=y_parity)
    assert ours.serialize_signed(parsed.signature) == raw


# --- signed encodings with random edits --------------------------------------------------------


def _ref_decode(raw: bytes) -> tuple[dict[str, Any], bytes, tuple[int, int, int]]:
    """eth-account's reading of a signed transaction: fields, signing hash, (yParity, r, s)."""
    if raw and raw[0] <= 0x7F:
        typed = TypedTransaction.from_bytes(HexBytes(raw))
        d = typed.as_dict()
        v, r, s = typed.vrs()
        return _ref_fields(d, d["type"], d["chainId"]), bytes(typed.hash()), (v, r, s)
    legacy = Transaction.from_bytes(raw)
    chain_id, v = extract_chain_id(legacy.v)
    return (
        _ref_fields(legacy.as_dict(), 0, chain_id),
        bytes(hash_of_signed_transaction(legacy)),
        (v - 27, legacy.r, legacy.s),
    )


def _ours_decode(raw: bytes) -> tuple[dict[str, Any], bytes, tuple[int, int, int]]:
    parsed = ethtx.parse_signed_transaction(raw)
    sig = parsed.signature
    return _ours_fields(parsed.tx), parsed.tx.signing_hash(), (sig.v, sig.r, sig.s)


def _widths_exceeded(fields: dict[str, Any], vrs: tuple[int, int, int]) -> bool:
    wide = [fields["nonce"] > U64, fields["gas"] > U64, any(v > U256 for v in vrs)]
    wide += [
        isinstance(fields.get(k), int) and fields[k] > U256
        for k in ("chainId", "value", "gasPrice", "maxPriorityFeePerGas", "maxFeePerGas", "maxFeePerBlobGas")
    ]
    for c, _, nonce, y, r, s in fields.get("authorizationList", []):
        wide += [c > U256, nonce > U64, y > 255, r > U256, s > U256]
    return any(wide)


# Positions of the integer fields in each type's signed field list (and in a 7702 authorization).
_INT_FIELDS = {
    0: (0, 1, 2, 4, 6, 7, 8),
    1: (0, 1, 2, 3, 5, 8, 9, 10),
    2: (0, 1, 2, 3, 4, 6, 9, 10, 11),
    3: (0, 1, 2, 3, 4, 6, 9, 11, 12, 13),
    4: (0, 1, 2, 3, 4, 6, 10, 11, 12),
}
_AUTH_INT_FIELDS = (0, 2, 3, 4, 5)


def _lists_as_ints(raw: bytes) -> bytes | None:
    """``raw`` with every empty list in an integer position written as the empty string (integer
    0), or None if there is no such list (or ``raw`` is not a field list of a known type)."""
    tx_type, prefix, body = (0, b"", raw) if raw[0] >= 0xC0 else (raw[0], raw[:1], raw[1:])
    items = pyrlp.decode(body)
    if tx_type not in _INT_FIELDS or not isinstance(items, list):
        return None
    changed = False
    for i in _INT_FIELDS[tx_type]:
        if i < len(items) and items[i] == []:
            items[i], changed = b"", True
    if tx_type == 4 and len(items) > 9 and isinstance(items[9], list):
        for auth in items[9]:
            for j in _AUTH_INT_FIELDS:
                if isinstance(auth, list) and j < len(auth) and auth[j] == []:
                    auth[j], changed = b"", True
    return prefix + pyrlp.encode(items) if changed else None


def _auth_y_parity(ours: Outcome, ref: Outcome) -> str | None:
    """The one "only Strongroom accepts" entry: an authorization yParity of 2..255."""
    auths = ours.value[0].get("authorizationList", [])
    if "rlp-structured authorization list" in str(ref.error) and any(1 < a[3] < 256 for a in auths):
        return "auth-y-parity"
    return None


def _allowed(ours: Outcome, ref: Outcome, raw: bytes) -> str | None:
    if ours.ok and not ref.ok:
        return _auth_y_parity(ours, ref)
    if not (ref.ok and not ours.ok):
        return None
    fields, _, (v, _r, _s) = ref.value
    fixed = _lists_as_ints(raw)
    if fixed is not None:
        # Written as integers, the lists must give exactly eth-account's reading (or fall under
        # another allow-list entry, checked on the rewritten bytes).
        again = run(lambda: _ours_decode(fixed))
        if (again.ok and again.value == ref.value) or (not again.ok and _allowed(again, ref, fixed)):
            return "list-as-int"
    if _widths_exceeded(fields, ref.value[2]):
        return "uint-width"
    if not (0 < _r < N and 0 < _s < N):
        return "sig-range"
    if fields["type"] and v not in (0, 1):
        return "y-parity"
    if fields["type"] == 0:
        raw_v = Transaction.from_bytes(raw).v
        if raw_v in (0, 1, 35, 36):
            return "legacy-v"
    if fields["type"] in (3, 4) and fields["to"] is None:
        return "to-required"
    return None


def _compare(raw: bytes) -> None:
    ours = run(lambda: _ours_decode(raw))
    ref = run(lambda: _ref_decode(raw))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, raw.hex()
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "eth-account"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed(ours, ref, raw) is not None, f"only {who} refuses {raw.hex()}: {reason!r}"


signed_raw = any_transaction.map(lambda d: bytes(Account.sign_transaction(dict(d), KEY).raw_transaction))


@settings(max_examples=400, deadline=None)
@given(signed_raw.flatmap(mutated))
def test_mutated_signed_transactions_agree(raw: bytes) -> None:
    _compare(raw)


@settings(max_examples=150, deadline=None)
@given(signed_raw)
def test_signed_transactions_agree(raw: bytes) -> None:
    _compare(raw)
    assert run(lambda: _ours_decode(raw)).ok


def _edited(raw: bytes) -> st.SearchStrategy[bytes]:
    """``raw`` decoded with pyrlp, edited field-wise, re-encoded: mostly still valid RLP."""
    prefix, body = (b"", raw) if raw[0] >= 0xC0 else (raw[:1], raw[1:])
    return edited_rlp_item(pyrlp.decode(body)).map(lambda item: prefix + pyrlp.encode(item))


@settings(max_examples=500, deadline=None)
@given(signed_raw.flatmap(_edited))
def test_field_edited_signed_transactions_agree(raw: bytes) -> None:
    _compare(raw)


def test_allow_listed_list_as_int() -> None:
    # Allow-list `list-as-int`: the nonce of a signed legacy transaction replaced by an empty list.
    raw = bytes(
        Account.sign_transaction(
            {"nonce": 0, "gasPrice": 1, "gas": 21000, "value": 0, "data": "0x"}, KEY
        ).raw_transaction
    )
    items = pyrlp.decode(raw)
    assert items[0] == b""
    edited = pyrlp.encode([[], *items[1:]])
    ours, ref = run(lambda: _ours_decode(edited)), run(lambda: _ref_decode(edited))
    assert ref.ok
    assert ref.value[0]["nonce"] == 0
    assert not ours.ok
    assert _allowed(ours, ref, edited) == "list-as-int"


def test_allow_listed_auth_y_parity() -> None:
    # Allow-list `auth-y-parity`: a type-4 transaction whose authorization has yParity 2.
    d = {
        "type": 4,
        "chainId": 1,
        "nonce": 0,
        "maxPriorityFeePerGas": 1,
        "maxFeePerGas": 2,
        "gas": 50000,
        "to": "0x" + "35" * 20,
        "value": 0,
        "data": "0x",
        "accessList": [],
        "authorizationList": [{"chainId": 1, "address": "0x" + "35" * 20, "nonce": 0, "yParity": 1, "r": 1, "s": 1}],
    }
    raw = bytes(Account.sign_transaction(d, KEY).raw_transaction)
    items = pyrlp.decode(raw[1:])
    items[9][0][3] = b"\x02"
    edited = raw[:1] + pyrlp.encode(items)
    ours, ref = run(lambda: _ours_decode(edited)), run(lambda: _ref_decode(edited))
    assert ours.ok
    assert ours.value[0]["authorizationList"][0][3] == 2
    assert not ref.ok
    assert _allowed(ours, ref, edited) == "auth-y-parity"


_TYPED_BASE = {
    "chainId": 1,
    "nonce": 0,
    "maxPriorityFeePerGas": 1,
    "maxFeePerGas": 2,
    "gas": 50000,
    "to": "0x" + "35" * 20,
    "value": 0,
    "data": "0x",
    "accessList": [],
}
_TYPE3 = {**_TYPED_BASE, "type": 3, "maxFeePerBlobGas": 1, "blobVersionedHashes": ["0x" + "01" * 32]}
_TYPE4 = {
    **_TYPED_BASE,
    "type": 4,
    "authorizationList": [{"chainId": 1, "address": "0x" + "35" * 20, "nonce": 0, "yParity": 1, "r": 1, "s": 1}],
}


def _with_field(d: dict[str, Any], index: int, value: object) -> bytes:
    raw = bytes(Account.sign_transaction(dict(d), KEY).raw_transaction)
    items = pyrlp.decode(raw[1:])
    items[index] = value
    return raw[:1] + pyrlp.encode(items)


@pytest.mark.parametrize("d", [_TYPE3, _TYPE4], ids=["type3", "type4"])
def test_allow_listed_to_required(d: dict[str, Any]) -> None:
    # Allow-list `to-required`: blob and set-code transactions with an empty `to`.
    edited = _with_field(d, 5, b"")
    ours, ref = run(lambda: _ours_decode(edited)), run(lambda: _ref_decode(edited))
    assert ref.ok
    assert ref.value[0]["to"] is None
    assert not ours.ok
    assert _allowed(ours, ref, edited) == "to-required"


@pytest.mark.parametrize(("d", "index"), [(_TYPE3, 10), (_TYPE4, 9)], ids=["blob-hashes", "authorizations"])
def test_empty_required_lists_refused_by_both(d: dict[str, Any], index: int) -> None:
    edited = _with_field(d, index, [])
    assert not run(lambda: _ours_decode(edited)).ok
    assert not run(lambda: _ref_decode(edited)).ok


_LEGACY = {"nonce": 0, "gasPrice": 1, "gas": 21000, "to": "0x" + "35" * 20, "value": 0, "data": "0x"}


def _legacy_with(index: int, value: int) -> bytes:
    items = pyrlp.decode(bytes(Account.sign_transaction(dict(_LEGACY), KEY).raw_transaction))
    items[index] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return pyrlp.encode(items)


@pytest.mark.parametrize(
    ("edited", "entry"),
    [
        (_legacy_with(6, 0), "legacy-v"),
        (_legacy_with(6, 1), "legacy-v"),
        (_legacy_with(6, 35), "legacy-v"),
        (_legacy_with(6, 36), "legacy-v"),
        (_legacy_with(0, 2**64), "uint-width"),
        (_legacy_with(1, 2**256), "uint-width"),
        (_legacy_with(7, N), "sig-range"),
        (_legacy_with(8, 0), "sig-range"),
        (_with_field(_TYPE4, 10, b"\x02"), "y-parity"),
        (_with_field(_TYPE4, 12, N.to_bytes(32, "big")), "sig-range"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_allow_listed_only_eth_account_accepts(edited: bytes, entry: str) -> None:
    ours, ref = run(lambda: _ours_decode(edited)), run(lambda: _ref_decode(edited))
    assert ref.ok
    assert not ours.ok
    assert _allowed(ours, ref, edited) == entry


# --- unsigned encodings with field-level edits (what sign_transaction actually receives) ----------

_TYPED_CLASSES = {1: AccessListTransaction, 2: DynamicFeeTransaction, 3: BlobTransaction, 4: SetCodeTransaction}


def _ref_decode_unsigned(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """eth-account's reading of an unsigned encoding: its unsigned RLP serializers (legacy: the
    6-field form, or the 9-field EIP-155 form whose v is the chain id), then its signing hash."""
    if raw[0] in _TYPED_CLASSES:
        cls = _TYPED_CLASSES[raw[0]]
        rlp_dict = cls._unsigned_transaction_serializer.from_bytes(raw[1:]).as_dict()
        d = {**transaction_rlp_to_rpc_structure(rlp_dict), "type": raw[0]}
        typed = TypedTransaction.from_dict(d)
        return _ref_fields(typed.as_dict(), raw[0], d["chainId"]), bytes(typed.hash())
    if raw[0] < 0xC0:
        raise ValueError("not a transaction eth-account decodes")
    if len(pyrlp.decode(raw)) == 6:
        legacy = UnsignedTransaction.from_bytes(raw)
        return _ref_fields(legacy.as_dict(), 0, None), bytes(legacy.hash())
    eip155 = Transaction.from_bytes(raw)
    return _ref_fields(eip155.as_dict(), 0, eip155.v), bytes(eip155.hash())


def _ours_decode_unsigned(raw: bytes) -> tuple[dict[str, Any], bytes]:
    tx = ethtx.decode_unsigned_transaction(raw)
    return _ours_fields(tx), tx.signing_hash()


def _allowed_unsigned(ours: Outcome, ref: Outcome, raw: bytes) -> str | None:
    if ours.ok and not ref.ok:
        return _auth_y_parity(ours, ref)
    if not (ref.ok and not ours.ok):
        return None
    if "already signed" in str(ours.error):
        return "already-signed"
    fields = ref.value[0]
    fixed = _lists_as_ints(raw)
    if fixed is not None:
        # Fields only: eth-account's legacy hash() is keccak of the bytes as given (the decoded
        # object caches its encoding), which for the list form is not the canonical encoding.
        again = run(lambda: _ours_decode_unsigned(fixed))
        if (again.ok and again.value[0] == fields) or (not again.ok and _allowed_unsigned(again, ref, fixed)):
            return "list-as-int"
    legacy_vrs = (0, 0, 0)
    if raw[0] >= 0xC0 and len(pyrlp.decode(raw)) == 9:
        eip155 = Transaction.from_bytes(raw)
        legacy_vrs = (eip155.v, eip155.r, eip155.s)
    if _widths_exceeded(fields, legacy_vrs):
        return "uint-width"
    if fields["type"] == 0 and fields["chainId"] == 0:
        return "legacy-v"
    if fields["type"] in (3, 4) and fields["to"] is None:
        return "to-required"
    return None


unsigned_raw = any_transaction.map(
    lambda d: _unsigned_from_signed(bytes(Account.sign_transaction(dict(d), KEY).raw_transaction), d)
)


def _edited_unsigned(raw: bytes) -> st.SearchStrategy[bytes]:
    prefix, body = (b"", raw) if raw[0] >= 0xC0 else (raw[:1], raw[1:])
    return edited_rlp_item(pyrlp.decode(body)).map(lambda item: prefix + pyrlp.encode(item))


@settings(max_examples=400, deadline=None)
@given(unsigned_raw.flatmap(_edited_unsigned))
def test_field_edited_unsigned_transactions_agree(raw: bytes) -> None:
    ours = run(lambda: _ours_decode_unsigned(raw))
    ref = run(lambda: _ref_decode_unsigned(raw))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, raw.hex()
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "eth-account"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed_unsigned(ours, ref, raw) is not None, f"only {who} refuses {raw.hex()}: {reason!r}"


def test_allow_listed_already_signed() -> None:
    # Allow-list `already-signed` (unsigned input only): a legacy list with chainId and non-zero
    # r/s is a signed transaction. eth-account's serializer reads the nine fields; Strongroom
    # refuses to re-sign it (see tx.py's docstring).
    raw = bytes(Account.sign_transaction({**_LEGACY, "chainId": 1}, KEY).raw_transaction)
    ours, ref = run(lambda: _ours_decode_unsigned(raw)), run(lambda: _ref_decode_unsigned(raw))
    assert ref.ok
    assert not ours.ok
    assert _allowed_unsigned(ours, ref, raw) == "already-signed"
