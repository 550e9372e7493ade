"""Solana over real HTTP: `SIGN_TRANSACTION_V2` with `TRANSACTION_TYPE_SOLANA`, and policies on `solana.tx`.

Each policy is checked both ways (allowed and denied as written) through every path that signs
the same message: the transaction activity, one raw payload (the message bytes, as
`@turnkey/solana`'s `addSignature` sends them) and a batch of raw payloads.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_policies import Member, Org, org_fixture  # noqa: F401 - the `org` fixture

from solana_build import (
    MEMO_PROGRAM,
    TOKEN_PROGRAM,
    Ix,
    Msg,
    labelled,
    sol_transfer_message,
    spl_transfer_message,
    transaction,
)
from strongroom.chains.solana import wire
from strongroom.crypto import ed25519
from strongroom.crypto.base58 import b58decode, b58encode

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
SIGN_BATCH = "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"
SIGN_TX = "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
BAD_ACCOUNT = b58encode(labelled(0x66))
GOOD_ACCOUNT = b58encode(labelled(0x44))


async def ed25519_key(org: Org, name: str) -> tuple[str, bytes]:
    """(address, public key) of a new ed25519 key; the address is what `signWith` names."""
    status, data, _ = await org.submit(
        org.root,
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {
                    "privateKeyName": name,
                    "curve": "CURVE_ED25519",
                    "privateKeyTags": [],
                    "addressFormats": ["ADDRESS_FORMAT_SOLANA"],
                }
            ]
        },
    )
    assert status == 200, data
    address: str = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]
    return address, b58decode(address)


class Signer:
    """Signs one message for `who` through the three activities that can sign it."""

    def __init__(self, org: Org, who: Member, address: str) -> None:
        self.org, self.who, self.address = org, who, address

    async def transaction(self, message: bytes) -> tuple[int, Any]:
        params = {
            "signWith": self.address,
            "type": "TRANSACTION_TYPE_SOLANA",
            "unsignedTransaction": transaction(message, 1).hex(),
        }
        status, data, _ = await self.org.submit(self.who, "sign_transaction", SIGN_TX, params)
        if status == 200:
            signed = wire.parse_transaction(
                bytes.fromhex(data["activity"]["result"]["signTransactionResult"]["signedTransaction"])
            )
            assert signed.message.raw == message
            ed25519.verify(b58decode(self.address), message, signed.signatures[0])
        return status, data

    async def raw(self, message: bytes) -> tuple[int, Any]:
        params = {
            "signWith": self.address,
            "payload": message.hex(),
            "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
            "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
        }
        status, data, _ = await self.org.submit(self.who, "sign_raw_payload", SIGN, params)
        if status == 200:
            sig = data["activity"]["result"]["signRawPayloadResult"]
            ed25519.verify(b58decode(self.address), message, bytes.fromhex(sig["r"] + sig["s"]))
        return status, data

    async def batch(self, *messages: bytes) -> tuple[int, Any]:
        params = {
            "signWith": self.address,
            "payloads": [m.hex() for m in messages],
            "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
            "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
        }
        status, data, _ = await self.org.submit(self.who, "sign_raw_payloads", SIGN_BATCH, params)
        return status, data

    async def every_path(self, message: bytes, *, allowed: bool, explicit: bool = False) -> None:
        """The message is allowed (or denied) alike as a transaction, a raw payload and in a batch."""
        results = [await self.transaction(message), await self.raw(message), await self.batch(message, message)]
        for status, data in results:
            if allowed:
                assert status == 200, data
                assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
            else:
                assert (status, data["code"]) == (403, 7), data
                assert ("explicitly" if explicit else "implicitly") in data["message"], data


async def test_deny_an_spl_transfer_to_one_account(org: Org) -> None:
    alice = org.add_user("alice")
    address, public = await ed25519_key(org, "sol")
    await org.policy(
        "alice signs with the sol key",
        "EFFECT_ALLOW",
        condition="activity.action == 'SIGN' && private_key.label == 'sol'",
        consensus=f"approvers.any(user, user.id == '{alice.user_id}')",
    )
    await org.policy(
        "no tokens to the bad account",
        "EFFECT_DENY",
        condition=f"solana.tx.spl_transfers.any(t, t.to == '{BAD_ACCOUNT}')",
    )
    signer = Signer(org, alice, address)
    source, mint = labelled(0x21), labelled(0x22)
    good = spl_transfer_message(public, source, mint, b58decode(GOOD_ACCOUNT), 5).encode()
    bad = spl_transfer_message(public, source, mint, b58decode(BAD_ACCOUNT), 5).encode()
    await signer.every_path(good, allowed=True)
    await signer.every_path(bad, allowed=False, explicit=True)
    status, data = await signer.batch(good, b"text", bad)  # each payload is judged
    assert (status, data["code"]) == (403, 7)
    status, data = await signer.batch(good, b"text", good)
    assert status == 200, data
    # the DENY does not apply to what has no solana.tx: a text payload, an Ethereum-style message
    status, data = await signer.raw(b"hello")
    assert status == 200, data


async def test_deny_on_the_owner_of_an_spl_transfer(org: Org) -> None:
    alice = org.add_user("alice")
    address, public = await ed25519_key(org, "sol")
    await org.policy("alice signs", "EFFECT_ALLOW", condition="activity.action == 'SIGN'")
    await org.policy(
        "this key moves no tokens",
        "EFFECT_DENY",
        condition=f"solana.tx.spl_transfers.any(t, t.owner == '{address}')",
    )
    signer = Signer(org, alice, address)
    # keys: payer, source, destination, another owner, mint, token program (the key only pays the fee)
    keys = [public, labelled(0x21), labelled(0x23), labelled(0x24), labelled(0x22), TOKEN_PROGRAM]
    data = spl_transfer_message(public, labelled(0x21), labelled(0x22), labelled(0x23), 5).instructions[0].data
    theirs = Msg((1, 0, 3), keys, labelled(0xBB), [Ix(5, [1, 4, 2, 3], data)])
    await signer.every_path(theirs.encode(), allowed=True)
    mine = spl_transfer_message(public, labelled(0x21), labelled(0x22), labelled(0x23), 5).encode()
    await signer.every_path(mine, allowed=False, explicit=True)


async def test_allow_only_the_system_program(org: Org) -> None:
    alice = org.add_user("alice")
    address, public = await ed25519_key(org, "sol")
    await org.policy(
        "alice signs system-program-only transactions",
        "EFFECT_ALLOW",
        condition=f"solana.tx.program_keys.all(p, p == '{SYSTEM_PROGRAM}')",
        consensus=f"approvers.any(user, user.id == '{alice.user_id}')",
    )
    signer = Signer(org, alice, address)
    transfer = sol_transfer_message(public, labelled(0x44), 1000)
    await signer.every_path(transfer.encode(), allowed=True)
    spl = spl_transfer_message(public, labelled(0x21), labelled(0x22), labelled(0x23), 5)
    await signer.every_path(spl.encode(), allowed=False)
    transfer.keys.append(MEMO_PROGRAM)
    transfer.header = (1, 0, 2)
    transfer.instructions.append(Ix(3, [], b"memo"))
    await signer.every_path(transfer.encode(), allowed=False)
    # a payload that is no Solana message has no solana.tx: the ALLOW is not about it
    status, data = await signer.raw(b"hello")
    assert (status, data["code"]) == (403, 7)


async def test_sol_transfer_recipient_deny_from_turnkeys_examples(org: Org) -> None:
    """Turnkey's example policy 16: deny a bad recipient."""
    alice = org.add_user("alice")
    address, public = await ed25519_key(org, "sol")
    await org.policy("alice signs", "EFFECT_ALLOW", condition="activity.action == 'SIGN'")
    await org.policy(
        "Solana: deny a bad recipient",
        "EFFECT_DENY",
        condition=f"solana.tx.transfers.any(transfer, transfer.to == '{BAD_ACCOUNT}')",
    )
    signer = Signer(org, alice, address)
    await signer.every_path(sol_transfer_message(public, b58decode(GOOD_ACCOUNT), 1).encode(), allowed=True)
    await signer.every_path(
        sol_transfer_message(public, b58decode(BAD_ACCOUNT), 1).encode(), allowed=False, explicit=True
    )


