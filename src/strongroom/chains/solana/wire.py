"""Solana's wire format: legacy and v0 messages, and the transactions that carry them.

A transaction is ``signatures || message``:

- ``signatures``: a compact-u16 count, then that many 64-byte Ed25519 signatures (all zero for a
  slot not signed yet, as ``@solana/web3.js`` serialises with ``requireAllSignatures: false``);
- ``message``, legacy: ``header (3 bytes) || account keys || recent blockhash (32) || instructions``;
  v0: the byte ``0x80`` first (the high bit marks a versioned message, the low seven bits are the
  version), then the legacy layout, then the address table lookups.

The header is ``num_required_signatures, num_readonly_signed_accounts,
num_readonly_unsigned_accounts``; the first ``num_required_signatures`` account keys sign, the
last ``num_readonly_signed`` of them are read-only, and so are the last ``num_readonly_unsigned``
keys. A compact-u16 is 1 to 3 bytes, seven bits each, least significant first, the high bit
meaning "more"; like the validator we accept only the shortest encoding of a value and nothing
above 0xffff.

Parsing is strict, with the checks the validator's `sanitize` applies to the layout: at least one
signer, header counts within the account keys, the fee payer writable, no duplicate account key,
every index in range (lookup-table accounts count after the static keys), a program id that is a
static key other than the fee payer, each lookup table used for at least one account, at most 256
accounts in all, a transaction's signature count equal to the header's, and no byte left over.
A transaction is at most 1232 bytes (the network's packet limit). Every defect raises
:class:`~strongroom.errors.InvalidRequest` naming it; nothing else escapes the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from strongroom.crypto.base58 import b58encode
from strongroom.errors import InvalidRequest

PACKET_DATA_SIZE: Final = 1232
"""Largest transaction the network carries (IPv6 MTU minus headers); larger ones cannot be sent."""
PUBKEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
MAX_ACCOUNTS: Final = 256  # instruction account indexes are one byte
VERSION_PREFIX: Final = 0x80
EMPTY_SIGNATURE: Final = bytes(SIGNATURE_BYTES)


@dataclass(frozen=True, slots=True)
class Header:
    num_required_signatures: int
    num_readonly_signed: int
    num_readonly_unsigned: int


@dataclass(frozen=True, slots=True)
class Instruction:
    program_id_index: int
    accounts: tuple[int, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class AddressTableLookup:
    account_key: bytes
    writable_indexes: tuple[int, ...]
    readonly_indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message; `raw` is exactly the bytes that were parsed (what signers sign)."""

    version: int | None  # None: legacy; 0: v0
    header: Header
    account_keys: tuple[bytes, ...]
    recent_blockhash: bytes
    instructions: tuple[Instruction, ...]
    address_table_lookups: tuple[AddressTableLookup, ...]
    raw: bytes

    @property
    def signer_keys(self) -> tuple[bytes, ...]:
        return self.account_keys[: self.header.num_required_signatures]

    @property
    def loaded_writable(self) -> int:
        return sum(len(t.writable_indexes) for t in self.address_table_lookups)

    @property
    def loaded_count(self) -> int:
        return self.loaded_writable + sum(len(t.readonly_indexes) for t in self.address_table_lookups)

    def is_signer(self, index: int) -> bool:
        return index < self.header.num_required_signatures

    def is_writable(self, index: int) -> bool:
        """Whether account `index` (static keys first, then loaded: writable ones, then read-only) is writable."""
        h, n = self.header, len(self.account_keys)
        if index < h.num_required_signatures:
            return index < h.num_required_signatures - h.num_readonly_signed
        if index < n:
            return index < n - h.num_readonly_unsigned
        return index - n < self.loaded_writable

    def lookup_of(self, index: int) -> tuple[bytes, int, bool]:
        """For a loaded account index: (table key, index inside the table, writable)."""
        pos = index - len(self.account_keys)
        for writable in (True, False):
            for table in self.address_table_lookups:
                indexes = table.writable_indexes if writable else table.readonly_indexes
                if pos < len(indexes):
                    return table.account_key, indexes[pos], writable
                pos -= len(indexes)
        raise IndexError(index)  # unreachable for a parsed message: indexes were checked


@dataclass(frozen=True, slots=True)
class Transaction:
    signatures: tuple[bytes, ...]
    message: Message

    def serialize(self) -> bytes:
        return encode_compact_u16(len(self.signatures)) + b"".join(self.signatures) + self.message.raw

    def signer_index(self, public_key: bytes) -> int | None:
        """The signature slot of `public_key`, or None when it is not a required signer."""
        try:
            return self.message.signer_keys.index(public_key)
        except ValueError:
            return None

    def with_signature(self, index: int, signature: bytes) -> Transaction:
        if len(signature) != SIGNATURE_BYTES or not 0 <= index < len(self.signatures):
            raise ValueError("bad signature or slot")
        sigs = list(self.signatures)
        sigs[index] = signature
        return replace(self, signatures=tuple(sigs))


