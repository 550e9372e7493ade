"""Recognise raw bytes that Ethereum would read as something else: a transaction, typed data, a 7702 authorization.

A secp256k1 signature over `keccak256(bytes)` is an Ethereum signature for whatever those bytes
encode. When a raw payload's preimage is known (hashed by the daemon with KECCAK256 or SHA256),
the policy engine must see what it is, under the same keywords as the dedicated activity;
otherwise a DENY on `eth.tx.to` would stop `sign_transaction` and let `sign_raw_payload` of the
same unsigned bytes through.

`recognise(data, from_address)` returns the `eth` namespace entries for the bytes (`from_address`
is called only when they are a transaction):

- a typed envelope (`0x01`..`0x04`, or any byte below `0x80` other than `0x05`) followed by an RLP
  list, or a bare RLP list: `{"tx": ...}` with the `eth.tx` fields;
- `0x05 || rlp([chain_id, address, nonce])`: `{"eip_7702_authorization": ...}`;
- `0x19 0x01 ...` (the input of an EIP-712 digest, `0x1901 || domainSeparator || structHash`):
  `{"eip_712": {}}`: the typed data behind the two hashes cannot be seen;
- anything else (text, an EIP-191 personal message, a digest, bytes that are not RLP): `{}`.

Bytes that have the shape of one of these but do not decode as a valid one still open the
namespace, empty: a policy that reads a field of it then *fails* (fail closed: a DENY denies,
an ALLOW does not allow) instead of not applying. Only well-formed canonical RLP can be the
preimage of a valid signature, so bytes that are not RLP at all are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from strongroom.chains.ethereum import abi, rlp
from strongroom.chains.ethereum import tx as ethtx
from strongroom.errors import InvalidRequest

EIP7702_MAGIC: Final = 0x05
EIP191_PREFIX: Final = 0x19
EIP712_VERSION: Final = 0x01


def _rlp_list(data: bytes) -> list[rlp.RlpItem] | None:
    if not data or data[0] < 0xC0:
        return None
    try:
        item = rlp.decode(data, max_size=ethtx.MAX_TRANSACTION_BYTES)
    except InvalidRequest:
        return None
    return item if isinstance(item, list) else None


AbiFor = abi.AbiFor


def transaction_fields(tx: ethtx.EthTransaction, from_address: str, abi_for: AbiFor | None = None) -> dict[str, Any]:
    """`eth.tx` for a parsed transaction.

    Without calldata there is no call: `function_name` and `function_signature` are empty and
    `contract_call_args` is an empty map. With calldata they are filled from the ABI uploaded for
    `to` (a smart contract interface) when it describes the call; otherwise they stay absent, so
    a policy that reads them fails (fail closed) rather than guessing.
    """
    fields = tx.policy_fields(from_address)
    if not tx.data:
        fields.update(function_name="", function_signature="", contract_call_args={})
    elif abi_for is not None and tx.to is not None:
        contract = abi_for(tx.to.lower())
        call = abi.decode_call(contract, tx.data) if contract is not None else None
        if call is not None:
            fields.update(call)
    return fields


def _transaction(data: bytes, from_address: Callable[[], str], abi_for: AbiFor | None) -> dict[str, Any]:
    try:
        tx = ethtx.decode_unsigned_transaction(data)
    except InvalidRequest:
        return {}
    return transaction_fields(tx, from_address(), abi_for)


def _authorization(items: list[rlp.RlpItem]) -> dict[str, Any]:
    if len(items) != 3:
        return {}
    try:
        chain_id = rlp.decode_uint(items[0], "chain_id")
        address = rlp.decode_bytes(items[1], "address", length=20)
        nonce = rlp.decode_uint(items[2], "nonce", max_bits=64)
    except InvalidRequest:
        return {}
    return {"address": "0x" + address.hex(), "chain_id": chain_id, "nonce": nonce}


def recognise(data: bytes, from_address: Callable[[], str], abi_for: AbiFor | None = None) -> dict[str, Any]:
    """The `eth` namespace entries that `data` opens (see the module docstring)."""
    if not data:
        return {}
    first = data[0]
    if first == EIP191_PREFIX:
        if len(data) >= 2 and data[1] == EIP712_VERSION:
            return {"eip_712": {}}
        return {}
    if first >= 0xC0:
        return {"tx": _transaction(data, from_address, abi_for)} if _rlp_list(data) is not None else {}
    if first < 0x80:
        items = _rlp_list(data[1:])
        if items is None:
            return {}
        if first == EIP7702_MAGIC:
            return {"eip_7702_authorization": _authorization(items)}
        return {"tx": _transaction(data, from_address, abi_for)}
    return {}


__all__ = ["recognise", "transaction_fields"]