async def test_signed_transaction_shape_and_refusals(org: Org) -> None:
    address, public = await ed25519_key(org, "sol")
    # a second signer's slot already filled is kept; ours is filled in
    message = sol_transfer_message(public, labelled(0x44), 1)
    other = labelled(0x55)
    message.keys.insert(1, other)
    message.header = (2, 0, 1)
    message.instructions = [Ix(3, [0, 2], message.instructions[0].data)]
    raw = message.encode()
    theirs = bytes([7]) * 64
    unsigned = b"\x02" + bytes(64) + theirs + raw
    status, data, _ = await org.submit(
        org.root,
        "sign_transaction",
        SIGN_TX,
        {"signWith": address, "type": "TRANSACTION_TYPE_SOLANA", "unsignedTransaction": unsigned.hex()},
    )
    assert status == 200, data
    out = data["activity"]["result"]["signTransactionResult"]["signedTransaction"]
    assert not out.startswith("0x")
    signed = wire.parse_transaction(bytes.fromhex(out))
    assert signed.signatures[1] == theirs
    ed25519.verify(public, raw, signed.signatures[0])
    assert out[2 + 128 :] == unsigned.hex()[2 + 128 :]

    async def refused(params: dict[str, Any], fragment: str) -> None:
        status, data, _ = await org.submit(org.root, "sign_transaction", SIGN_TX, params)
        assert (status, data["code"]) == (400, 3), data
        assert fragment in data["message"], data

    base = {"signWith": address, "type": "TRANSACTION_TYPE_SOLANA"}
    not_ours = transaction(sol_transfer_message(labelled(0x31), labelled(0x44), 1).encode(), 1).hex()
    await refused({**base, "unsignedTransaction": not_ours}, "not one of the 1 required signers")
    good = transaction(sol_transfer_message(public, labelled(0x44), 1).encode(), 1)
    await refused({**base, "unsignedTransaction": good[:-1].hex()}, "truncated")
    await refused({**base, "unsignedTransaction": (good + b"\x00").hex()}, "trailing bytes")
    await refused({**base, "unsignedTransaction": "zz"}, "hexadecimal")
    await refused({**base, "unsignedTransaction": raw.hex()}, "")  # a bare message is not a transaction
    status, data, _ = await org.submit(
        org.root,
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {
                    "privateKeyName": "eth",
                    "curve": "CURVE_SECP256K1",
                    "privateKeyTags": [],
                    "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                }
            ]
        },
    )
    eth_key = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    await refused(
        {"signWith": eth_key, "type": "TRANSACTION_TYPE_SOLANA", "unsignedTransaction": good.hex()},
        "ed25519",
    )


async def test_policy_checker_no_longer_warns_about_solana_tx(org: Org) -> None:
    async def warnings(condition: str) -> list[str]:
        status, data, _ = await org.submit(
            org.root,
            "create_policy",
            "ACTIVITY_TYPE_CREATE_POLICY_V3",
            {"policyName": condition[:40], "effect": "EFFECT_DENY", "condition": condition, "notes": ""},
        )
        assert status == 200, data
        found: list[str] = data["activity"]["result"]["createPolicyResult"].get("warnings", [])
        return found

    assert await warnings(f"solana.tx.transfers.any(t, t.to == '{BAD_ACCOUNT}')") == []
    assert await warnings(f"solana.tx.program_keys.contains('{SYSTEM_PROGRAM}')") == []
    # Filled from an uploaded IDL (tests/api/test_idl_policies.py), so no longer warned about.
    assert await warnings("solana.tx.instructions.any(i, i.parsed_instruction_data.instruction_name == 'swap')") == []
    assert await warnings("solana.tx.instructions[0].parsed_instruction_data.instruction_name == 'x'") == []
