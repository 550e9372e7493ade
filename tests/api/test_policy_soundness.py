"""Attacks on the promise "what the policies allow is all that gets signed", over real HTTP.

Each test is an attack that worked before the policy subject of every signature was made
explicit: batches judged by their first element, raw transaction bytes walking around a DENY on
`eth.tx`, DENY policies on parameters or unfilled keywords that never fired, consensus that could
not complete, and one organization's pathological policy stalling another's requests.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from coincurve import PublicKey
from test_policies import Member, Org, eth_transfer, make_key, org_fixture  # noqa: F401 - the `org` fixture

from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.crypto import p256
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
SIGN_BATCH = "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"
SIGN_TX = "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
DEAD = "0x000000000000000000000000000000000000dead"
GOOD = "0x" + "35" * 20
ALLOWED_CONTRACT = "0x" + "aa" * 20
OTHER_CONTRACT = "0x" + "bb" * 20


def typed_data(contract: str, amount: int = 1) -> str:
    return json.dumps(
        {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
            },
            "primaryType": "Permit",
            "domain": {"name": "Token", "chainId": 1, "verifyingContract": contract},
            "message": {"spender": GOOD, "value": amount},
        }
    )


def authorization(address: str, nonce: int = 0) -> str:
    return json.dumps({"address": address, "chainId": "1", "nonce": str(nonce)})


def unsigned_transactions(to: str, data: bytes = b"") -> dict[str, bytes]:
    """The same transfer in every unsigned form Ethereum signs: legacy (both), types 1-4."""
    u = rlp.encode_uint
    dest = bytes.fromhex(to[2:])
    fee = [u(10**9), u(2 * 10**9)]
    auth = [u(1), bytes.fromhex(GOOD[2:]), u(0), u(1), u(7), u(9)]
    return {
        "legacy": rlp.encode([u(0), u(10**9), u(21000), dest, u(10**15), data]),
        "eip155": rlp.encode([u(0), u(10**9), u(21000), dest, u(10**15), data, u(1), b"", b""]),
        "type1": b"\x01" + rlp.encode([u(1), u(0), u(10**9), u(21000), dest, u(10**15), data, []]),
        "type2": b"\x02" + rlp.encode([u(1), u(0), *fee, u(21000), dest, u(10**15), data, []]),
        "type3": b"\x03"
        + rlp.encode([u(1), u(0), *fee, u(21000), dest, u(10**15), data, [], u(1), [b"\x01" + b"\x22" * 31]]),
        "type4": b"\x04" + rlp.encode([u(1), u(0), *fee, u(60000), dest, u(10**15), data, [], [auth]]),
    }


async def activity_count(org: Org) -> int:
    status, data = await org.query(org.root, "list_activities")
    assert status == 200, data
    return len(data["activities"])


async def allow_alice_to_sign(org: Org, alice: Member, condition: str = "activity.action == 'SIGN'") -> None:
    await org.policy(
        "alice signs", "EFFECT_ALLOW", condition=condition, consensus=f"approvers.any(u, u.id == '{alice.user_id}')"
    )


# -- 1. every payload of a batch is a policy subject ---------------------------------------------------
async def test_a_batch_with_one_forbidden_typed_data_element_is_refused_whole(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await allow_alice_to_sign(
        org, alice, f"activity.action == 'SIGN' && eth.eip_712.domain.verifying_contract == '{ALLOWED_CONTRACT}'"
    )
    params = {"signWith": key, "encoding": "PAYLOAD_ENCODING_EIP712", "hashFunction": "HASH_FUNCTION_NO_OP"}
    # Allowed alone.
    status, data, _ = await org.submit(
        alice, "sign_raw_payload", SIGN, {**params, "payload": typed_data(ALLOWED_CONTRACT)}
    )
    assert status == 200, data
    before_ops, before_acts = org.token_ops, await activity_count(org)
    for order in ([ALLOWED_CONTRACT, OTHER_CONTRACT], [OTHER_CONTRACT, ALLOWED_CONTRACT]):
        payloads = [typed_data(c, i) for i, c in enumerate(order)]
        status, data, _ = await org.submit(alice, "sign_raw_payloads", SIGN_BATCH, {**params, "payloads": payloads})
        assert (status, data["code"]) == (403, 7), data
        assert set(data) >= {"code", "message", "details"}
    assert org.token_ops == before_ops  # not one signature was made
    assert await activity_count(org) == before_acts
    # explain names the element that was refused.
    status, data = await org.query(
        alice,
        "explain_activity",
        type=SIGN_BATCH,
        parameters={**params, "payloads": [typed_data(ALLOWED_CONTRACT), typed_data(OTHER_CONTRACT)]},
    )
    assert status == 200, data
    assert data["decision"] == "DENY_IMPLICIT"
    assert any(r.startswith("payloads[1]: ") for r in data["reasons"]), data["reasons"]
    assert not any(r.startswith("payloads[0]: ") for r in data["reasons"]), data["reasons"]
    assert {e.get("subject") for e in data["policyEvaluations"]} == {"payloads[0]", "payloads[1]"}
    # A batch of allowed elements signs every one.
    payloads = [typed_data(ALLOWED_CONTRACT, 1), typed_data(ALLOWED_CONTRACT, 2)]
    status, data, _ = await org.submit(alice, "sign_raw_payloads", SIGN_BATCH, {**params, "payloads": payloads})
    assert status == 200, data
    assert len(data["activity"]["result"]["signRawPayloadsResult"]["signatures"]) == 2


async def test_a_batch_with_one_forbidden_eip7702_authorization_is_refused_whole(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await allow_alice_to_sign(org, alice)
    await org.policy(
        "no delegation to other contracts",
        "EFFECT_DENY",
        condition=f"eth.eip_7702_authorization.address != '{ALLOWED_CONTRACT}'",
    )
    params = {
        "signWith": key,
        "encoding": "PAYLOAD_ENCODING_EIP7702_AUTHORIZATION",
        "hashFunction": "HASH_FUNCTION_NO_OP",
    }
    before = org.token_ops
    payloads = [authorization(ALLOWED_CONTRACT), authorization(OTHER_CONTRACT)]
    status, data, _ = await org.submit(alice, "sign_raw_payloads", SIGN_BATCH, {**params, "payloads": payloads})
    assert (status, data["code"]) == (403, 7), data
    assert "explicitly" in data["message"]
    assert org.token_ops == before
    payloads = [authorization(ALLOWED_CONTRACT, 0), authorization(ALLOWED_CONTRACT, 1)]
    status, data, _ = await org.submit(alice, "sign_raw_payloads", SIGN_BATCH, {**params, "payloads": payloads})
    assert status == 200, data


# -- 2. raw bytes are recognised ------------------------------------------------------------------------------
@pytest.mark.parametrize("hash_function", ["HASH_FUNCTION_KECCAK256", "HASH_FUNCTION_SHA256"])
async def test_raw_signing_of_a_denied_transactions_bytes_is_refused(org: Org, hash_function: str) -> None:
    alice = org.add_user("alice")
    key, address = await make_key(org, "k")
    await allow_alice_to_sign(org, alice)
    await org.policy("never to dead", "EFFECT_DENY", condition=f"eth.tx.to == '{DEAD}'")
    before_ops, before_acts = org.token_ops, await activity_count(org)
    for kind, raw in unsigned_transactions(DEAD).items():
        params = {"signWith": key, "payload": raw.hex(), "encoding": "PAYLOAD_ENCODING_HEXADECIMAL"}
        status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, {**params, "hashFunction": hash_function})
        assert (status, data["code"]) == (403, 7), (kind, data)
        # The batch form too, with the transaction hidden behind a harmless first element.
        batch = {**params, "hashFunction": hash_function, "payloads": ["00" * 8, raw.hex()]}
        del batch["payload"]
        status, data, _ = await org.submit(alice, "sign_raw_payloads", SIGN_BATCH, batch)
        assert (status, data["code"]) == (403, 7), (kind, data)
    assert org.token_ops == before_ops
    assert await activity_count(org) == before_acts
    # The same transactions to another address are signed, and the signature is the transaction's.
    for kind, raw in unsigned_transactions(GOOD).items():
        params = {"signWith": key, "payload": raw.hex(), "encoding": "PAYLOAD_ENCODING_HEXADECIMAL"}
        status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, {**params, "hashFunction": hash_function})
        assert status == 200, (kind, data)
        if hash_function == "HASH_FUNCTION_KECCAK256":
            sig = data["activity"]["result"]["signRawPayloadResult"]
            recovered = PublicKey.from_signature_and_message(
                bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), keccak256(raw), hasher=None
            )
            assert address_from_public_key(recovered.format(compressed=False)).lower() == address.lower()


async def test_a_transaction_that_does_not_parse_fails_closed_for_deny_policies_on_it(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await allow_alice_to_sign(org, alice)
    await org.policy("never to dead", "EFFECT_DENY", condition=f"eth.tx.to == '{DEAD}'")
    # A type-2 envelope with a field missing: RLP, shaped like a transaction, but not one we can read.
    u = rlp.encode_uint
    broken = b"\x02" + rlp.encode([u(1), u(0), u(1), u(2), u(21000), bytes.fromhex(DEAD[2:]), u(1), b""])
    params = {"signWith": key, "payload": broken.hex(), "encoding": "PAYLOAD_ENCODING_HEXADECIMAL"}
    status, data, _ = await org.submit(
        alice, "sign_raw_payload", SIGN, {**params, "hashFunction": "HASH_FUNCTION_KECCAK256"}
    )
    assert (status, data["code"]) == (403, 7), data
    # Bytes that are not a transaction at all are not affected by the DENY.
    params["payload"] = b"hello, world".hex()
    status, data, _ = await org.submit(
        alice, "sign_raw_payload", SIGN, {**params, "hashFunction": "HASH_FUNCTION_KECCAK256"}
    )
    assert status == 200, data


async def test_a_deny_on_activity_params_sign_with_fires(org: Org) -> None:
    alice = org.add_user("alice")
    key, address = await make_key(org, "cold")
    other, _ = await make_key(org, "hot")
    await allow_alice_to_sign(org, alice)
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "never with the cold key",
            "effect": "EFFECT_DENY",
            "condition": f"activity.params.sign_with == '{address}' || activity.params.sign_with == '{key}'",
            "notes": "",
        },
    )
    assert status == 200, data
    before = org.token_ops
    for sign_with in (address, key):
        params = {"signWith": sign_with, "payload": "hi", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8"}
        status, data, _ = await org.submit(
            alice, "sign_raw_payload", SIGN, {**params, "hashFunction": "HASH_FUNCTION_KECCAK256"}
        )
        assert (status, data["code"]) == (403, 7), data
        status, data, _ = await org.submit(
            alice,
            "sign_transaction",
            SIGN_TX,
            {"signWith": sign_with, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": eth_transfer(GOOD)},
        )
        assert (status, data["code"]) == (403, 7), data
    assert org.token_ops == before
    params = {"signWith": other, "payload": "hi", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8"}
    status, data, _ = await org.submit(
        alice, "sign_raw_payload", SIGN, {**params, "hashFunction": "HASH_FUNCTION_KECCAK256"}
    )
    assert status == 200, data


# -- 3. keywords the daemon does not fill yet ------------------------------------------------------------------
async def test_a_deny_on_eth_tx_function_name_denies_a_contract_call_without_an_abi(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await allow_alice_to_sign(org, alice)
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "no approvals",
            "effect": "EFFECT_DENY",
            "condition": "eth.tx.function_name == 'approve'",
            "notes": "",
        },
    )
    assert status == 200, data
    # Filled from uploaded ABIs now (test_contract_policies.py): no "not filled" warning.
    warnings = data["activity"]["result"]["createPolicyResult"].get("warnings", [])
    assert not any("eth.tx.function_name" in w for w in warnings), warnings
    approve = bytes.fromhex("095ea7b3") + b"\x00" * 12 + bytes.fromhex(GOOD[2:]) + (10**18).to_bytes(32, "big")
    before = org.token_ops
    call = unsigned_transactions(OTHER_CONTRACT, approve)["type2"].hex()
    status, data, _ = await org.submit(
        alice,
        "sign_transaction",
        SIGN_TX,
        {"signWith": key, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": call},
    )
    assert (status, data["code"]) == (403, 7), data
    assert org.token_ops == before
    # A plain transfer has no function: the DENY does not fire.
    status, data, _ = await org.submit(
        alice,
        "sign_transaction",
        SIGN_TX,
        {"signWith": key, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": eth_transfer(GOOD)},
    )
    assert status == 200, data
    # A Solana DENY loads (pasted Turnkey policies keep working); Solana transactions are parsed, so no warning.
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "sol",
            "effect": "EFFECT_DENY",
            "condition": "solana.tx.transfers.any(t, t.to == 'x')",
            "notes": "",
        },
    )
    assert status == 200, data
    assert not any("solana" in w for w in data["activity"]["result"]["createPolicyResult"].get("warnings", []))


# -- blind digests ---------------------------------------------------------------------------------------------
async def test_turnkeys_blind_digest_recipe_denies_blind_digests_and_the_gap_is_warned_about(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await allow_alice_to_sign(org, alice)
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {"policyName": "never to dead", "effect": "EFFECT_DENY", "condition": f"eth.tx.to == '{DEAD}'", "notes": ""},
    )
    assert status == 200, data
    warnings = data["activity"]["result"]["createPolicyResult"]["warnings"]
    assert any("blind digests" in w for w in warnings), warnings
    blind = {
        "signWith": key,
        "payload": keccak256(b"x").hex(),
        "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
        "hashFunction": "HASH_FUNCTION_NO_OP",
    }
    status, data = await org.query(alice, "explain_activity", type=SIGN, parameters=blind)
    assert status == 200, data
    assert data["decision"] == "ALLOW"
    assert any("blind digests" in w for w in data["warnings"]), data
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "deny blind digests",
            "effect": "EFFECT_DENY",
            "condition": "activity.params.hash_function == 'HASH_FUNCTION_NO_OP' && "
            "activity.params.encoding != 'PAYLOAD_ENCODING_EIP712' && "
            "activity.params.encoding != 'PAYLOAD_ENCODING_EIP7702_AUTHORIZATION'",
            "notes": "",
        },
    )
    assert status == 200, data
    assert "warnings" not in data["activity"]["result"]["createPolicyResult"]
    before = org.token_ops
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, blind)
    assert (status, data["code"]) == (403, 7), data
    assert org.token_ops == before
    # Hashed payloads and typed data still sign; the recipe does not deny other activities.
    status, data, _ = await org.submit(
        alice,
        "sign_raw_payload",
        SIGN,
        {**blind, "payload": "hi", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8", "hashFunction": "HASH_FUNCTION_KECCAK256"},
    )
    assert status == 200, data
    status, data, _ = await org.submit(
        alice,
        "sign_raw_payload",
        SIGN,
        {**blind, "payload": typed_data(OTHER_CONTRACT), "encoding": "PAYLOAD_ENCODING_EIP712"},
    )
    assert status == 200, data
    await make_key(org, "another")  # the root creating a key is not affected by the signing DENYs


# -- 4. consensus ------------------------------------------------------------------------------------------------
async def test_three_of_five_non_root_consensus_completes_exactly_once(org: Org) -> None:
    members = [org.add_user(n) for n in ("ann", "ben", "cat", "dan", "eve")]
    key, _ = await make_key(org, "treasury")
    ids = ", ".join(f"'{m.user_id}'" for m in members)
    await org.policy(
        "three of five sign",
        "EFFECT_ALLOW",
        condition="activity.action == 'SIGN'",
        consensus=f"approvers.filter(u, u.id in [{ids}]).count() >= 3",
    )
    params = {
        "signWith": key,
        "payload": "pay",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    before = org.token_ops
    status, data, _ = await org.submit(members[0], "sign_raw_payload", SIGN, params)
    assert status == 200, data
    target = data["activity"]
    assert target["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    status, data = await org.vote(members[1], target)
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    assert org.token_ops == before
    # The third and fourth approvals race: exactly one executes, the other finds it done.
    results = await asyncio.gather(org.vote(members[2], target), org.vote(members[3], target))
    completed = [d for s, d in results if s == 200 and d["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"]
    assert completed, results
    assert org.token_ops == before + 1
    status, data = await org.vote(members[4], target)
    assert status == 400, data  # no longer waiting for votes
    assert org.token_ops == before + 1
    status, data = await org.query(org.root, "get_activity", activityId=target["id"])
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    # An outsider's vote on a fresh activity still cannot count.
    outsider = org.add_user("mallory")
    status, data, _ = await org.submit(members[0], "sign_raw_payload", SIGN, {**params, "payload": "again"})
    status, data = await org.vote(outsider, data["activity"])
    assert (status, data["code"]) == (403, 7), data


# -- bounded evaluation ------------------------------------------------------------------------------------------
async def test_a_pathological_policy_is_refused_at_creation(org: Org) -> None:
    nested = "x"
    for _ in range(12):
        nested = f"[1,2,3,4,5,6,7,8,9,10].all(v, {nested} || true)"
    condition = nested.replace("x ||", "v == 1 ||", 1)
    assert len(condition) < 2100
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {"policyName": "slow", "effect": "EFFECT_DENY", "condition": condition, "notes": ""},
    )
    assert status == 400, data
    assert "nest more than 3 deep" in data["message"]


def _sign_params(key: str, payload: str) -> dict[str, str]:
    return {
        "signWith": key,
        "payload": payload,
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }


async def test_an_organizations_policies_at_their_limits_do_not_stall_another_organization(org: Org) -> None:
    """Organization A's 40 policies each run until their step budget is exhausted, so each of A's
    decisions takes tens of milliseconds of evaluation. It runs in slices on the event loop, one
    slice per loop turn for all of A: B's request, sent while A's are being decided, is answered
    before even the first of them. (Evaluated without slices, A's first decision would hold the
    loop until it ends, and B's request would be answered after it.) This is an order of events,
    not a speed figure: `bench/bench_policy.py` measures how much the decisions cost."""
    priv, pub = p256.generate_private_key()
    a_id, a_root = create_organization(org.service.repo, "noisy", "root", pub, org.time.wall())
    noisy = Org(org.client, org.service, org.time, a_id, Member(a_root, ApiKeyStamper(pub, priv)))
    a_user = noisy.add_user("a-user")
    a_key, _ = await make_key(noisy, "a-key")
    b_user = org.add_user("b-user")
    b_key, _ = await make_key(org, "b-key")
    await allow_alice_to_sign(org, b_user)
    status, data, _ = await org.submit(b_user, "sign_raw_payload", SIGN, _sign_params(b_key, "warm"))
    assert status == 200, data

    consensus = f"approvers.any(u, u.id == '{a_user.user_id}')"
    items = ",".join(str(i) for i in range(1000))
    heavy = f"[{items}].all(i, [{items}].any(j, i == j))"
    for n in range(40):  # at their limits: each exhausts its step budget, so none allows
        await noisy.policy(
            f"heavy {n}", "EFFECT_ALLOW", condition=f"activity.action == 'SIGN' && {heavy}", consensus=consensus
        )
    explained = await noisy.query(a_user, "explain_activity", type=SIGN, parameters=_sign_params(a_key, "x"))
    assert sum("evaluation budget exceeded" in e.get("error", "") for e in explained[1]["policyEvaluations"]) == 40

    order: list[str] = []

    async def a_signs(i: int) -> None:
        status, data, _ = await noisy.submit(a_user, "sign_raw_payload", SIGN, _sign_params(a_key, f"a{i}"))
        assert (status, data["code"]) == (403, 7), data
        order.append(f"a{i}")

    a_requests = [asyncio.create_task(a_signs(i)) for i in range(3)]

    async def a_is_deciding() -> None:  # its first decision is under way, between two slices
        while not org.service.pipeline.decider.busy(a_id):
            await asyncio.sleep(0.0005)

    await asyncio.wait_for(a_is_deciding(), 60)
    status, data, _ = await org.submit(b_user, "sign_raw_payload", SIGN, _sign_params(b_key, "while A decides"))
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
    order.append("b")
    await asyncio.gather(*a_requests)
    assert order[0] == "b", order
