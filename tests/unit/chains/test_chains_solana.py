"""The Solana wire parser and the `solana.tx` policy view, against transactions built by @solana/web3.js.

`tests/vectors/solana_web3.json` is written by `tests/interop_solana/make_vectors.mjs` (web3.js
1.98.4, pinned): each case has the unsigned transaction (empty signature slots, as @turnkey/solana
sends it), the message, the transaction signed by web3.js, and the message as web3.js decodes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solana_build import (
    MEMO_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    Ix,
    Msg,
    labelled,
    sol_transfer_message,
    spl_transfer_message,
    transaction,
)
from strongroom.chains.solana import policy, wire
from strongroom.crypto import ed25519
from strongroom.crypto.base58 import b58decode, b58encode
from strongroom.errors import InvalidRequest

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "solana_web3.json").read_text()
)["cases"]
LOOKUP = "ADDRESS_TABLE_LOOKUP"


def _b58(n: int) -> str:
    return b58encode(labelled(n))


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_parser_agrees_with_web3(name: str) -> None:
    case = VECTORS[name]
    web3 = case["decoded"]
    tx = wire.parse_transaction(bytes.fromhex(case["unsigned"]))
    m = tx.message
    assert m.raw.hex() == case["message"]
    assert wire.parse_message(bytes.fromhex(case["message"])) == m
    assert m.version == web3["version"]
    h = web3["header"]
    assert m.header == wire.Header(
        h["numRequiredSignatures"], h["numReadonlySignedAccounts"], h["numReadonlyUnsignedAccounts"]
    )
    assert [b58encode(k) for k in m.account_keys] == web3["accountKeys"]
    assert b58encode(m.recent_blockhash) == web3["recentBlockhash"]
    assert [(i.program_id_index, list(i.accounts), i.data.hex()) for i in m.instructions] == [
        (i["programIdIndex"], i["accounts"], i["dataHex"]) for i in web3["instructions"]
    ]
    assert [
        (b58encode(t.account_key), list(t.writable_indexes), list(t.readonly_indexes)) for t in m.address_table_lookups
    ] == [(t["accountKey"], t["writableIndexes"], t["readonlyIndexes"]) for t in web3["addressTableLookups"]]
    assert tx.signatures == (wire.EMPTY_SIGNATURE,) * h["numRequiredSignatures"]
    assert tx.serialize().hex() == case["unsigned"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_signed_vectors_verify_and_signatures_go_in_their_slots(name: str) -> None:
    case = VECTORS[name]
    signed = wire.parse_transaction(bytes.fromhex(case["signed"]))
    unsigned = wire.parse_transaction(bytes.fromhex(case["unsigned"]))
    assert signed.message == unsigned.message
    rebuilt = unsigned
    for slot, (key, sig) in enumerate(zip(signed.message.signer_keys, signed.signatures, strict=True)):
        ed25519.verify(key, signed.message.raw, sig)  # raises when invalid
        assert unsigned.signer_index(key) == slot
        rebuilt = rebuilt.with_signature(slot, sig)
    assert rebuilt.serialize().hex() == case["signed"]
    assert unsigned.signer_index(labelled(0x77)) is None


def test_python_builder_matches_web3() -> None:
    """tests/solana_build.py writes the same bytes as web3.js (the HTTP tests rely on it)."""
    m = wire.parse_message(bytes.fromhex(VECTORS["v0WithLookups"]["message"]))
    rebuilt = Msg(
        (m.header.num_required_signatures, m.header.num_readonly_signed, m.header.num_readonly_unsigned),
        list(m.account_keys),
        m.recent_blockhash,
        [Ix(i.program_id_index, list(i.accounts), i.data) for i in m.instructions],
        [(t.account_key, list(t.writable_indexes), list(t.readonly_indexes)) for t in m.address_table_lookups],
    )
    assert rebuilt.encode() == m.raw
    payer = wire.parse_message(bytes.fromhex(VECTORS["legacySolTransfer"]["message"])).account_keys[0]
    assert sol_transfer_message(payer, labelled(9), 111).encode().hex() == VECTORS["legacySolTransfer"]["message"]


# -- the policy view -------------------------------------------------------------------------------


def _fields(name: str) -> dict[str, Any]:
    return policy.policy_fields(wire.parse_message(bytes.fromhex(VECTORS[name]["message"])))


def test_sol_transfer_fields() -> None:
    f = _fields("legacySolTransfer")
    payer = f["account_keys"][0]
    assert f["account_keys"] == [payer, _b58(9), policy.SYSTEM_PROGRAM]
    assert f["program_keys"] == [policy.SYSTEM_PROGRAM]
    assert f["recent_blockhash"] == _b58(0xBB)
    assert f["transfers"] == [{"from": payer, "to": _b58(9), "amount": 111}]
    assert f["spl_transfers"] == []
    assert f["address_table_lookups"] == []
    assert f["instructions"] == [
        {
            "program_key": policy.SYSTEM_PROGRAM,
            "accounts": [
                {"account_key": payer, "signer": True, "writable": True},
                {"account_key": _b58(9), "signer": False, "writable": True},
            ],
            "instruction_data_hex": "020000006f00000000000000",
            "address_table_lookups": [],
        }
    ]
    assert "parsed_instruction_data" not in f["instructions"][0]


def test_transfer_with_seed_is_a_transfer() -> None:
    f = _fields("legacyTransferWithSeed")
    assert f["transfers"] == [{"from": _b58(10), "to": _b58(9), "amount": 5}]


def test_spl_transfers_and_a_memo() -> None:
    f = _fields("legacySplAndMemo")
    payer = f["account_keys"][0]
    base = {"from": _b58(10), "to": _b58(11), "owner": payer, "signers": []}
    assert f["spl_transfers"] == [
        {**base, "amount": 1000},  # plain Transfer: no mint in the instruction, so no token_mint
        {**base, "amount": 2500, "token_mint": _b58(12)},
        {**base, "amount": 700, "token_mint": _b58(12)},  # Token-2022 TransferCheckedWithFee
    ]
    assert f["transfers"] == []
    key_order = f["account_keys"]
    programs = {policy.TOKEN_PROGRAM, policy.TOKEN_2022_PROGRAM, b58encode(MEMO_PROGRAM)}
    assert f["program_keys"] == [k for k in key_order if k in programs]
    assert bytes.fromhex(f["instructions"][3]["instruction_data_hex"]) == b"hello strongroom"


def test_multisig_spl_transfer_lists_its_signers() -> None:
    f = _fields("legacyMultisigTwoSigners")
    (spl,) = f["spl_transfers"]
    assert spl["owner"] == _b58(13)
    assert len(spl["signers"]) == 2
    assert spl["token_mint"] == _b58(12)
    assert spl["amount"] == 42
    m = wire.parse_message(bytes.fromhex(VECTORS["legacyMultisigTwoSigners"]["message"]))
    assert m.header.num_required_signatures == 4
    assert set(spl["signers"]) <= {b58encode(k) for k in m.signer_keys}
    (transfer,) = f["transfers"]
    assert transfer["to"] == f["account_keys"][0]
    assert transfer["amount"] == 3


def test_v0_lookup_accounts_are_address_table_lookup() -> None:
    f = _fields("v0WithLookups")
    payer = f["account_keys"][0]
    table = _b58(14)
    lookups = VECTORS["v0WithLookups"]["decoded"]["addressTableLookups"]
    assert f["address_table_lookups"] == [
        {
            "address_table_key": table,
            "writable_indexes": lookups[0]["writableIndexes"],
            "readonly_indexes": lookups[0]["readonlyIndexes"],
        }
    ]
    assert f["transfers"] == [{"from": payer, "to": LOOKUP, "amount": 50_000_000}]
    (spl,) = f["spl_transfers"]
    assert spl == {
        "from": _b58(10),
        "to": LOOKUP,
        "amount": 77,
        "owner": payer,
        "signers": [],
        "token_mint": LOOKUP,
    }
    transfer_ix = f["instructions"][0]
    assert transfer_ix["accounts"] == [
        {"account_key": payer, "signer": True, "writable": True},
        {"account_key": LOOKUP, "signer": False, "writable": True},
    ]
    # far1 is the table's index 1 (writable); the mint far2 its index 3 (read-only)
    assert transfer_ix["address_table_lookups"] == [
        {"address_table_key": table, "writable_indexes": [1], "readonly_indexes": []}
    ]
    spl_ix = f["instructions"][1]
    assert [a["account_key"] for a in spl_ix["accounts"]] == [_b58(10), LOOKUP, LOOKUP, payer]
    assert [a["writable"] for a in spl_ix["accounts"]] == [True, False, True, True]  # the payer is writable
    assert spl_ix["address_table_lookups"] == [
        {"address_table_key": table, "writable_indexes": [0], "readonly_indexes": [3]}
    ]
    assert f["instructions"][2]["accounts"] == []
    assert LOOKUP not in f["account_keys"]
    assert f["program_keys"] == [policy.SYSTEM_PROGRAM, policy.TOKEN_PROGRAM, b58encode(MEMO_PROGRAM)]


def test_transfers_ignore_trailing_data_and_skip_short_instructions() -> None:
    payer = labelled(1)
    m = sol_transfer_message(payer, labelled(2), 5)
    m.instructions.append(Ix(2, [0, 1], (2).to_bytes(4, "little") + (9).to_bytes(8, "little") + b"extra"))
    m.instructions.append(Ix(2, [0, 1], (2).to_bytes(4, "little") + b"\x01"))  # too short: not a transfer
    m.instructions.append(Ix(2, [0], (2).to_bytes(4, "little") + bytes(8)))  # one account: not a transfer
    m.instructions.append(Ix(2, [0, 1], (0).to_bytes(4, "little") + bytes(8)))  # CreateAccount: not one
    f = policy.policy_fields(wire.parse_message(m.encode()))
    assert [t["amount"] for t in f["transfers"]] == [5, 9]
    spl = spl_transfer_message(payer, labelled(3), labelled(4), labelled(5), 10)
    spl.instructions.append(Ix(4, [1, 2], b"\x03" + bytes(8)))  # Transfer with two accounts: not one
    spl.instructions.append(Ix(4, [1, 3, 2, 0], b"\x0c" + bytes(8)))  # TransferChecked without decimals
    spl.instructions.append(Ix(4, [1, 2, 0], b"\x07" + bytes(8)))  # MintTo
    assert [t["amount"] for t in policy.policy_fields(wire.parse_message(spl.encode()))["spl_transfers"]] == [10]


def test_token_2022_and_other_programs() -> None:
    payer = labelled(1)
    m = spl_transfer_message(payer, labelled(3), labelled(4), labelled(5), 10)
    m.keys[4] = TOKEN_2022_PROGRAM
    assert policy.policy_fields(wire.parse_message(m.encode()))["spl_transfers"][0]["amount"] == 10
    m.keys[4] = MEMO_PROGRAM  # same bytes to another program: not an SPL transfer
    assert policy.policy_fields(wire.parse_message(m.encode()))["spl_transfers"] == []
    m.keys[4] = TOKEN_PROGRAM
    assert b58decode(policy.SYSTEM_PROGRAM) == SYSTEM_PROGRAM


# -- malformed input -------------------------------------------------------------------------------


def _reject(data: bytes, fragment: str, *, message: bool = True) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        (wire.parse_message if message else wire.parse_transaction)(data)


def test_every_truncation_and_any_trailing_byte_is_refused() -> None:
    for case in VECTORS.values():
        unsigned = bytes.fromhex(case["unsigned"])
        msg = bytes.fromhex(case["message"])
        for cut in range(len(unsigned)):
            with pytest.raises(InvalidRequest):
                wire.parse_transaction(unsigned[:cut])
        for cut in range(len(msg)):
            with pytest.raises(InvalidRequest):
                wire.parse_message(msg[:cut])
        _reject(unsigned + b"\x00", "trailing bytes", message=False)
        _reject(msg + b"\x00", "trailing bytes")


def test_structural_defects_are_refused() -> None:
    payer, to = labelled(1), labelled(2)
    good = sol_transfer_message(payer, to, 1)
    wire.parse_message(good.encode())

    def variant(**changes: Any) -> bytes:
        m = sol_transfer_message(payer, to, 1)
        for k, v in changes.items():
            setattr(m, k, v)
        return m.encode()

    _reject(variant(header=(0, 0, 1)), "no signer")
    _reject(variant(header=(1, 1, 1)), "fee payer read-only")
    _reject(variant(header=(1, 0, 3)), "account keys")
    _reject(variant(keys=[payer, payer, SYSTEM_PROGRAM]), "twice")
    _reject(variant(instructions=[Ix(0, [0, 1], b"")]), "program index 0")
    _reject(variant(instructions=[Ix(3, [0, 1], b"")]), "program index 3")
    _reject(variant(instructions=[Ix(2, [0, 3], b"")]), "account index 3")
    _reject(b"\x81" + good.encode(), "version 1")
    v0 = sol_transfer_message(payer, to, 1)
    v0.lookups = [(labelled(7), [], [])]
    _reject(v0.encode(), "loads no account")
    v0.lookups = [(labelled(7), [0], [])]
    v0.instructions = [Ix(3, [0, 1], b"")]  # a program loaded from a table
    _reject(v0.encode(), "program index 3")
    v0.instructions = [Ix(2, [0, 3], b"")]
    wire.parse_message(v0.encode())  # index 3 is the loaded account
    v0.instructions = [Ix(2, [0, 4], b"")]
    _reject(v0.encode(), "account index 4")
    # transaction-level: slot count, packet size
    _reject(transaction(good.encode(), 2), "2 signature slots", message=False)
    _reject(transaction(good.encode(), 0), "0 signature slots", message=False)
    big = sol_transfer_message(payer, to, 1)
    big.instructions[0].data = bytes(1200)
    _reject(transaction(big.encode(), 1), "exceeds the network's limit", message=False)


def test_compact_u16_must_be_canonical() -> None:
    assert wire.encode_compact_u16(0x7F) == b"\x7f"
    assert wire.encode_compact_u16(0x80) == b"\x80\x01"
    assert wire.encode_compact_u16(0xFFFF) == b"\xff\xff\x03"
    m = sol_transfer_message(labelled(1), labelled(2), 1).encode()
    # the account-key count (3) at offset 3, written in two bytes instead of one
    _reject(m[:3] + b"\x83\x00" + m[4:], "shortest")
    _reject(m[:3] + b"\xff\xff\x04" + m[4:], "compact-u16")
    _reject(m[:3] + b"\xff\xff\xff\x01" + m[4:], "compact-u16")


# -- fuzz: random and mutated bytes give a parse or InvalidRequest, nothing else --------------------

_SEEDS = [bytes.fromhex(c[k]) for c in VECTORS.values() for k in ("unsigned", "message")]


def _try_everything(data: bytes) -> None:
    for parse in (wire.parse_message, wire.parse_transaction):
        try:
            parsed = parse(data)
        except InvalidRequest:
            continue
        message = parsed if isinstance(parsed, wire.Message) else parsed.message
        fields = policy.policy_fields(message)
        json.dumps(fields)
        if isinstance(parsed, wire.Transaction):
            assert parsed.serialize() == data
        else:
            assert parsed.raw == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _try_everything(data)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(_SEEDS),
    st.lists(
        st.tuples(st.sampled_from(["flip", "set", "insert", "delete"]), st.integers(0, 2000), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutated_vectors(seed: bytes, edits: list[tuple[str, int, int]]) -> None:
    data = bytearray(seed)
    for op, at, value in edits:
        i = at % (len(data) + 1)
        if op == "insert":
            data.insert(i, value)
        elif data and i < len(data):
            if op == "flip":
                data[i] ^= 1 << (value % 8)
            elif op == "set":
                data[i] = value
            else:
                del data[i]
    _try_everything(bytes(data))
