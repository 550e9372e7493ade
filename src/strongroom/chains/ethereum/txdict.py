"""Unsigned transactions from the dicts Ethereum tooling writes: web3.py / eth-account dicts and JSON-RPC objects.

Keys are camelCase (``chainId``, ``gasPrice``, ``maxFeePerGas``, ``maxPriorityFeePerGas``,
``accessList``); ``input`` is accepted for ``data`` (JSON-RPC's name). Quantities are ints, ``0x``
hex strings or decimal strings; ``data`` is bytes or ``0x`` hex; addresses are ``0x`` hex (mixed
case must be a valid EIP-55 checksum). ``from`` is not part of the transaction: the caller
compares it with the signing key (:func:`sender`).

The type is ``type`` when given, else EIP-1559 when a 1559 fee is present, EIP-2930 when an access
list is, and legacy otherwise (pre-EIP-155 only when ``chainId`` is absent). Types 0, 1 and 2 are
built here; blob and set-code transactions are signed from their encoded bytes instead. Every
defect raises :class:`~strongroom.errors.InvalidRequest` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from strongroom.chains.ethereum import tx as ethtx
from strongroom.chains.ethereum.address import is_address, to_checksum
from strongroom.errors import InvalidRequest

_HEX_QUANTITY: Final = re.compile(r"0[xX][0-9a-fA-F]{1,64}")
_DECIMAL: Final = re.compile(r"[0-9]{1,78}", re.ASCII)
_HEX_DATA: Final = re.compile(r"0[xX](?:[0-9a-fA-F]{2})*")
_KNOWN: Final = frozenset(
    {
        "type",
        "chainId",
        "nonce",
        "gas",
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "to",
        "value",
        "data",
        "input",
        "accessList",
        "from",
    }
)
_U64: Final = (1 << 64) - 1
_U256: Final = (1 << 256) - 1


def _quantity(tx: Mapping[str, Any], key: str, *, default: int | None = None, bound: int = _U256) -> int:
    value = tx.get(key, default)
    if value is None:
        raise InvalidRequest(f"transaction field `{key}` is required")
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _HEX_QUANTITY.fullmatch(value):
        number = int(value, 16)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        raise InvalidRequest(f"transaction field `{key}` must be an integer or 0x hex quantity")
    if not 0 <= number <= bound:
        raise InvalidRequest(f"transaction field `{key}` is out of range")
    return number


def _optional(tx: Mapping[str, Any], key: str) -> int | None:
    return _quantity(tx, key) if tx.get(key) is not None else None


def _data(value: Any, what: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and _HEX_DATA.fullmatch(value):
        return bytes.fromhex(value[2:])
    raise InvalidRequest(f"transaction field `{what}` must be 0x hex bytes")


def address(value: Any, what: str) -> str:
    """A 20-byte address (bytes or 0x hex) in its EIP-55 form."""
    if isinstance(value, bytes | bytearray) and len(value) == 20:
        value = "0x" + bytes(value).hex()
    if not isinstance(value, str) or not is_address(value):
        raise InvalidRequest(f"`{what}` must be a 20-byte 0x address (mixed case must be a valid EIP-55 checksum)")
    return to_checksum(value)


def sender(tx: Mapping[str, Any]) -> str | None:
    """The checksummed ``from`` of the dict, if it has one."""
    value = tx.get("from")
    return None if value is None else address(value, "from")


def _access_list(value: Any) -> tuple[ethtx.AccessListEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidRequest("transaction field `accessList` must be a list")
    entries = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise InvalidRequest(f"`accessList[{i}]` must be an object with address and storageKeys")
        keys = entry.get("storageKeys", ())
        if not isinstance(keys, list | tuple):
            raise InvalidRequest(f"`accessList[{i}].storageKeys` must be a list")
        slots = tuple(_data(k, f"accessList[{i}].storageKeys") for k in keys)
        if any(len(k) != 32 for k in slots):
            raise InvalidRequest(f"`accessList[{i}].storageKeys` must be 32 bytes each")
        entries.append(ethtx.AccessListEntry(address(entry.get("address"), f"accessList[{i}].address"), slots))
    return tuple(entries)


def transaction_from_dict(tx: Mapping[str, Any]) -> ethtx.EthTransaction:
    """The unsigned transaction a tooling dict describes (see the module docstring)."""
    if not isinstance(tx, Mapping):
        raise InvalidRequest("a transaction must be an object")
    unknown = sorted(str(k) for k in set(tx) - _KNOWN)
    if unknown:
        raise InvalidRequest(f"unsupported transaction fields: {', '.join(unknown)[:200]}")
    if tx.get("data") is not None and tx.get("input") is not None and tx["data"] != tx["input"]:
        raise InvalidRequest("transaction fields `data` and `input` differ")
    fee_1559 = tx.get("maxFeePerGas") is not None or tx.get("maxPriorityFeePerGas") is not None
    if tx.get("type") is not None:
        tx_type = _quantity(tx, "type", bound=0xFF)
    elif fee_1559:
        tx_type = ethtx.TYPE_DYNAMIC_FEE
    elif tx.get("accessList") is not None:
        tx_type = ethtx.TYPE_ACCESS_LIST
    else:
        tx_type = ethtx.TYPE_LEGACY
    if tx_type not in (ethtx.TYPE_LEGACY, ethtx.TYPE_ACCESS_LIST, ethtx.TYPE_DYNAMIC_FEE):
        raise InvalidRequest(f"transaction type {tx_type} cannot be built from fields here (0, 1 and 2 can)")
    to = tx.get("to")
    chain_id = _optional(tx, "chainId") if tx_type == ethtx.TYPE_LEGACY else _quantity(tx, "chainId")
    common: dict[str, Any] = {
        "tx_type": tx_type,
        "chain_id": chain_id,
        "nonce": _quantity(tx, "nonce", bound=_U64),
        "gas": _quantity(tx, "gas", bound=_U64),
        "to": None if to in (None, "", b"") else address(to, "to"),
        "value": _quantity(tx, "value", default=0),
        "data": _data(tx.get("data", tx.get("input")), "data"),
    }
    if tx_type == ethtx.TYPE_DYNAMIC_FEE:
        if tx.get("gasPrice") is not None:
            raise InvalidRequest("an EIP-1559 transaction has maxFeePerGas and maxPriorityFeePerGas, not gasPrice")
        return ethtx.EthTransaction(
            **common,
            max_fee_per_gas=_quantity(tx, "maxFeePerGas"),
            max_priority_fee_per_gas=_quantity(tx, "maxPriorityFeePerGas"),
            access_list=_access_list(tx.get("accessList")),
        )
    if fee_1559:
        raise InvalidRequest(f"a type-{tx_type} transaction has gasPrice, not maxFeePerGas/maxPriorityFeePerGas")
    if tx_type == ethtx.TYPE_LEGACY and tx.get("accessList"):
        raise InvalidRequest("a legacy transaction has no accessList")
    return ethtx.EthTransaction(
        **common, gas_price=_quantity(tx, "gasPrice"), access_list=_access_list(tx.get("accessList"))
    )


__all__ = ["address", "sender", "transaction_from_dict"]
