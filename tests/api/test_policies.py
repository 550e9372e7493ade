"""The policy engine in the activity pipeline: who may do what, consensus, rejection, root quorum."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from coincurve import PublicKey

from strongroom.api.app import make_app
from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.tx import parse_signed_transaction
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken
from strongroom.store.audit_verify import PINNED_KEY_NAME, read_pinned, verify_database
from strongroom.store.records import ApiKey, User

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
TO = "0x" + "35" * 20


class Time:
    """Wall and monotonic clocks that the test moves together (so the trusted clock stays trusted)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def wall(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def mono(self) -> int:
        return time.monotonic_ns() // 1_000_000 + self.offset_ms


@dataclass
class Member:
    user_id: str
    stamper: ApiKeyStamper


@dataclass
class Org:
    client: TestClient[Any, Any]
    service: Strongroom
    time: Time
    id: str
    root: Member

    def add_user(self, name: str, *, tags: tuple[str, ...] = ()) -> Member:
        priv, pub = p256.generate_private_key()
        now = self.time.wall()
        user = User(str(uuid.uuid4()), self.id, name, f"{name}@example.com", "ACCESS_TYPE_API", tags, now, now)
        key = ApiKey(str(uuid.uuid4()), user.id, self.id, f"{name} key", pub, "API_KEY_CURVE_P256", None, now, now)
        repo = self.service.repo
        repo.write_sync([*repo.users.insert_user(user), *repo.users.insert_api_key(key)])
        return Member(user.id, ApiKeyStamper(pub, priv))

    async def submit(
        self, who: Member, path: str, activity_type: str, params: dict[str, Any]
    ) -> tuple[int, Any, bytes]:
        body = json.dumps(
            {
                "type": activity_type,
                "timestampMs": str(self.time.wall()),
                "organizationId": self.id,
                "parameters": params,
            }
        ).encode()
        resp = await self.client.post(
            f"/public/v1/submit/{path}", data=body, headers={"X-Stamp": who.stamper.stamp(body)}
        )
        return resp.status, json.loads(await resp.read()), body

    async def resend(self, who: Member, path: str, body: bytes) -> tuple[int, Any]:
        resp = await self.client.post(
            f"/public/v1/submit/{path}", data=body, headers={"X-Stamp": who.stamper.stamp(body)}
        )
        return resp.status, json.loads(await resp.read())

    async def query(self, who: Member, name: str, **params: Any) -> tuple[int, Any]:
        body = json.dumps({"organizationId": self.id, **params}).encode()
        resp = await self.client.post(
            f"/public/v1/query/{name}", data=body, headers={"X-Stamp": who.stamper.stamp(body)}
        )
        return resp.status, json.loads(await resp.read())

    async def policy(self, name: str, effect: str, condition: str = "", consensus: str = "") -> str:
        status, data, _ = await self.submit(
            self.root,
            "create_policy",
            "ACTIVITY_TYPE_CREATE_POLICY_V3",
            {"policyName": name, "effect": effect, "condition": condition, "consensus": consensus, "notes": ""},
        )
        assert status == 200, data
        policy_id: str = data["activity"]["result"]["createPolicyResult"]["policyId"]
        return policy_id

    async def vote(self, who: Member, target: dict[str, Any], approve: bool = True) -> tuple[int, Any]:
        path, kind = (
            ("approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY")
            if approve
            else ("reject_activity", "ACTIVITY_TYPE_REJECT_ACTIVITY")
        )
        status, data, _ = await self.submit(who, path, kind, {"fingerprint": target["fingerprint"]})
        return status, data

    @property
    def token_ops(self) -> int:
        return self.service.keys.operations


@pytest.fixture(name="org")
async def org_fixture(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=10_000.0,
    )
    t = Time()
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000, wall=t.wall, monotonic=t.mono))
    priv, pub = p256.generate_private_key()
    org_id, root_id = create_organization(service.repo, "policies", "root", pub, t.wall())
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    yield Org(client, service, t, org_id, Member(root_id, ApiKeyStamper(pub, priv)))
    await client.close()
    service.close()


async def make_key(org: Org, name: str) -> tuple[str, str]:
    status, data, _ = await org.submit(
        org.root,
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {
                    "privateKeyName": name,
                    "curve": "CURVE_SECP256K1",
                    "privateKeyTags": [],
                    "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                }
            ]
        },
    )
    assert status == 200, data
    key = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    return key["privateKeyId"], key["addresses"][0]["address"]


def sign_params(key: str, fn: str = "HASH_FUNCTION_KECCAK256") -> dict[str, Any]:
    return {"signWith": key, "payload": str(uuid.uuid4()), "encoding": "PAYLOAD_ENCODING_TEXT_UTF8", "hashFunction": fn}


