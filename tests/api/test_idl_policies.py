"""IDL-aware Solana policies over HTTP: with an Anchor IDL uploaded for a program, a cap on an
instruction's argument (Turnkey's `parsed_instruction_data` syntax) holds alike through
SIGN_TRANSACTION_V2, SIGN_RAW_PAYLOAD and SIGN_RAW_PAYLOADS; without the IDL, or for data the IDL
does not decode exactly, a policy that reads it fails closed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from test_policies import Org, org_fixture  # noqa: F401 - the `org` fixture
from test_solana_policies import Signer, ed25519_key

from solana_build import SYSTEM_PROGRAM, Ix, Msg, labelled, sol_transfer_message
from strongroom.crypto.base58 import b58encode

pytestmark = pytest.mark.softhsm

PROGRAM = labelled(0x70)
PROGRAM_ID = b58encode(PROGRAM)
OTHER_PROGRAM = labelled(0x71)
CAP = 1000


def sighash(snake_name: str) -> list[int]:
    return list(hashlib.sha256(f"global:{snake_name}".encode()).digest()[:8])


MODERN_IDL = json.dumps(
    {
        "address": PROGRAM_ID,
        "metadata": {"name": "vault", "version": "0.1.0", "spec": "0.1.0"},
        "instructions": [
            {
                "name": "deposit",
                "discriminator": sighash("deposit"),
                "accounts": [{"name": "vault", "writable": True}, {"name": "owner", "signer": True}],
                "args": [{"name": "amount", "type": "u64"}, {"name": "memo", "type": {"option": "string"}}],
            }
        ],
        "types": [],
    }
)
LEGACY_IDL = json.dumps(
    {
        "version": "0.1.0",
        "name": "vault",
        "instructions": [
            {
                "name": "deposit",
                "accounts": [
                    {"name": "vault", "isMut": True, "isSigner": False},
                    {"name": "owner", "isMut": False, "isSigner": True},
                ],
                "args": [{"name": "amount", "type": "u64"}, {"name": "memo", "type": {"option": "string"}}],
            }
        ],
    }
)


def deposit_data(amount: int, memo: str | None = None) -> bytes:
    tail = b"\x00" if memo is None else b"\x01" + len(memo.encode()).to_bytes(4, "little") + memo.encode()
    return bytes(sighash("deposit")) + amount.to_bytes(8, "little") + tail


def deposit_message(payer: bytes, data: bytes, program: bytes = PROGRAM, *, with_transfer: bool = False) -> bytes:
    vault = labelled(0x31)
    keys = [payer, vault, program, SYSTEM_PROGRAM]
    instructions = [Ix(2, [1, 0], data)]
    if with_transfer:
        instructions.insert(0, Ix(3, [0, 1], (2).to_bytes(4, "little") + (9).to_bytes(8, "little")))
    return Msg((1, 0, 2), keys, labelled(0xBB), instructions).encode()


async def upload(org: Org, text: str, address: str = PROGRAM_ID) -> tuple[int, Any]:
    status, data, _ = await org.submit(
        org.root,
        "create_smart_contract_interface",
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        {
            "smartContractAddress": address,
            "smartContractInterface": text,
            "type": "SMART_CONTRACT_INTERFACE_TYPE_SOLANA",
            "label": "vault",
            "notes": "",
        },
    )
    return status, data


@pytest.mark.parametrize("idl", [MODERN_IDL, LEGACY_IDL], ids=["0.30", "legacy"])
async def test_a_deposit_cap_by_idl_holds_on_every_signing_path(org: Org, idl: str) -> None:
    trader = org.add_user("trader")
    address, public = await ed25519_key(org, "sol")
    await org.policy(
        "deposits into the vault up to the cap",
        "EFFECT_ALLOW",
        f"activity.action == 'SIGN' && solana.tx.instructions.any(i, i.program_key == '{PROGRAM_ID}' && "
        "i.parsed_instruction_data.instruction_name == 'deposit' && "
        f"i.parsed_instruction_data.program_call_args['amount'] <= {CAP})",
    )
    signer = Signer(org, trader, address)
    # No IDL yet: the instruction is not parsed, so the ALLOW does not allow.
    await signer.every_path(deposit_message(public, deposit_data(CAP)), allowed=False)
    status, data = await upload(org, idl)
    assert status == 200, data

    await signer.every_path(deposit_message(public, deposit_data(CAP, "rent")), allowed=True)
    before = org.token_ops
    await signer.every_path(deposit_message(public, deposit_data(CAP + 1)), allowed=False)
    # A byte after the last argument (Anchor would ignore it): not decoded, not allowed.
    await signer.every_path(deposit_message(public, deposit_data(CAP) + b"\x00"), allowed=False)
    # The same bytes to a program without an IDL: not decoded, not allowed.
    await signer.every_path(deposit_message(public, deposit_data(CAP), OTHER_PROGRAM), allowed=False)
    assert org.token_ops == before


PLAIN_DENY = (  # Turnkey's syntax, as its documentation writes IDL policies
    f"solana.tx.instructions.any(i, i.program_key == '{PROGRAM_ID}' && "
    "i.parsed_instruction_data.instruction_name == 'deposit' && "
    f"i.parsed_instruction_data.program_call_args['amount'] > {CAP})"
)
FILTERED_DENY = (  # reads parsed_instruction_data only on the program's own instructions
    f"solana.tx.instructions.filter(i, i.program_key == '{PROGRAM_ID}').any(i, "
    "i.parsed_instruction_data.instruction_name == 'deposit' && "
    f"i.parsed_instruction_data.program_call_args['amount'] > {CAP})"
)


async def test_a_deny_over_the_cap_reads_the_parsed_arguments(org: Org) -> None:
    trader = org.add_user("trader")
    address, public = await ed25519_key(org, "sol")
    await org.policy("sign anything", "EFFECT_ALLOW", "activity.action == 'SIGN'")
    await org.policy("no large deposits", "EFFECT_DENY", PLAIN_DENY)
    signer = Signer(org, trader, address)
    small, large = deposit_message(public, deposit_data(5)), deposit_message(public, deposit_data(CAP + 1))
    # No IDL: the DENY cannot read the deposit, and a DENY that fails to evaluate denies.
    await signer.every_path(small, allowed=False, explicit=True)
    assert (await upload(org, MODERN_IDL))[0] == 200
    await signer.every_path(small, allowed=True)
    await signer.every_path(large, allowed=False, explicit=True)
    # `&&` does not short-circuit here: an instruction of another program (no parsed data) makes
    # this condition fail to evaluate, so this DENY denies any transaction that has one.
    await signer.every_path(deposit_message(public, deposit_data(5), with_transfer=True), allowed=False, explicit=True)

    status, data = await org.query(org.root, "list_smart_contract_interfaces")
    (item,) = data["smartContractInterfaces"]
    assert item["smartContractAddress"] == PROGRAM_ID and item["type"] == "SMART_CONTRACT_INTERFACE_TYPE_SOLANA"


async def test_a_filtered_deny_reads_only_the_programs_instructions(org: Org) -> None:
    trader = org.add_user("trader")
    address, public = await ed25519_key(org, "sol")
    await org.policy("sign anything", "EFFECT_ALLOW", "activity.action == 'SIGN'")
    await org.policy("no large deposits", "EFFECT_DENY", FILTERED_DENY)
    assert (await upload(org, LEGACY_IDL))[0] == 200
    signer = Signer(org, trader, address)
    await signer.every_path(deposit_message(public, deposit_data(5), with_transfer=True), allowed=True)
    await signer.every_path(sol_transfer_message(public, labelled(0x44), 3).encode(), allowed=True)
    large = deposit_message(public, deposit_data(CAP + 1), with_transfer=True)
    await signer.every_path(large, allowed=False, explicit=True)
    # The program's instruction, but data its IDL does not decode: the DENY cannot read it, and denies.
    await signer.every_path(deposit_message(public, deposit_data(5) + b"\x00"), allowed=False, explicit=True)


@pytest.mark.parametrize(
    "text",
    [
        '{"instructions": [{"name": "a", "args": [{"name": "x", "type": {"defined": "Missing"}}]}]}',
        '{"instructions": [{"name": "a", "discriminator": "0102"}]}',
        '{"instructions": [{"name": "a", "args": [{"name": "x", "type": "u7"}]}]}',
        "[]",
    ],
)
async def test_bad_idls_are_refused(org: Org, text: str) -> None:
    status, data = await upload(org, text)
    assert status == 400 and set(data) == {"code", "message", "details"}, data
    status, data = await org.query(org.root, "list_smart_contract_interfaces")
    assert data["smartContractInterfaces"] == []


async def test_an_amount_compared_as_a_quoted_string_fails_closed(org: Org) -> None:
    """Integers are integers: a pasted policy that quotes the amount cannot allow anything."""
    trader = org.add_user("trader")
    address, public = await ed25519_key(org, "sol")
    await org.policy(
        "exactly this deposit, amount quoted",
        "EFFECT_ALLOW",
        f"solana.tx.instructions.any(i, i.program_key == '{PROGRAM_ID}' && "
        f"i.parsed_instruction_data.program_call_args['amount'] == '{CAP}')",
    )
    assert (await upload(org, MODERN_IDL))[0] == 200
    await Signer(org, trader, address).every_path(deposit_message(public, deposit_data(CAP)), allowed=False)
