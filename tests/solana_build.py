"""Builds Solana messages and transactions for tests (the wire format written out, nothing checked).

`tests/unit/chains/test_chains_solana.py` rebuilds @solana/web3.js's vectors with it byte for byte,
so the HTTP tests can build transactions for keys the daemon creates at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.chains.solana.wire import encode_compact_u16
from strongroom.crypto.base58 import b58decode

SYSTEM_PROGRAM = bytes(32)
TOKEN_PROGRAM = b58decode("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM = b58decode("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
MEMO_PROGRAM = b58decode("MemoSq4gqABAXKb96qnH8TuNhmnwaHKtGJ8C4D3rFjL")


def labelled(n: int) -> bytes:
    return bytes([n]) * 32


@dataclass
class Ix:
    program: int
    accounts: list[int]
    data: bytes


@dataclass
class Msg:
    header: tuple[int, int, int]
    keys: list[bytes]
    blockhash: bytes
    instructions: list[Ix]
    lookups: list[tuple[bytes, list[int], list[int]]] | None = None  # None: legacy
    extra: bytes = field(default=b"")

    def encode(self) -> bytes:
        out = bytearray(b"\x80" if self.lookups is not None else b"")
        out += bytes(self.header) + encode_compact_u16(len(self.keys)) + b"".join(self.keys) + self.blockhash
        out += encode_compact_u16(len(self.instructions))
        for ix in self.instructions:
            out += bytes([ix.program]) + encode_compact_u16(len(ix.accounts)) + bytes(ix.accounts)
            out += encode_compact_u16(len(ix.data)) + ix.data
        if self.lookups is not None:
            out += encode_compact_u16(len(self.lookups))
            for key, writable, readonly in self.lookups:
                out += key + encode_compact_u16(len(writable)) + bytes(writable)
                out += encode_compact_u16(len(readonly)) + bytes(readonly)
        return bytes(out) + self.extra


def transaction(message: bytes, signatures: int) -> bytes:
    return encode_compact_u16(signatures) + bytes(64 * signatures) + message


def system_transfer(lamports: int) -> bytes:
    return (2).to_bytes(4, "little") + lamports.to_bytes(8, "little")


def spl_transfer(amount: int) -> bytes:
    return b"\x03" + amount.to_bytes(8, "little")


def spl_transfer_checked(amount: int, decimals: int) -> bytes:
    return b"\x0c" + amount.to_bytes(8, "little") + bytes([decimals])


def sol_transfer_message(payer: bytes, to: bytes, lamports: int, blockhash: bytes = labelled(0xBB)) -> Msg:
    """A legacy message: `payer` sends `lamports` to `to` (System Program)."""
    return Msg((1, 0, 1), [payer, to, SYSTEM_PROGRAM], blockhash, [Ix(2, [0, 1], system_transfer(lamports))])


def spl_transfer_message(payer: bytes, source: bytes, mint: bytes, destination: bytes, amount: int) -> Msg:
    """A legacy message: `payer` (the owner) moves `amount` from token account `source` to `destination`."""
    keys = [payer, source, destination, mint, TOKEN_PROGRAM]
    return Msg((1, 0, 2), keys, labelled(0xBB), [Ix(4, [1, 3, 2, 0], spl_transfer_checked(amount, 6))])