def eth_transfer(to: str = TO, nonce: int = 0) -> str:
    u = rlp.encode_uint
    return (
        b"\x02" + rlp.encode([u(1), u(nonce), u(10**9), u(10**10), u(21000), bytes.fromhex(to[2:]), u(10**16), b"", []])
    ).hex()


async def test_non_root_users_sign_only_what_a_policy_allows(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "hot")
    other, _ = await make_key(org, "cold")
    before = org.token_ops
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key))
    assert (status, data["code"]) == (403, 7)
    assert "implicitly" in data["message"]
    await org.policy(
        "alice signs with the hot key",
        "EFFECT_ALLOW",
        condition=f"activity.action == 'SIGN' && private_key.id == '{key}'",
        consensus=f"approvers.any(user, user.id == '{alice.user_id}')",
    )
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key))
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(other))
    assert status == 403
    assert org.token_ops == before + 1
    # Alice may not create policies for herself.
    status, data, _ = await org.submit(
        alice,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {"policyName": "mine", "effect": "EFFECT_ALLOW", "notes": ""},
    )
    assert status == 403


async def test_deny_overrides_allow_and_explain_says_why(org: Org) -> None:
    alice = org.add_user("alice")
    key, _ = await make_key(org, "k")
    await org.policy(
        "alice signs",
        "EFFECT_ALLOW",
        "activity.resource == 'PRIVATE_KEY'",
        f"approvers.any(user, user.id == '{alice.user_id}')",
    )
    deny = await org.policy("no sha256", "EFFECT_DENY", "activity.params.hash_function == 'HASH_FUNCTION_SHA256'")
    assert (await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key)))[0] == 200
    before = org.token_ops
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key, "HASH_FUNCTION_SHA256"))
    assert (status, data["code"], data["message"]) == (403, 7, "policy engine denied request explicitly")
    assert org.token_ops == before
    # Even root cannot sign through a DENY... unless by root quorum: root (threshold 1) always can.
    assert (await org.submit(org.root, "sign_raw_payload", SIGN, sign_params(key, "HASH_FUNCTION_SHA256")))[0] == 200
    status, data = await org.query(
        alice, "explain_activity", type=SIGN, parameters=sign_params(key, "HASH_FUNCTION_SHA256")
    )
    assert status == 200, data
    assert data["decision"] == "DENY_EXPLICIT"
    outcomes = {e["policyName"]: e["outcome"] for e in data["policyEvaluations"]}
    assert outcomes == {"alice signs": "OUTCOME_ALLOW", "no sha256": "OUTCOME_DENY_EXPLICIT"}
    # A deny that does not apply to a request (no params.hash_function on key creation) errors and is inert.
    status, data = await org.query(
        org.root,
        "explain_activity",
        type="ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        parameters={
            "privateKeys": [
                {"privateKeyName": "x", "curve": "CURVE_ED25519", "privateKeyTags": [], "addressFormats": []}
            ]
        },
    )
    assert data["decision"] == "ALLOW"  # the root quorum decides
    status, data = await org.query(alice, "get_policy", policyId=deny)
    assert data["policy"]["effect"] == "EFFECT_DENY"


