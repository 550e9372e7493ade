"""Unsigned Ethereum transactions, as ``sign_transaction`` receives them (``TRANSACTION_TYPE_ETHEREUM``).

Accepted encodings (hex, with or without ``0x``, either case):

- legacy, EIP-155: ``rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])`` (chainId > 0);
- legacy, pre-EIP-155: ``rlp([nonce, gasPrice, gas, to, value, data])`` (chain_id is None);
- EIP-2930 ``0x01 || rlp([chainId, nonce, gasPrice, gas, to, value, data, accessList])``;
- EIP-1559 ``0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data,
  accessList])``;
- EIP-4844 ``0x03 || rlp([... as 1559 ..., maxFeePerBlobGas, blobVersionedHashes])`` (the body only;
  the network form with blobs, commitments and proofs is rejected);
- EIP-7702 ``0x04 || rlp([... as 1559 ..., authorizationList])``.

Already-signed inputs are rejected rather than re-signed. The rule: a typed transaction is
signed when its list has the three extra fields (yParity, r, s); a 9-field legacy list is signed
when its r or s is non-zero (the unsigned EIP-155 form carries ``chainId, 0, 0``).
:func:`parse_signed_transaction` also requires the signature's r and s to lie in [1, n-1], the
rule ``serialize_signed`` applies.

Decoding is strict: canonical RLP only, integers without leading zero bytes and within their
protocol width (nonce and gas 64 bits, quantities 256 bits), ``to`` empty or 20 bytes, storage
keys and blob hashes 32 bytes. Blob transactions need a ``to`` and at least one blob hash;
7702 transactions need a ``to`` and at least one authorization. Every failure raises
:class:`~strongroom.errors.InvalidRequest` with a message naming the defect.

``policy_fields`` always returns all twelve ``eth.tx`` keys; a field the transaction type does
not carry is ``None`` (``gas_price`` on TYPE_2/3/4, the 1559 fee fields on LEGACY/TYPE_1,
``max_fee_per_blob_gas`` outside TYPE_3, ``chain_id`` on a pre-EIP-155 legacy transaction, ``to``
on a contract creation). Addresses and ``data`` are lowercase ``0x`` hex; quantities are ints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import checksum_address
from strongroom.crypto.keccak import keccak256
from strongroom.crypto.secp256k1 import N, RecoverableSignature
from strongroom.errors import InvalidRequest

MAX_TRANSACTION_BYTES: Final = 128 * 1024
"""Largest accepted unsigned transaction (geth's txpool limit for non-blob transactions)."""

TYPE_LEGACY: Final = 0
TYPE_ACCESS_LIST: Final = 1
TYPE_DYNAMIC_FEE: Final = 2
TYPE_BLOB: Final = 3
TYPE_SET_CODE: Final = 4

POLICY_TYPE_NAMES: Final[dict[int, str]] = {0: "LEGACY", 1: "TYPE_1", 2: "TYPE_2", 3: "TYPE_3", 4: "TYPE_4"}

_TEMPO_TYPE: Final = 0x76
_HEX_RE: Final = re.compile(r"(?:0[xX])?((?:[0-9a-fA-F]{2})*)")
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_UNSIGNED_FIELD_COUNTS: Final[dict[int, int]] = {1: 8, 2: 9, 3: 11, 4: 10}
_U64: Final = 64
_U256: Final = 256
_WHAT: Final = "unsigned transaction"


def _fail(reason: str) -> InvalidRequest:
    return InvalidRequest(f"{_WHAT} {reason}")


@dataclass(frozen=True, slots=True)
class AccessListEntry:
    """One EIP-2930 access-list entry: an address and the storage keys it pre-warms."""

    address: str
    storage_keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Authorization:
    """One signed EIP-7702 authorization tuple as carried in a type-4 transaction."""

    chain_id: int
    address: str
    nonce: int
    y_parity: int
    r: int
    s: int


@dataclass(frozen=True, slots=True)
class EthTransaction:
    """A decoded unsigned Ethereum transaction.

    ``to`` is EIP-55 checksummed (None for a contract creation); quantities are ints; fields a
    type does not carry are None or empty. ``chain_id`` is None only for pre-EIP-155 legacy.
    """

    tx_type: int
    chain_id: int | None
    nonce: int
    gas: int
    to: str | None
    value: int
    data: bytes
    gas_price: int | None = None
    max_priority_fee_per_gas: int | None = None
    max_fee_per_gas: int | None = None
    access_list: tuple[AccessListEntry, ...] = ()
    max_fee_per_blob_gas: int | None = None
    blob_versioned_hashes: tuple[bytes, ...] = ()
    authorization_list: tuple[Authorization, ...] = field(default=())

    @property
    def type_name(self) -> str:
        """The policy-language name of the type: LEGACY, TYPE_1 … TYPE_4."""
        return POLICY_TYPE_NAMES[self.tx_type]

    def _fields(self) -> list[rlp.RlpEncodable]:
        """The unsigned field list (without the EIP-155 chainId, 0, 0 suffix for legacy)."""
        uint = rlp.encode_uint
        to = bytes.fromhex(self.to[2:]) if self.to is not None else b""
        access: list[rlp.RlpEncodable] = [
            [bytes.fromhex(e.address[2:]), list(e.storage_keys)] for e in self.access_list
        ]
        if self.tx_type == TYPE_LEGACY:
            return [uint(self.nonce), uint(_req(self.gas_price)), uint(self.gas), to, uint(self.value), self.data]
        chain = uint(_req(self.chain_id))
        if self.tx_type == TYPE_ACCESS_LIST:
            return [
                chain,
                uint(self.nonce),
                uint(_req(self.gas_price)),
                uint(self.gas),
                to,
                uint(self.value),
                self.data,
                access,
            ]
        out: list[rlp.RlpEncodable] = [
            chain,
            uint(self.nonce),
            uint(_req(self.max_priority_fee_per_gas)),
            uint(_req(self.max_fee_per_gas)),
            uint(self.gas),
            to,
            uint(self.value),
            self.data,
            access,
        ]
        if self.tx_type == TYPE_BLOB:
            out += [uint(_req(self.max_fee_per_blob_gas)), list(self.blob_versioned_hashes)]
        elif self.tx_type == TYPE_SET_CODE:
            out.append(
                [
                    [
                        uint(a.chain_id),
                        bytes.fromhex(a.address[2:]),
                        uint(a.nonce),
                        uint(a.y_parity),
                        uint(a.r),
                        uint(a.s),
                    ]
                    for a in self.authorization_list
                ]
            )
        return out

    def _envelope(self, fields: list[rlp.RlpEncodable]) -> bytes:
        body = rlp.encode(fields)
        return body if self.tx_type == TYPE_LEGACY else bytes([self.tx_type]) + body

    def encode_unsigned(self) -> bytes:
        """The canonical unsigned serialisation (what a client sends, as bytes)."""
        fields = self._fields()
        if self.tx_type == TYPE_LEGACY and self.chain_id is not None:
            fields += [rlp.encode_uint(self.chain_id), b"", b""]
        return self._envelope(fields)

    def signing_hash(self) -> bytes:
        """Keccak-256 of the payload the sender signs (EIP-155 / EIP-2718 rules)."""
        return keccak256(self.encode_unsigned())

    def serialize_signed(self, sig: RecoverableSignature) -> bytes:
        """The broadcastable signed transaction for a signature over :meth:`signing_hash`."""
        if sig.v not in (0, 1):
            raise ValueError("signature recovery id must be 0 or 1")
        if not (0 < sig.r < N and 0 < sig.s < N):
            raise ValueError("signature r and s must be in [1, n-1]")
        fields = self._fields()
        uint = rlp.encode_uint
        if self.tx_type == TYPE_LEGACY:
            v = 27 + sig.v if self.chain_id is None else self.chain_id * 2 + 35 + sig.v
            fields += [uint(v), uint(sig.r), uint(sig.s)]
        else:
            fields += [uint(sig.v), uint(sig.r), uint(sig.s)]
        return self._envelope(fields)

    def policy_fields(self, from_address: str) -> dict[str, Any]:
        """The ``eth.tx`` map for the policy engine (see the module docstring for the conventions)."""
        if not isinstance(from_address, str) or _ADDRESS_RE.fullmatch(from_address) is None:
            raise InvalidRequest("sender address must be 0x followed by 40 hex characters")
        return {
            "from": from_address.lower(),
            "to": self.to.lower() if self.to is not None else None,
            "data": "0x" + self.data.hex(),
            "value": self.value,
            "gas": self.gas,
            "gas_price": self.gas_price,
            "chain_id": self.chain_id,
            "nonce": self.nonce,
            "max_fee_per_gas": self.max_fee_per_gas,
            "max_priority_fee_per_gas": self.max_priority_fee_per_gas,
            "max_fee_per_blob_gas": self.max_fee_per_blob_gas,
            "type": self.type_name,
        }


@dataclass(frozen=True, slots=True)
class SignedEthTransaction:
    """A decoded signed transaction: the unsigned part and its signature (``v`` = y-parity)."""

    tx: EthTransaction
    signature: RecoverableSignature


def _req(value: int | None) -> int:
    if value is None:  # pragma: no cover - the parser always fills the fields of each type
        raise ValueError("transaction field missing for its type")
    return value


def _uint(item: rlp.RlpItem, what: str, bits: int = _U256) -> int:
    return rlp.decode_uint(item, what, max_bits=bits)


def _to(item: rlp.RlpItem, *, required: bool) -> str | None:
    raw = rlp.decode_bytes(item, "to")
    if not raw:
        if required:
            raise rlp.RlpError("`to` is required for this transaction type (no contract creation)")
        return None
    if len(raw) != 20:
        raise rlp.RlpError(f"`to` must be empty or 20 bytes, got {len(raw)}")
    return checksum_address(raw)


def _access_list(item: rlp.RlpItem) -> tuple[AccessListEntry, ...]:
    entries = []
    for i, entry in enumerate(rlp.decode_list(item, "accessList")):
        pair = rlp.decode_list(entry, f"accessList[{i}]")
        if len(pair) != 2:
            raise rlp.RlpError(f"`accessList[{i}]` must have 2 elements, got {len(pair)}")
        address = rlp.decode_bytes(pair[0], f"accessList[{i}].address", length=20)
        keys = tuple(
            rlp.decode_bytes(key, f"accessList[{i}].storageKeys[{j}]", length=32)
            for j, key in enumerate(rlp.decode_list(pair[1], f"accessList[{i}].storageKeys"))
        )
        entries.append(AccessListEntry(address=checksum_address(address), storage_keys=keys))
    return tuple(entries)


def _authorization_list(item: rlp.RlpItem) -> tuple[Authorization, ...]:
    out = []
    for i, entry in enumerate(rlp.decode_list(item, "authorizationList")):
        what = f"authorizationList[{i}]"
        parts = rlp.decode_list(entry, what)
        if len(parts) != 6:
            raise rlp.RlpError(f"`{what}` must have 6 elements, got {len(parts)}")
        out.append(
            Authorization(
                chain_id=_uint(parts[0], f"{what}.chainId"),
                address=checksum_address(rlp.decode_bytes(parts[1], f"{what}.address", length=20)),
                nonce=_uint(parts[2], f"{what}.nonce", _U64),
                y_parity=_uint(parts[3], f"{what}.yParity", 8),
                r=_uint(parts[4], f"{what}.r"),
                s=_uint(parts[5], f"{what}.s"),
            )
        )
    if not out:
        raise rlp.RlpError("`authorizationList` must not be empty")
    return tuple(out)


def _blob_hashes(item: rlp.RlpItem) -> tuple[bytes, ...]:
    hashes = tuple(
        rlp.decode_bytes(h, f"blobVersionedHashes[{i}]", length=32)
        for i, h in enumerate(rlp.decode_list(item, "blobVersionedHashes"))
    )
    if not hashes:
        raise rlp.RlpError("`blobVersionedHashes` must not be empty")
    return hashes


def _signature(items: list[rlp.RlpItem], *, legacy: bool) -> tuple[int, int, int]:
    v = _uint(items[0], "v")
    r = _uint(items[1], "r")
    s = _uint(items[2], "s")
    if not legacy and v not in (0, 1):
        raise rlp.RlpError("`yParity` must be 0 or 1")
    return v, r, s


def _check_signature_range(r: int, s: int) -> None:
    # The same rule as serialize_signed: a signed transaction whose r or s is 0 or not below
    # the curve order carries no signature at all (nothing can be recovered from it).
    if not (0 < r < N and 0 < s < N):
        raise rlp.RlpError("signature `r` and `s` must be in [1, n-1]")


def _decode_legacy(items: list[rlp.RlpItem], *, signed: bool) -> tuple[EthTransaction, tuple[int, int, int] | None]:
    if len(items) not in (6, 9):
        raise rlp.RlpError(f"legacy transaction must have 6 or 9 fields, got {len(items)}")
    common: dict[str, Any] = {
        "tx_type": TYPE_LEGACY,
        "nonce": _uint(items[0], "nonce", _U64),
        "gas_price": _uint(items[1], "gasPrice"),
        "gas": _uint(items[2], "gas", _U64),
        "to": _to(items[3], required=False),
        "value": _uint(items[4], "value"),
        "data": rlp.decode_bytes(items[5], "data"),
    }
    if len(items) == 6:
        if signed:
            raise rlp.RlpError("signed legacy transaction must have 9 fields")
        return EthTransaction(chain_id=None, **common), None
    v, r, s = _signature(items[6:], legacy=True)
    if not signed:
        if r or s:
            raise InvalidRequest(
                f"{_WHAT} is already signed (legacy r/s are set); send the unsigned form with chainId, 0, 0"
            )
        if v == 0:
            raise rlp.RlpError("EIP-155 chain id must not be 0")
        return EthTransaction(chain_id=v, **common), None
    _check_signature_range(r, s)
    if v in (27, 28):
        return EthTransaction(chain_id=None, **common), (v - 27, r, s)
    if v < 37:
        raise rlp.RlpError(f"legacy `v` {v} is neither 27/28 nor an EIP-155 value")
    return EthTransaction(chain_id=(v - 35) // 2, **common), ((v - 35) % 2, r, s)


def _decode_typed(
    tx_type: int, items: list[rlp.RlpItem], *, signed: bool
) -> tuple[EthTransaction, tuple[int, int, int] | None]:
    unsigned_count = _UNSIGNED_FIELD_COUNTS[tx_type]
    if not signed and len(items) == unsigned_count + 3:
        raise InvalidRequest(f"{_WHAT} is already signed (type {tx_type} with yParity, r, s); send the unsigned form")
    expected = unsigned_count + 3 if signed else unsigned_count
    if len(items) != expected:
        raise rlp.RlpError(f"type {tx_type} transaction must have {expected} fields, got {len(items)}")
    sig = _signature(items[unsigned_count:], legacy=False) if signed else None
    if sig is not None:
        _check_signature_range(sig[1], sig[2])
    chain_id = _uint(items[0], "chainId")
    nonce = _uint(items[1], "nonce", _U64)
    if tx_type == TYPE_ACCESS_LIST:
        tx = EthTransaction(
            tx_type=tx_type,
            chain_id=chain_id,
            nonce=nonce,
            gas_price=_uint(items[2], "gasPrice"),
            gas=_uint(items[3], "gas", _U64),
            to=_to(items[4], required=False),
            value=_uint(items[5], "value"),
            data=rlp.decode_bytes(items[6], "data"),
            access_list=_access_list(items[7]),
        )
        return tx, sig
    extra: dict[str, Any] = {}
    if tx_type == TYPE_BLOB:
        extra = {
            "max_fee_per_blob_gas": _uint(items[9], "maxFeePerBlobGas"),
            "blob_versioned_hashes": _blob_hashes(items[10]),
        }
    elif tx_type == TYPE_SET_CODE:
        extra = {"authorization_list": _authorization_list(items[9])}
    tx = EthTransaction(
        tx_type=tx_type,
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=_uint(items[2], "maxPriorityFeePerGas"),
        max_fee_per_gas=_uint(items[3], "maxFeePerGas"),
        gas=_uint(items[4], "gas", _U64),
        to=_to(items[5], required=tx_type in (TYPE_BLOB, TYPE_SET_CODE)),
        value=_uint(items[6], "value"),
        data=rlp.decode_bytes(items[7], "data"),
        access_list=_access_list(items[8]),
        **extra,
    )
    return tx, sig


def _to_bytes(raw: str | bytes, what: str) -> bytes:
    if isinstance(raw, bytes | bytearray):
        data = bytes(raw)
    elif isinstance(raw, str):
        if len(raw) > 2 * MAX_TRANSACTION_BYTES + 2:
            raise InvalidRequest(f"{what} is larger than {MAX_TRANSACTION_BYTES} bytes")
        match = _HEX_RE.fullmatch(raw)
        if match is None:
            raise InvalidRequest(f"{what} must be hex (an even number of hex digits, optional 0x)")
        data = bytes.fromhex(match.group(1))
    else:
        raise InvalidRequest(f"{what} must be a hex string")
    if not data:
        raise InvalidRequest(f"{what} is empty")
    if len(data) > MAX_TRANSACTION_BYTES:
        raise InvalidRequest(f"{what} is larger than {MAX_TRANSACTION_BYTES} bytes")
    return data


def _decode(data: bytes, *, signed: bool, what: str) -> tuple[EthTransaction, tuple[int, int, int] | None]:
    first = data[0]
    if first >= 0xC0:
        tx_type, body = TYPE_LEGACY, data
    elif first in _UNSIGNED_FIELD_COUNTS:
        tx_type, body = first, data[1:]
        if not body:
            raise InvalidRequest(f"{what} has a type byte but no body")
    elif first == _TEMPO_TYPE:
        raise InvalidRequest(f"{what} is a Tempo (0x76) transaction; use TRANSACTION_TYPE_TEMPO")
    elif first < 0x80:
        raise InvalidRequest(f"{what} has unsupported type 0x{first:02x}")
    else:
        raise InvalidRequest(f"{what} is neither a typed envelope nor an RLP list (first byte 0x{first:02x})")
    try:
        decoded = rlp.decode(body, max_size=MAX_TRANSACTION_BYTES)
    except rlp.RlpError as exc:
        raise InvalidRequest(f"{what} is not valid RLP: {exc.message}") from exc
    if not isinstance(decoded, list):
        raise InvalidRequest(f"{what} is not an RLP list")
    if tx_type == TYPE_BLOB and decoded and isinstance(decoded[0], list):
        raise InvalidRequest(f"{what} is a blob transaction with sidecars; send the body without blobs")
    try:
        if tx_type == TYPE_LEGACY:
            return _decode_legacy(decoded, signed=signed)
        return _decode_typed(tx_type, decoded, signed=signed)
    except rlp.RlpError as exc:
        raise InvalidRequest(f"{what} is malformed: {exc.message}") from exc


def decode_unsigned_transaction(raw: bytes) -> EthTransaction:
    """Decode unsigned transaction bytes (see the module docstring for the accepted forms)."""
    tx, _ = _decode(_to_bytes(raw, _WHAT), signed=False, what=_WHAT)
    return tx


def parse_unsigned_transaction(unsigned: str) -> EthTransaction:
    """Parse ``unsignedTransaction`` hex (with or without ``0x``) from a ``sign_transaction`` request."""
    return decode_unsigned_transaction(_to_bytes(unsigned, _WHAT))


def parse_signed_transaction(signed: str | bytes) -> SignedEthTransaction:
    """Decode a signed transaction (hex or bytes), e.g. to check what :meth:`serialize_signed` produced."""
    what = "signed transaction"
    tx, sig = _decode(_to_bytes(signed, what), signed=True, what=what)
    if sig is None:  # pragma: no cover - _decode always returns a signature when signed=True
        raise InvalidRequest(f"{what} carries no signature")
    y_parity, r, s = sig
    return SignedEthTransaction(tx=tx, signature=RecoverableSignature(r=r, s=s, v=y_parity))


__all__ = [
    "MAX_TRANSACTION_BYTES",
    "POLICY_TYPE_NAMES",
    "TYPE_ACCESS_LIST",
    "TYPE_BLOB",
    "TYPE_DYNAMIC_FEE",
    "TYPE_LEGACY",
    "TYPE_SET_CODE",
    "AccessListEntry",
    "Authorization",
    "EthTransaction",
    "SignedEthTransaction",
    "decode_unsigned_transaction",
    "parse_signed_transaction",
    "parse_unsigned_transaction",
]
