"""What policies see of a Solana message: `solana.tx`, under Turnkey's names.

- `account_keys`: the static account keys (base58), in message order;
- `program_keys`: the static keys that instructions call, in account-key order, each once;
- `instructions`: per instruction, `program_key`, `accounts` (one entry per account the
  instruction names, in its order: `account_key`, `signer`, `writable`), `instruction_data_hex`
  (lowercase hex, no `0x`) and `address_table_lookups` (the lookup-table accounts it uses, grouped
  by table: `address_table_key`, `writable_indexes`, `readonly_indexes`, indexes inside the table);
- `transfers`: top-level System Program `Transfer` and `TransferWithSeed` (`from`, `to`, `amount`
  in lamports);
- `spl_transfers`: top-level Token and Token-2022 `Transfer`, `TransferChecked` and Token-2022's
  `TransferCheckedWithFee` (`from` and `to` token accounts, `amount` in base units, `owner` the
  authority, `signers` its multisig signers, empty when it signs alone, and `token_mint`);
- `recent_blockhash` (base58) and `address_table_lookups` (the message's, as above).

An account loaded from a lookup table has no key in the message, so it appears as the literal
`ADDRESS_TABLE_LOOKUP` (in `accounts`, in transfers); it keeps its place in `accounts`, so
`accounts[i]` is always the instruction's i-th account, and it is never a signer.

A plain SPL `Transfer` does not name its mint: such an entry has no `token_mint`, so a policy that
reads it fails to evaluate (a DENY that reads it denies, an ALLOW does not allow) rather than
compare against a guess.

`parsed_instruction_data` is filled only for an instruction whose program has an uploaded Anchor
IDL (`idl_for`) that decodes it exactly (see `strongroom.chains.solana.idl`); otherwise it is
absent, and a policy that reads it fails to evaluate (fail closed).

Transfers are decoded as the programs decode them: the instruction data's leading bytes, extra
bytes after them ignored (the System Program and SPL Token accept trailing data), and an
instruction with too few accounts or data is simply not a transfer (the chain would reject it).
"""

from __future__ import annotations

from typing import Any, Final

from strongroom.chains.solana import idl as solidl
from strongroom.chains.solana.wire import Instruction, Message, address
from strongroom.crypto.base58 import b58decode

ADDRESS_TABLE_LOOKUP: Final = "ADDRESS_TABLE_LOOKUP"
SYSTEM_PROGRAM: Final = "11111111111111111111111111111111"
TOKEN_PROGRAM: Final = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105 (a program id)
TOKEN_2022_PROGRAM: Final = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105 (a program id)
_SYSTEM_KEY: Final = b58decode(SYSTEM_PROGRAM)
_TOKEN_KEYS: Final = frozenset({b58decode(TOKEN_PROGRAM), b58decode(TOKEN_2022_PROGRAM)})

_SYS_TRANSFER: Final = 2
_SYS_TRANSFER_WITH_SEED: Final = 11
_SPL_TRANSFER: Final = 3
_SPL_TRANSFER_CHECKED: Final = 12
_SPL_TRANSFER_FEE_EXTENSION: Final = 26
_SPL_TRANSFER_CHECKED_WITH_FEE: Final = 1


def _u64(data: bytes, at: int) -> int | None:
    return int.from_bytes(data[at : at + 8], "little") if len(data) >= at + 8 else None


def _account_name(m: Message, index: int) -> str:
    return address(m.account_keys[index]) if index < len(m.account_keys) else ADDRESS_TABLE_LOOKUP


def _accounts(m: Message, ins: Instruction) -> list[dict[str, Any]]:
    return [
        {"account_key": _account_name(m, a), "signer": m.is_signer(a), "writable": m.is_writable(a)}
        for a in ins.accounts
    ]


def _instruction_lookups(m: Message, ins: Instruction) -> list[dict[str, Any]]:
    tables: dict[bytes, dict[str, Any]] = {}
    for a in ins.accounts:
        if a < len(m.account_keys):
            continue
        key, index, writable = m.lookup_of(a)
        entry = tables.setdefault(
            key, {"address_table_key": address(key), "writable_indexes": [], "readonly_indexes": []}
        )
        entry["writable_indexes" if writable else "readonly_indexes"].append(index)
    return list(tables.values())