async def test_two_of_three_consensus_executes_exactly_once(org: Org) -> None:
    status, data, _ = await org.submit(
        org.root, "create_user_tag", "ACTIVITY_TYPE_CREATE_USER_TAG", {"userTagName": "treasury", "userIds": []}
    )
    assert status == 200, data
    tag = data["activity"]["result"]["createUserTagResult"]["userTagId"]
    alice, bob, carol = (org.add_user(n, tags=(tag,)) for n in ("alice", "bob", "carol"))
    dave = org.add_user("dave")
    key, address = await make_key(org, "treasury")
    await org.policy(
        "treasury transfers need two of three",
        "EFFECT_ALLOW",
        condition=f"eth.tx.to == '{TO}' && eth.tx.chain_id == 1",
        consensus=f"approvers.filter(user, user.tags.contains('{tag}')).count() >= 2",
    )
    before = org.token_ops
    params = {"signWith": address, "unsignedTransaction": eth_transfer(), "type": "TRANSACTION_TYPE_ETHEREUM"}
    status, data, _ = await org.submit(alice, "sign_transaction", "ACTIVITY_TYPE_SIGN_TRANSACTION_V2", params)
    assert status == 200, data
    pending = data["activity"]
    assert pending["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    assert pending["result"] == {}
    assert pending["canApprove"] is True
    assert org.token_ops == before  # nothing signed yet

    status, data = await org.vote(dave, pending)  # not an approver: his vote changes nothing
    assert status == 403
    status, data = await org.vote(alice, pending)  # the submitter already voted
    assert status == 400

    status, data, body = await org.submit(
        bob, "approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", {"fingerprint": pending["fingerprint"]}
    )
    assert status == 200, data
    done = data["activity"]
    assert done["id"] == pending["id"]
    assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert [v["userId"] for v in done["votes"]] == [alice.user_id, bob.user_id]
    signed = parse_signed_transaction(done["result"]["signTransactionResult"]["signedTransaction"])
    sender = PublicKey.from_signature_and_message(signed.signature.to_bytes65(), signed.tx.signing_hash(), hasher=None)
    assert address_from_public_key(sender.format(compressed=False)) == address
    assert org.token_ops == before + 1
    # Replaying Bob's approval returns the same outcome and signs nothing more.
    status, data = await org.resend(bob, "approve_activity", body)
    assert status == 200
    assert data["activity"]["result"] == done["result"]
    status, data = await org.vote(carol, pending)
    assert status == 400
    assert "not waiting for votes" in data["message"]
    assert org.token_ops == before + 1
    status, data = await org.query(alice, "get_policy_evaluations", activityId=pending["id"])
    assert data["policyEvaluations"][0]["policyEvaluations"][0]["outcome"] == "OUTCOME_ALLOW"
    settings = org.service.settings
    assert verify_database(settings.database_path, read_pinned(settings.data_dir / PINNED_KEY_NAME)).ok

    # A reject vote ends the next one.
    params["unsignedTransaction"] = eth_transfer(nonce=1)
    status, data, _ = await org.submit(alice, "sign_transaction", "ACTIVITY_TYPE_SIGN_TRANSACTION_V2", params)
    second = data["activity"]
    assert second["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    status, data = await org.vote(carol, second, approve=False)
    assert status == 200
    assert data["activity"]["status"] == "ACTIVITY_STATUS_REJECTED"
    status, data = await org.vote(bob, second)
    assert status == 400
    assert org.token_ops == before + 1
    # An unknown fingerprint is Turnkey's 404.
    status, data = await org.vote(bob, {"fingerprint": "00" * 32})
    assert (status, data["code"]) == (404, 5)
    assert data["message"].startswith("No activity found with fingerprint")


async def test_votes_expire_after_24_hours(org: Org) -> None:
    alice, bob = org.add_user("alice"), org.add_user("bob")
    key, _ = await make_key(org, "k")
    await org.policy("pair", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2")
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key))
    pending = data["activity"]
    assert pending["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    org.time.offset_ms = 24 * 3600 * 1000 + 1000
    before = org.token_ops
    status, data = await org.vote(bob, pending)
    assert status == 400
    assert f"activity `{pending['id']}` has expired" in data["message"]
    # No duty ran here (no daemon loop): the late vote itself ended the window, then was refused.
    status, data = await org.query(org.root, "get_activity", activityId=pending["id"])
    expired = data["activity"]
    assert expired["status"] == "ACTIVITY_STATUS_REJECTED"
    assert expired["failure"]["code"] == 4
    assert expired["failure"]["message"].startswith("expired: the vote window ended")
    assert org.token_ops == before
    assert await org.service.expire_activities() == 0  # already expired: not again
    for approve in (True, False):
        status, data = await org.vote(bob, pending, approve=approve)
        assert status == 400
        assert "has expired" in data["message"]
    entries = org.service.repo.activities.audit_entries_of_activity(org.id, pending["id"])
    assert [(e["status"], e.get("reason")) for _, _, e in entries] == [
        ("ACTIVITY_STATUS_CONSENSUS_NEEDED", None),
        ("ACTIVITY_STATUS_REJECTED", "vote window ended"),
    ]
    settings = org.service.settings
    assert verify_database(settings.database_path, read_pinned(settings.data_dir / PINNED_KEY_NAME)).ok


async def test_the_expiry_duty_ends_overdue_windows_once_even_racing_late_votes(org: Org) -> None:
    alice, bob = org.add_user("alice"), org.add_user("bob")
    key, _ = await make_key(org, "k")
    await org.policy("pair", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2")
    parked = []
    for _ in range(4):
        status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key))
        parked.append(data["activity"])
    org.time.offset_ms = 12 * 3600 * 1000
    status, data, _ = await org.submit(alice, "sign_raw_payload", SIGN, sign_params(key))
    younger = data["activity"]
    assert await org.service.expire_activities() == 0  # nothing is overdue yet
    org.time.offset_ms = 24 * 3600 * 1000 + 1000
    before = org.token_ops
    # The duty and late votes on every parked activity at once: each is expired once.
    results = await asyncio.gather(org.service.expire_activities(), *(org.vote(bob, a) for a in parked))
    assert all(status == 400 and "has expired" in data["message"] for status, data in results[1:])
    assert await org.service.expire_activities() == 0
    for a in parked:
        entries = org.service.repo.activities.audit_entries_of_activity(org.id, a["id"])
        assert [e["status"] for _, _, e in entries] == ["ACTIVITY_STATUS_CONSENSUS_NEEDED", "ACTIVITY_STATUS_REJECTED"]
    status, data = await org.query(org.root, "list_activities", filterByStatus=["ACTIVITY_STATUS_CONSENSUS_NEEDED"])
    assert [a["id"] for a in data["activities"]] == [younger["id"]]  # still inside its window
    # ... which a vote still completes.
    status, data = await org.vote(bob, younger)
    assert (status, data["activity"]["status"]) == (200, "ACTIVITY_STATUS_COMPLETED")
    assert org.token_ops == before + 1


async def test_root_quorum_changes_need_the_current_root_quorum(org: Org) -> None:
    second_root = org.add_user("second-root")
    alice = org.add_user("alice")
    await org.policy(
        "alice may do anything", "EFFECT_ALLOW", "true", f"approvers.any(user, user.id == '{alice.user_id}')"
    )
    quorum = {"threshold": 2, "userIds": [org.root.user_id, second_root.user_id]}
    status, data, _ = await org.submit(alice, "update_root_quorum", "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM", quorum)
    assert status == 403  # policies cannot grant root-quorum-only activities
    status, data, _ = await org.submit(
        org.root,
        "update_root_quorum",
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        {"threshold": 3, "userIds": [org.root.user_id]},
    )
    assert status == 400
    status, data, _ = await org.submit(org.root, "update_root_quorum", "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM", quorum)
    assert status == 200, data
    status, data = await org.query(org.root, "get_organization")
    assert data["organizationData"]["rootQuorum"] == {"threshold": 2, "userIds": sorted(quorum["userIds"])}
    # Now one root vote is not enough to change it back: the second root user must approve.
    status, data, _ = await org.submit(
        org.root,
        "update_root_quorum",
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        {"threshold": 1, "userIds": [org.root.user_id]},
    )
    assert data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    status, done = await org.vote(second_root, data["activity"])
    assert done["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    status, data = await org.query(org.root, "get_organization")
    assert data["organizationData"]["rootQuorum"] == {"threshold": 1, "userIds": [org.root.user_id]}


async def test_policy_errors_are_reported_at_creation_with_position(org: Org) -> None:
    cases = [
        ("activity.type == ", "condition", "line 1, column"),
        ("activity.resource == 'USER' && wallets_of_doom.id == 'x'", "condition", "wallets_of_doom"),
        ("activity.kind == 1", "condition", "line 1"),
    ]
    for condition, field, needle in cases:
        status, data, _ = await org.submit(
            org.root,
            "create_policy",
            "ACTIVITY_TYPE_CREATE_POLICY_V3",
            {"policyName": str(uuid.uuid4()), "effect": "EFFECT_ALLOW", "condition": condition, "notes": ""},
        )
        assert status == 400, data
        assert f"invalid policy {field}" in data["message"]
        assert needle in data["message"]
    status, data, _ = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {"policyName": "c", "effect": "EFFECT_ALLOW", "consensus": "approvers.count( >= 2", "notes": ""},
    )
    assert status == 400
    assert "invalid policy consensus" in data["message"]
    status, data = await org.query(org.root, "list_policies")
    assert data["policies"] == []
    # Update and delete.
    pid = await org.policy("p", "EFFECT_ALLOW", "activity.action == 'SIGN'")
    status, data, _ = await org.submit(
        org.root,
        "update_policy",
        "ACTIVITY_TYPE_UPDATE_POLICY_V2",
        {"policyId": pid, "policyCondition": "activity.action == "},
    )
    assert status == 400
    status, data, _ = await org.submit(
        org.root, "update_policy", "ACTIVITY_TYPE_UPDATE_POLICY_V2", {"policyId": pid, "policyEffect": "EFFECT_DENY"}
    )
    assert data["activity"]["result"] == {"updatePolicyResultV2": {"policyId": pid}}
    status, data = await org.query(org.root, "get_policy", policyId=pid)
    assert data["policy"]["effect"] == "EFFECT_DENY"
    status, data, _ = await org.submit(org.root, "delete_policy", "ACTIVITY_TYPE_DELETE_POLICY", {"policyId": pid})
    assert status == 200
    status, data = await org.query(org.root, "list_policies")
    assert data["policies"] == []
