"""Leaks across organizations and limits on what one requester can take (in-process, real token).

Each test drives the daemon over real HTTP with real stamps, asserts the Turnkey error shape
(`{code, message, details}`) and that a refused request changed nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_identity import Member, Org, Time, p256_key

from strongroom.api.app import make_app
from strongroom.config import Settings, TokenSettings
from strongroom.daemon.bootstrap import create_organization
from strongroom.daemon.clock import SystemClock
from strongroom.daemon.service import Strongroom
from strongroom.hsm import Token
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

MakeOrg = Callable[..., Awaitable[Org]]


@pytest.fixture
async def make_org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[MakeOrg]:
    """An organization on a fresh daemon whose settings the test chooses."""
    opened: list[tuple[TestClient[Any, Any], Strongroom]] = []

    async def make(**overrides: Any) -> Org:
        data_dir = tmp_path / f"daemon-{len(opened)}"
        data_dir.mkdir()
        settings = Settings(
            data_dir=data_dir,
            token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
            rate_limit_per_second=10_000.0,
            webauthn_rp_id="localhost",
            webauthn_origins=("http://localhost:8080",),
            **overrides,
        )
        t = Time()
        token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
        service = Strongroom(settings, token, token.probe(), SystemClock(2_000, wall=t.wall, monotonic=t.mono))
        root_key = p256_key()
        org_id, root_id = create_organization(service.repo, "leaks", "root", root_key.public_key, t.wall())
        client = TestClient(TestServer(make_app(service)))
        await client.start_server()
        opened.append((client, service))
        return Org(client, service, t, org_id, Member(root_id, root_key))

    yield make
    for client, service in opened:
        await client.close()
        service.close()


@pytest.fixture
async def org(make_org: MakeOrg) -> Org:
    return await make_org()


def assert_turnkey_error(data: Any, grpc: int, turnkey_code: str) -> str:
    """The Turnkey error body: `{code, message, details: [TurnkeyErrorDetail]}`; returns the message."""
    assert set(data) == {"code", "message", "details"}, data
    assert data["code"] == grpc, data
    assert isinstance(data["message"], str) and data["message"], data
    assert data["details"] == [
        {"@type": "type.googleapis.com/errors.v1.TurnkeyErrorDetail", "turnkeyErrorCode": turnkey_code}
    ], data
    message: str = data["message"]
    return message


def activity_count(org: Org) -> int:
    row = org.service.db.one("SELECT count(*) FROM activities")
    return int(row[0])


async def get_user(org: Org, user_id: str) -> dict[str, Any]:
    status, data = await org.query(org.root, "get_user", userId=user_id)
    assert status == 200, data
    user: dict[str, Any] = data["user"]
    return user


async def allow_everything_for(org: Org, who: Member) -> None:
    """A policy that lets `who` do anything a policy can grant (USER/UPDATE, CREDENTIAL/*, ...)."""
    await org.ok(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "admin may do anything",
            "effect": "EFFECT_ALLOW",
            "condition": "true",
            "consensus": f"approvers.any(user, user.id == '{who.user_id}')",
            "notes": "",
        },
    )


# -- root users are protected from the rest of the organization ------------------------------------------


async def test_a_user_admin_cannot_lock_the_root_user_out(org: Org) -> None:
    admin = await org.member("admin")
    await allow_everything_for(org, admin)
    root_before = await get_user(org, org.root.user_id)
    root_key_id = root_before["apiKeys"][0]["apiKeyId"]
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        (
            "update_user",
            "ACTIVITY_TYPE_UPDATE_USER",
            {"userId": org.root.user_id, "accessType": "ACCESS_TYPE_WEB"},
        ),
        (
            "update_user",
            "ACTIVITY_TYPE_UPDATE_USER",
            {"userId": org.root.user_id, "userEmail": "attacker@example.com"},
        ),
        (
            "create_api_keys",
            "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
            {"userId": org.root.user_id, "apiKeys": [p256_key().params("backdoor")]},
        ),
        (
            "delete_api_keys",
            "ACTIVITY_TYPE_DELETE_API_KEYS",
            {"userId": org.root.user_id, "apiKeyIds": [root_key_id]},
        ),
    ]
    before = activity_count(org)
    for path, activity_type, params in attempts:
        status, data = await org.submit(admin, path, activity_type, params)
        assert status == 403, (path, data)
        message = assert_turnkey_error(data, 7, "FORBIDDEN")
        assert "root quorum" in message, message
    assert activity_count(org) == before  # nothing recorded
    assert await get_user(org, org.root.user_id) == root_before  # root unchanged, its key still works
    assert (await org.query(org.root, "whoami"))[0] == 200

    # The same admin still manages ordinary users through its policy ...
    bob = await org.member("bob")
    result = await org.ok(
        admin, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": bob.user_id, "accessType": "ACCESS_TYPE_ALL"}
    )
    assert result == {"userId": bob.user_id}
    # ... and may rename the root user (neither a credential nor its access type) ...
    await org.ok(admin, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": org.root.user_id, "userName": "boss"})
    # ... while the root quorum itself (threshold 1) may change the root user's access type.
    await org.ok(
        org.root,
        "update_user",
        "ACTIVITY_TYPE_UPDATE_USER",
        {"userId": org.root.user_id, "accessType": "ACCESS_TYPE_ALL"},
    )


# -- a cap on activities waiting for votes ------------------------------------------------------------------


async def vote(org: Org, who: Member, pending: dict[str, Any], *, approve: bool = True) -> dict[str, Any]:
    path, kind = ("approve_activity", "APPROVE_ACTIVITY") if approve else ("reject_activity", "REJECT_ACTIVITY")
    status, data = await org.submit(who, path, f"ACTIVITY_TYPE_{kind}", {"fingerprint": pending["fingerprint"]})
    assert status == 200, data
    activity: dict[str, Any] = data["activity"]
    return activity


async def test_pending_consensus_activities_are_capped_per_organization(make_org: MakeOrg) -> None:
    org = await make_org(max_pending_activities=3)
    alice, bob, carol = await org.member("alice"), await org.member("bob"), await org.member("carol")
    await org.ok(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "renames need alice and bob",
            "effect": "EFFECT_ALLOW",
            "condition": "activity.type == 'ACTIVITY_TYPE_UPDATE_USER'",
            "consensus": (
                f"approvers.any(user, user.id == '{alice.user_id}') && approvers.any(user, user.id == '{bob.user_id}')"
            ),
            "notes": "",
        },
    )

    async def rename(n: int) -> tuple[int, Any]:
        params = {"userId": carol.user_id, "userName": f"carol {n}"}
        return await org.submit(alice, "update_user", "ACTIVITY_TYPE_UPDATE_USER", params)

    pending = []
    for n in range(3):
        status, data = await rename(n)
        assert status == 200, data
        assert data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        pending.append(data["activity"])
    before = activity_count(org)
    carol_before = await get_user(org, carol.user_id)
    status, data = await rename(3)
    assert status == 429, data
    message = assert_turnkey_error(data, 8, "RATE_LIMIT_EXCEEDED")
    assert "limit of 3 activities awaiting consensus" in message, message
    assert activity_count(org) == before
    assert await get_user(org, carol.user_id) == carol_before
    # Activities that need no votes are not affected by the backlog.
    await org.ok(org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": org.root.user_id, "userName": "x"})

    # A vote that completes an activity frees its slot; so does a rejection.
    assert (await vote(org, bob, pending[0]))["status"] == "ACTIVITY_STATUS_COMPLETED"
    status, data = await rename(4)
    assert (status, data["activity"]["status"]) == (200, "ACTIVITY_STATUS_CONSENSUS_NEEDED")
    assert (await rename(5))[0] == 429
    assert (await vote(org, bob, pending[1], approve=False))["status"] == "ACTIVITY_STATUS_REJECTED"
    status, data = await rename(6)
    assert (status, data["activity"]["status"]) == (200, "ACTIVITY_STATUS_CONSENSUS_NEEDED")
    # Activities past the 24-hour vote window can no longer complete: they do not hold a slot.
    org.time.offset_ms += 24 * 3600 * 1000 + 60_000
    for n in range(7, 10):
        status, data = await rename(n)
        assert (status, data["activity"]["status"]) == (200, "ACTIVITY_STATUS_CONSENSUS_NEEDED"), data