def _system_transfer(m: Message, ins: Instruction) -> dict[str, Any] | None:
    data, acc = ins.data, ins.accounts
    kind = int.from_bytes(data[:4], "little") if len(data) >= 4 else None
    if kind == _SYS_TRANSFER and len(acc) >= 2:
        amount, src, dst = _u64(data, 4), acc[0], acc[1]
    elif kind == _SYS_TRANSFER_WITH_SEED and len(acc) >= 3:
        amount, src, dst = _u64(data, 4), acc[0], acc[2]
    else:
        return None
    if amount is None:
        return None
    return {"from": _account_name(m, src), "to": _account_name(m, dst), "amount": amount}


def _spl_transfer(m: Message, ins: Instruction) -> dict[str, Any] | None:
    data, acc = ins.data, ins.accounts
    if not data:
        return None
    mint: int | None
    if data[0] == _SPL_TRANSFER and len(acc) >= 3 and len(data) >= 9:
        src, mint, dst, authority, rest = acc[0], None, acc[1], acc[2], acc[3:]
        amount = _u64(data, 1)
    elif data[0] == _SPL_TRANSFER_CHECKED and len(acc) >= 4 and len(data) >= 10:
        src, mint, dst, authority, rest = acc[0], acc[1], acc[2], acc[3], acc[4:]
        amount = _u64(data, 1)
    elif (
        data[0] == _SPL_TRANSFER_FEE_EXTENSION
        and len(data) >= 19
        and data[1] == _SPL_TRANSFER_CHECKED_WITH_FEE
        and len(acc) >= 4
    ):
        src, mint, dst, authority, rest = acc[0], acc[1], acc[2], acc[3], acc[4:]
        amount = _u64(data, 2)
    else:
        return None
    out: dict[str, Any] = {
        "from": _account_name(m, src),
        "to": _account_name(m, dst),
        "amount": amount,
        "owner": _account_name(m, authority),
        "signers": [_account_name(m, s) for s in rest],
    }
    if mint is not None:
        out["token_mint"] = _account_name(m, mint)
    return out


def _lookup_fields(m: Message) -> list[dict[str, Any]]:
    return [
        {
            "address_table_key": address(t.account_key),
            "writable_indexes": list(t.writable_indexes),
            "readonly_indexes": list(t.readonly_indexes),
        }
        for t in m.address_table_lookups
    ]


def _parsed(
    m: Message,
    ins: Instruction,
    program: bytes,
    idl_for: solidl.IdlFor | None,
    idls: dict[bytes, solidl.Idl | None],
    budget: solidl.Budget,
) -> dict[str, Any] | None:
    if idl_for is None:
        return None
    if program not in idls:
        idls[program] = idl_for(address(program))
    found = idls[program]
    if found is None:
        return None
    return solidl.decode(found, ins.data, [_account_name(m, a) for a in ins.accounts], budget)


def policy_fields(m: Message, idl_for: solidl.IdlFor | None = None) -> dict[str, Any]:
    """`solana.tx` for a parsed message (see the module docstring); `idl_for`: uploaded IDLs by program id."""
    keys = m.account_keys
    idls: dict[bytes, solidl.Idl | None] = {}
    budget = solidl.Budget()
    called = {ins.program_id_index for ins in m.instructions}
    instructions = []
    transfers = []
    spl_transfers = []
    for ins in m.instructions:
        program = keys[ins.program_id_index]
        entry: dict[str, Any] = {
            "program_key": address(program),
            "accounts": _accounts(m, ins),
            "instruction_data_hex": ins.data.hex(),
            "address_table_lookups": _instruction_lookups(m, ins),
        }
        parsed = _parsed(m, ins, program, idl_for, idls, budget)
        if parsed is not None:
            entry["parsed_instruction_data"] = parsed
        instructions.append(entry)
        if program == _SYSTEM_KEY:
            transfer = _system_transfer(m, ins)
            if transfer is not None:
                transfers.append(transfer)
        elif program in _TOKEN_KEYS:
            spl = _spl_transfer(m, ins)
            if spl is not None:
                spl_transfers.append(spl)
    return {
        "account_keys": [address(k) for k in keys],
        "program_keys": [address(keys[i]) for i in sorted(called)],
        "instructions": instructions,
        "transfers": transfers,
        "recent_blockhash": address(m.recent_blockhash),
        "spl_transfers": spl_transfers,
        "address_table_lookups": _lookup_fields(m),
    }


__all__ = ["ADDRESS_TABLE_LOOKUP", "SYSTEM_PROGRAM", "TOKEN_2022_PROGRAM", "TOKEN_PROGRAM", "policy_fields"]
