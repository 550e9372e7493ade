"""The decoded view of an activity (`get_activity_view`, service/decoded.py) over real HTTP.

Each kind of thing people are asked to approve is submitted for real (SoftHSM2 token, the HTTP
app) and its view is read back through the stamped query: an EIP-1559 transfer parked for a
two-approver consensus, an ERC-20 transfer decoded by a stored ABI, EIP-712 typed data, a Solana
transfer and a raw payload. Bad ids, unknown ids and another organization's activity are
Turnkey-shaped errors that say nothing about the other tenant.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from test_contract_policies import ERC20, upload
from test_policies import Member, Org, make_key, org_fixture  # noqa: F401 - the `org` fixture
from test_solana_policies import ed25519_key

from solana_build import sol_transfer_message, transaction
from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import to_checksum
from strongroom.cli.activity_view import text
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.crypto import p256
from strongroom.crypto.base58 import b58encode

pytestmark = pytest.mark.softhsm

SIGN_TX = "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
TO = "0x" + "35" * 20
TOKEN = "0x" + "7a" * 20
RECIPIENT = "0x" + "36" * 20
VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def eip1559(to: str, value: int, data: bytes = b"", nonce: int = 7, chain_id: int = 11155111) -> str:
    u = rlp.encode_uint
    fields = [u(chain_id), u(nonce), u(2 * 10**9), u(30 * 10**9), u(21000), bytes.fromhex(to[2:]), u(value), data, []]
    return (b"\x02" + rlp.encode(fields)).hex()


async def view_of(org: Org, who: Member, activity_id: str) -> dict[str, Any]:
    status, data = await org.query(who, "get_activity_view", activityId=activity_id)
    assert status == 200, data
    assert set(data) == {"view"}
    view: dict[str, Any] = data["view"]
    assert view["activityId"] == activity_id
    return view


async def test_an_eip1559_transfer_waiting_for_two_tagged_approvers(org: Org) -> None:
    alice = org.add_user("alice", tags=("treasury",))
    bob = org.add_user("bob", tags=("treasury",))
    key, address = await make_key(org, "hot")
    policy_id = await org.policy(
        "two from treasury",
        "EFFECT_ALLOW",
        condition="activity.action == 'SIGN'",
        consensus="approvers.filter(user, user.tags.contains('treasury')).count() >= 2",
    )
    other_id = await org.policy("users only", "EFFECT_ALLOW", condition="activity.resource == 'USER'")
    params = {"signWith": address, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": eip1559(TO, 25 * 10**16)}
    status, data, _ = await org.submit(alice, "sign_transaction", SIGN_TX, params)
    assert status == 200, data
    activity = data["activity"]
    assert activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"

    view = await view_of(org, bob, activity["id"])
    assert view["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    assert view["fingerprint"] == activity["fingerprint"]
    assert view["requester"]["userId"] == alice.user_id
    assert view["requester"]["userName"] == "alice"
    assert view["requester"]["credential"]["type"] == "API_KEY"
    assert view["requester"]["credential"]["name"] == "alice key"
    assert view["signer"] == {
        "signWith": address,
        "curve": "CURVE_SECP256K1",
        "kind": "PRIVATE_KEY",
        "privateKeyId": key,
        "name": "hot",
        "address": address,
    }
    (payload,) = view["payloads"]
    assert payload["kind"] == "ETHEREUM_TRANSACTION"
    tx = payload["ethereumTransaction"]
    assert tx["type"] == "EIP-1559"
    assert tx["chainId"] == 11155111
    assert tx["to"] == to_checksum(TO)
    assert tx["from"] == address
    assert (tx["valueWei"], tx["valueEth"]) == ("250000000000000000", "0.25")
    assert tx["nonce"] == 7
    assert (tx["gasLimit"], tx["maxPriorityFeePerGas"], tx["maxFeePerGas"]) == ("21000", "2000000000", "30000000000")
    assert tx["gasPrice"] is None
    assert "call" not in tx  # a plain transfer: no calldata
    (policy,) = view["policies"]  # the matched one; the other is listed apart
    assert view["policiesNotMatched"] == [
        {"policyId": other_id, "policyName": "users only", "outcome": "OUTCOME_DENY_IMPLICIT"}
    ]
    assert policy["policyId"] == policy_id
    assert policy["policyName"] == "two from treasury"
    assert policy["effect"] == "EFFECT_ALLOW"
    assert policy["outcome"] == "OUTCOME_REQUIRES_CONSENSUS"
    (step,) = policy["consensusProgress"]
    assert (step["needed"], step["has"], step["met"]) == (2, 1, False)
    assert step["description"] == "needs 2 approvals from users tagged treasury, has 1"
    assert view["waitingFor"] == ["two from treasury: needs 2 approvals from users tagged treasury, has 1"]
    assert [(v["userName"], v["selection"]) for v in view["votes"]] == [("alice", "VOTE_SELECTION_APPROVED")]
    assert view["votes"][0]["credential"]["name"] == "alice key"
    created_ms = int(activity["createdAt"]["seconds"]) * 1000 + int(activity["createdAt"]["nanos"]) // 10**6
    from datetime import UTC, datetime

    ends = datetime.fromisoformat(view["voteWindowEndsAt"].replace("Z", "+00:00"))
    assert ends == datetime.fromtimestamp(created_ms / 1000 + 24 * 3600, UTC)
    assert "result" not in view and "failure" not in view
    shown = text(view)
    assert "value: 0.25 ETH (250000000000000000 wei)" in shown
    assert "chain id: 11155111" in shown and f"to: {to_checksum(TO)}" in shown
    assert "needs 2 approvals from users tagged treasury, has 1" in shown
    assert "did not match: 'users only'" in shown

    status, voted = await org.vote(bob, activity)
    assert status == 200, voted
    done = await view_of(org, alice, activity["id"])
    assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert [v["userName"] for v in done["votes"]] == ["alice", "bob"]
    assert done["approvals"] == 2
    assert "waitingFor" not in done
    assert done["result"]["signTransactionResult"]["signedTransaction"]
    # Once met, the policy's evaluation is ALLOW: nothing is said to be missing.
    assert done["policies"][0]["outcome"] == "OUTCOME_ALLOW"


async def test_an_erc20_transfer_is_decoded_by_the_stored_abi(org: Org) -> None:
    _, address = await make_key(org, "erc20")
    calldata = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [RECIPIENT, 12345 * 10**18])
    params = {
        "signWith": address,
        "type": "TRANSACTION_TYPE_ETHEREUM",
        "unsignedTransaction": eip1559(TOKEN, 0, calldata),
    }
    status, data, _ = await org.submit(org.root, "sign_transaction", SIGN_TX, params)
    assert status == 200, data
    before = await view_of(org, org.root, data["activity"]["id"])
    tx = before["payloads"][0]["ethereumTransaction"]
    assert tx["call"] is None  # calldata, but no ABI stored for `to` yet
    assert tx["data"] == "0x" + calldata.hex()

    status, uploaded = await upload(org, TOKEN, ERC20)
    assert status == 200, uploaded
    status, data, _ = await org.submit(
        org.root, "sign_transaction", SIGN_TX, {**params, "unsignedTransaction": eip1559(TOKEN, 0, calldata, nonce=8)}
    )
    assert status == 200, data
    view = await view_of(org, org.root, data["activity"]["id"])
    tx = view["payloads"][0]["ethereumTransaction"]
    assert tx["to"] == to_checksum(TOKEN)
    assert tx["valueEth"] == "0"
    assert tx["call"] == {
        "functionName": "transfer",
        "functionSignature": "transfer(address,uint256)",
        "arguments": {"to": RECIPIENT, "value": str(12345 * 10**18)},
    }
    assert "call: transfer(address,uint256)" in text(view)
    assert view["status"] == "ACTIVITY_STATUS_COMPLETED" and view["policies"] == []


async def test_eip712_typed_data_shows_domain_primary_type_and_message(org: Org) -> None:
    _, address = await make_key(org, "typed")
    mail = json.loads((VECTORS / "eip712.json").read_text())["mail"]["viem"]
    params = {
        "signWith": address,
        "payload": json.dumps(mail),
        "encoding": "PAYLOAD_ENCODING_EIP712",
        "hashFunction": "HASH_FUNCTION_NO_OP",
    }
    status, data, _ = await org.submit(org.root, "sign_raw_payload", SIGN, params)
    assert status == 200, data
    (payload,) = (await view_of(org, org.root, data["activity"]["id"]))["payloads"]
    assert payload["kind"] == "EIP712_TYPED_DATA"
    assert payload["raw"]["encoding"] == "PAYLOAD_ENCODING_EIP712"
    typed = payload["typedData"]
    assert typed["primaryType"] == "Mail"
    assert typed["domain"] == {
        "name": "Ether Mail",
        "version": "1",
        "chainId": "1",
        "verifyingContract": to_checksum("0x" + "cc" * 20),
    }
    assert typed["message"]["contents"] == "Hello, Bob!"
    assert typed["message"]["to"] == {"name": "Bob", "wallet": "0x" + "bb" * 20}


async def test_a_solana_transfer_shows_lamports_and_sol(org: Org) -> None:
    address, public = await ed25519_key(org, "sol")
    to = bytes(range(1, 33))
    message = sol_transfer_message(public, to, 1_500_000_001).encode()
    params = {
        "signWith": address,
        "type": "TRANSACTION_TYPE_SOLANA",
        "unsignedTransaction": transaction(message, 1).hex(),
    }
    status, data, _ = await org.submit(org.root, "sign_transaction", SIGN_TX, params)
    assert status == 200, data
    view = await view_of(org, org.root, data["activity"]["id"])
    assert view["signer"]["address"] == address and view["signer"]["curve"] == "CURVE_ED25519"
    (payload,) = view["payloads"]
    assert payload["kind"] == "SOLANA_TRANSACTION"
    sol = payload["solanaTransaction"]
    assert sol["transfers"] == [{"from": address, "to": b58encode(to), "lamports": "1500000001", "sol": "1.500000001"}]
    assert sol["instructions"][0]["programKey"] == "11111111111111111111111111111111"
    assert f"transfer: 1.500000001 SOL (1500000001 lamports) from {address} to {b58encode(to)}" in text(view)


async def test_a_raw_payload_shows_payload_encoding_and_hash_function(org: Org) -> None:
    _, address = await make_key(org, "raw")
    params = {
        "signWith": address,
        "payload": "hello strongroom",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    status, data, _ = await org.submit(org.root, "sign_raw_payload", SIGN, params)
    assert status == 200, data
    view = await view_of(org, org.root, data["activity"]["id"])
    assert view["payloads"] == [
        {
            "raw": {
                "payload": "hello strongroom",
                "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                "hashFunction": "HASH_FUNCTION_KECCAK256",
            },
            "kind": "RAW",
        }
    ]
    assert "payload: hello strongroom (TEXT_UTF8, hash KECCAK256)" in text(view)
    assert view["result"]["signRawPayloadResult"]["r"]


async def test_a_wallet_account_signer_names_its_wallet_and_address(org: Org) -> None:
    account = {
        "curve": "CURVE_SECP256K1",
        "pathFormat": "PATH_FORMAT_BIP32",
        "path": "m/44'/60'/0'/0/0",
        "addressFormat": "ADDRESS_FORMAT_ETHEREUM",
    }
    status, made, _ = await org.submit(
        org.root, "create_wallet", "ACTIVITY_TYPE_CREATE_WALLET", {"walletName": "vault", "accounts": [account]}
    )
    assert status == 200, made
    result = made["activity"]["result"]["createWalletResult"]
    (address,) = result["addresses"]
    params = {"signWith": address, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": eip1559(TO, 1)}
    status, data, _ = await org.submit(org.root, "sign_transaction", SIGN_TX, params)
    assert status == 200, data
    view = await view_of(org, org.root, data["activity"]["id"])
    signer = view["signer"]
    assert (signer["kind"], signer["walletId"], signer["name"], signer["address"]) == (
        "WALLET_ACCOUNT",
        result["walletId"],
        "vault",
        address,
    )
    assert view["payloads"][0]["ethereumTransaction"]["valueEth"] == "0.000000000000000001"
    assert f"signs with: wallet 'vault' account {address}" in text(view)


async def test_bad_unknown_and_other_organizations_ids_are_turnkey_errors(org: Org) -> None:
    for bad in ("not-a-uuid", "", "1" * 65):
        status, data = await org.query(org.root, "get_activity_view", activityId=bad)
        assert status == 400, data
        assert data["code"] == 3 and data["message"]
    status, data = await org.query(org.root, "get_activity_view")
    assert status == 400 and data["code"] == 3

    unknown = str(uuid.uuid4())
    status, data = await org.query(org.root, "get_activity_view", activityId=unknown)
    assert (status, data["code"]) == (404, 5)
    assert data["message"] == f"no activity `{unknown}` found in this organization"

    # Another organization in the same daemon: its activity is not found from here, with the
    # same answer as an id that exists nowhere.
    priv, pub = p256.generate_private_key()
    other_id, other_root = create_organization(org.service.repo, "other", "root", pub, org.time.wall())
    other = Org(org.client, org.service, org.time, other_id, Member(other_root, ApiKeyStamper(pub, priv)))
    _, address = await make_key(other, "theirs")
    params = {
        "signWith": address,
        "payload": "secret",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    status, data, _ = await other.submit(other.root, "sign_raw_payload", SIGN, params)
    assert status == 200, data
    theirs = data["activity"]["id"]
    assert (await view_of(other, other.root, theirs))["organizationId"] == other_id
    status, data = await org.query(org.root, "get_activity_view", activityId=theirs)
    assert (status, data["code"]) == (404, 5)
    assert data["message"] == f"no activity `{theirs}` found in this organization"
    assert "secret" not in json.dumps(data) and other_id not in json.dumps(data)


async def test_a_root_only_activity_says_how_many_root_approvals_it_still_needs(org: Org) -> None:
    """A root-quorum-only change matches no policy: the view names the root quorum as what is missing."""
    second_root = org.add_user("second-root")
    quorum = {"threshold": 2, "userIds": [org.root.user_id, second_root.user_id]}
    status, data, _ = await org.submit(org.root, "update_root_quorum", "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM", quorum)
    assert status == 200, data
    back = {"threshold": 1, "userIds": [org.root.user_id]}
    status, data, _ = await org.submit(org.root, "update_root_quorum", "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM", back)
    parked = data["activity"]
    assert parked["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", parked
    view = await view_of(org, second_root, parked["id"])
    assert view["rootQuorum"] == {"threshold": 2, "approvals": 1}
    assert view["waitingFor"] == ["root quorum: needs 2 approvals from root users, has 1"]
    assert "root quorum: needs 2 approvals from root users, has 1" in text(view)
    status, done = await org.vote(second_root, parked)
    assert done["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", done
    view = await view_of(org, org.root, parked["id"])
    assert "waitingFor" not in view and "rootQuorum" not in view  # only a waiting activity has one