def encode_compact_u16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError("compact-u16 out of range")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise InvalidRequest(f"Solana {what} is truncated: needs {n} bytes at offset {self.pos}")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def compact_u16(self, what: str) -> int:
        value = 0
        for i in range(3):
            byte = self.u8(f"length of {what}")
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i and byte == 0:
                    raise InvalidRequest(f"length of Solana {what} is not the shortest compact-u16 encoding")
                if value > 0xFFFF:
                    raise InvalidRequest(f"length of Solana {what} exceeds a compact-u16")
                return value
        raise InvalidRequest(f"length of Solana {what} exceeds a compact-u16")

    def index_list(self, what: str) -> tuple[int, ...]:
        return tuple(self.take(self.compact_u16(what), what))


def _read_message(r: _Reader) -> Message:
    start = r.pos
    version: int | None = None
    first = r.u8("message header")
    if first & VERSION_PREFIX:
        version = first & 0x7F
        if version != 0:
            raise InvalidRequest(f"Solana message version {version} is not supported (legacy and v0 are)")
        first = r.u8("message header")
    header = Header(first, r.u8("message header"), r.u8("message header"))
    count = r.compact_u16("account keys")
    # One bounds check for all keys: bytes that are no message (most payloads) fail here at once.
    packed = r.take(PUBKEY_BYTES * count, f"account keys ({count})")
    keys = tuple(packed[i : i + PUBKEY_BYTES] for i in range(0, len(packed), PUBKEY_BYTES))
    blockhash = r.take(PUBKEY_BYTES, "recent blockhash")
    instructions = []
    for i in range(r.compact_u16("instructions")):
        what = f"instruction {i}"
        program = r.u8(what)
        accounts = r.index_list(f"accounts of {what}")
        data = r.take(r.compact_u16(f"data of {what}"), f"data of {what}")
        instructions.append(Instruction(program, accounts, data))
    lookups = []
    if version is not None:
        for i in range(r.compact_u16("address table lookups")):
            what = f"address table lookup {i}"
            key = r.take(PUBKEY_BYTES, what)
            lookups.append(
                AddressTableLookup(
                    key, r.index_list(f"writable indexes of {what}"), r.index_list(f"read-only indexes of {what}")
                )
            )
    message = Message(version, header, keys, blockhash, tuple(instructions), tuple(lookups), r.data[start : r.pos])
    _sanitize(message)
    return message


def _sanitize(m: Message) -> None:
    h, keys = m.header, m.account_keys
    if h.num_required_signatures == 0:
        raise InvalidRequest("Solana message has no signer (num_required_signatures is 0)")
    if h.num_readonly_signed >= h.num_required_signatures:
        raise InvalidRequest("Solana message header makes the fee payer read-only")
    if h.num_required_signatures + h.num_readonly_unsigned > len(keys):
        raise InvalidRequest(
            f"Solana message header counts {h.num_required_signatures} signers and "
            f"{h.num_readonly_unsigned} read-only unsigned accounts but has {len(keys)} account keys"
        )
    if len(set(keys)) != len(keys):
        raise InvalidRequest("Solana message lists an account key twice")
    for i, table in enumerate(m.address_table_lookups):
        if not table.writable_indexes and not table.readonly_indexes:
            raise InvalidRequest(f"Solana address table lookup {i} loads no account")
    total = len(keys) + m.loaded_count
    if total > MAX_ACCOUNTS:
        raise InvalidRequest(f"Solana message uses {total} accounts; at most {MAX_ACCOUNTS} can be indexed")
    for i, ins in enumerate(m.instructions):
        if ins.program_id_index == 0 or ins.program_id_index >= len(keys):
            raise InvalidRequest(
                f"Solana instruction {i} has program index {ins.program_id_index}, "
                "which is not a static account key other than the fee payer"
            )
        bad = [a for a in ins.accounts if a >= total]
        if bad:
            raise InvalidRequest(f"Solana instruction {i} uses account index {bad[0]}, beyond the {total} accounts")


def _check_size(data: bytes) -> None:
    if len(data) > PACKET_DATA_SIZE:
        raise InvalidRequest(
            f"Solana transaction of {len(data)} bytes exceeds the network's limit of {PACKET_DATA_SIZE} bytes"
        )


def _no_trailing(r: _Reader, what: str) -> None:
    if r.pos != len(r.data):
        raise InvalidRequest(f"{len(r.data) - r.pos} trailing bytes after the Solana {what}")


def parse_message(data: bytes) -> Message:
    """A legacy or v0 message, the whole of `data`."""
    _check_size(data)
    r = _Reader(data)
    message = _read_message(r)
    _no_trailing(r, "message")
    return message


def parse_transaction(data: bytes) -> Transaction:
    """A transaction (signature slots, then a legacy or v0 message), the whole of `data`."""
    _check_size(data)
    r = _Reader(data)
    count = r.compact_u16("signatures")
    signatures = tuple(r.take(SIGNATURE_BYTES, f"signature {i}") for i in range(count))
    message = _read_message(r)
    _no_trailing(r, "transaction")
    if count != message.header.num_required_signatures:
        raise InvalidRequest(
            f"Solana transaction has {count} signature slots but its message requires "
            f"{message.header.num_required_signatures}"
        )
    return Transaction(signatures, message)


def address(key: bytes) -> str:
    """A public key as Solana writes it (base58)."""
    return b58encode(key)


__all__ = [
    "EMPTY_SIGNATURE",
    "PACKET_DATA_SIZE",
    "AddressTableLookup",
    "Header",
    "Instruction",
    "Message",
    "Transaction",
    "address",
    "encode_compact_u16",
    "parse_message",
    "parse_transaction",
]
