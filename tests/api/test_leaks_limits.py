"""Leaks across organizations and limits on what one requester can take (in-process, real token).

Each test drives the daemon over real HTTP with real stamps, asserts the Turnkey error shape
(`{code, message, details}`) and that a refused request changed nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_identity import Member, Org, Time, b64url, p256_key
from test_identity_passkeys import SoftAuthenticator, new_key, passkey_member

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client.calls import ETHEREUM_ACCOUNT
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.errors import ConfigError
from strongroom.hsm import Token
from strongroom.service.dashboard import decoy_credentials
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken
from strongroom.store.records import Tag

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
    """The Turnkey error body: `{code, message, details: [TurnkeyErrorDetail, ...]}`; returns the message.

    An internal error also carries a `google.rpc.RequestInfo` detail with the request id.
    """
    assert set(data) == {"code", "message", "details"}, data
    assert data["code"] == grpc, data
    assert isinstance(data["message"], str) and data["message"], data
    assert data["details"][0] == {
        "@type": "type.googleapis.com/errors.v1.TurnkeyErrorDetail",
        "turnkeyErrorCode": turnkey_code,
    }, data
    assert all(d["@type"] == "type.googleapis.com/google.rpc.RequestInfo" for d in data["details"][1:]), data
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


# -- dashboard login: bounded challenges, and no answer that says who exists -------------------------------


async def login_options(org: Org, email: str, client: str = "198.51.100.1") -> tuple[int, Any]:
    resp = await org.client.post(
        "/dashboard/api/login/options", json={"email": email}, headers={"X-Forwarded-For": client}
    )
    return resp.status, json.loads(await resp.read())


async def test_login_challenges_are_bounded_per_email_per_address_and_in_all(make_org: MakeOrg) -> None:
    org = await make_org(
        trusted_proxies=("127.0.0.1",),  # the test client is the proxy: X-Forwarded-For names the client
        login_challenges_max=8,
        login_challenges_per_email=3,
        login_challenges_per_client=4,
    )
    sessions = org.service.dashboard  # the challenges are in the store; the clock is the daemon's

    async def refused(email: str, client: str, limit: str) -> None:
        before = sessions.pending_challenges()
        status, data = await login_options(org, email, client)
        assert status == 429, data
        message = assert_turnkey_error(data, 8, "RATE_LIMIT_EXCEEDED")
        assert limit in message, message
        assert sessions.pending_challenges() == before  # nothing issued, nothing dropped

    # One address asking again and again for one email replaces its own challenges (at most two).
    for _ in range(6):
        assert (await login_options(org, "victim@example.com", "203.0.113.1"))[0] == 200
    assert sessions.pending_challenges() == 2
    assert (await login_options(org, "victim@example.com", "203.0.113.2"))[0] == 200
    # Three challenges are pending for the email: a fourth address is refused, nobody's is dropped.
    await refused("VICTIM@example.com", "203.0.113.3", "the limit is 3 at a time")
    # One address holds at most four challenges (any emails).
    for n in range(4):
        assert (await login_options(org, f"user{n}@example.com", "203.0.113.4"))[0] == 200
    await refused("user9@example.com", "203.0.113.4", "from this address: the limit is 4")
    # The table holds eight in all: the ninth is refused, not made room for by dropping a live one.
    assert (await login_options(org, "x@example.com", "203.0.113.5"))[0] == 200
    assert sessions.pending_challenges() == 8
    await refused("y@example.com", "203.0.113.6", "on this server: the limit is 8")
    # Challenges expire after two minutes; then expired ones make room first.
    org.time.offset_ms += 121_000
    status, data = await login_options(org, "y@example.com", "203.0.113.6")
    assert status == 200, data
    assert sessions.pending_challenges() == 1
    for _ in range(3):
        assert (await login_options(org, "victim@example.com", f"203.0.113.{7 + _}"))[0] == 200


async def test_asking_again_at_the_address_limit_replaces_its_own_challenge(make_org: MakeOrg) -> None:
    org = await make_org(trusted_proxies=("127.0.0.1",), login_challenges_per_client=2, login_challenges_max=2)
    for _ in range(5):  # the address is at its limit, and at the server's, but frees its own oldest first
        status, data = await login_options(org, "again@example.com", "203.0.113.1")
        assert status == 200, data
    assert org.service.dashboard.pending_challenges() == 2
    assert (await login_options(org, "other@example.com", "203.0.113.1"))[0] == 429


async def test_login_options_answers_alike_for_unknown_emails(org: Org) -> None:
    device = SoftAuthenticator()
    await org.create_user("pat", email="pat@example.com", authenticators=[device.register()])
    await org.create_user("api-only", p256_key(), email="api@example.com")
    answers = {}
    for email in ("pat@example.com", "api@example.com", "nobody@example.com", "NOBODY@example.com"):
        status, data = await login_options(org, email)
        assert status == 200, data
        answers[email] = data
    shapes = {
        email: (sorted(a), a["rpId"], a["timeoutMs"], sorted({json.dumps(sorted(c)) for c in a["allowCredentials"]}))
        for email, a in answers.items()
    }
    assert len(set(map(json.dumps, shapes.values()))) == 1, shapes  # one shape for every email
    assert [c["id"] for c in answers["pat@example.com"]["allowCredentials"]] == [b64url(device.credential_id)]
    key = (org.service.settings.data_dir / "login-decoy.key").read_bytes()
    for email in ("api@example.com", "nobody@example.com"):
        decoys = answers[email]["allowCredentials"]
        assert decoys == decoy_credentials(key, email)  # from the kept secret: stable across restarts
        assert all(len(c["id"]) >= 22 for c in decoys)  # 16 bytes or more, base64url like real ids
        again = (await login_options(org, email, "192.0.2.9"))[1]["allowCredentials"]
        assert again == decoys  # stable: asking twice does not tell a decoy from a real user
    assert answers["NOBODY@example.com"]["allowCredentials"] == answers["nobody@example.com"]["allowCredentials"]
    assert answers["api@example.com"]["allowCredentials"] != answers["nobody@example.com"]["allowCredentials"]


# -- email uniqueness across organizations: say no more, and not too often ---------------------------------


def another_org(org: Org, name: str) -> Org:
    """A second tenant on the same daemon."""
    key = p256_key()
    org_id, root_id = create_organization(org.service.repo, name, "root", key.public_key, org.time.wall())
    return Org(org.client, org.service, org.time, org_id, Member(root_id, key))


def new_user(name: str, email: str) -> dict[str, Any]:
    return {
        "userName": name,
        "userEmail": email,
        "apiKeys": [p256_key().params()],
        "authenticators": [],
        "oauthProviders": [],
        "userTags": [],
    }


async def test_email_in_use_elsewhere_says_no_more_and_is_budgeted(org: Org) -> None:
    victims = [await org.create_user(f"victim{n}", p256_key(), email=f"victim{n}@corp.example") for n in range(6)]
    tenant = another_org(org, "tenant")
    users_before = tenant.service.repo.users.user_count(tenant.id)
    activities_before = activity_count(org)

    async def create(email: str) -> tuple[int, Any]:
        params = {"users": [new_user("probe", email)]}
        return await tenant.submit(tenant.root, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", params)

    for n in range(5):
        status, data = await create(f"VICTIM{n}@corp.example")
        assert status == 400, data
        message = assert_turnkey_error(data, 3, "REQUEST_INVALID")
        assert message == "email already in use (`parameters.users[0].userEmail`)"
        assert org.id not in json.dumps(data) and victims[n] not in json.dumps(data)
    # The budget is spent: any request naming an email is refused now, taken or free alike,
    # so the refusal no longer tells which emails exist.
    for email in ("victim5@corp.example", "free@tenant.example"):
        status, data = await create(email)
        assert status == 429, data
        message = assert_turnkey_error(data, 8, "RATE_LIMIT_EXCEEDED")
        assert "email already in use" in message and "5 per requester" in message, message
    status, data = await tenant.submit(
        tenant.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": tenant.root.user_id, "userEmail": "a@b.c"}
    )
    assert status == 429, data
    assert tenant.service.repo.users.user_count(tenant.id) == users_before
    assert activity_count(org) == activities_before
    assert (await get_user(tenant, tenant.root.user_id)).get("userEmail", "") == ""
    # Users without an email are not affected; neither is the other organization.
    await tenant.create_user("no email", p256_key())
    await org.create_user("fine", p256_key(), email="fine@corp.example")
    # The budget refills after an hour.
    tenant.time.offset_ms += 3600 * 1000 + 1000
    assert (await create("free@tenant.example"))[0] == 200


# -- /metrics names no organization unless the operator asks, and can live on its own address ----------------


async def scrape(client: TestClient[Any, Any]) -> tuple[int, str]:
    resp = await client.get("/metrics")
    return resp.status, (await resp.read()).decode()


async def test_metrics_carry_no_organization_ids_unless_enabled(make_org: MakeOrg) -> None:
    for per_organization in (False, True):
        org = await make_org(metrics_per_organization=per_organization)
        tenant = another_org(org, "tenant")
        for o in (org, tenant):
            await o.ok(o.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": o.root.user_id, "userName": "r"})
        status, text = await scrape(org.client)
        assert status == 200
        assert "strongroom_activities_total" in text
        for o in (org, tenant):
            assert (o.id in text) is per_organization, text
        if per_organization:
            line = (
                f'strongroom_organization_activities_total{{organization_id="{tenant.id}",'
                'status="ACTIVITY_STATUS_COMPLETED",type="ACTIVITY_TYPE_UPDATE_USER"} 1.0'
            )
            assert line in text, text


async def test_metrics_can_be_served_on_a_separate_address(make_org: MakeOrg) -> None:
    from strongroom.api.app import make_metrics_app  # imported here: new in this change
    from strongroom.config import load_settings

    org = await make_org(metrics_listen="127.0.0.1:0")
    status, text = await scrape(org.client)
    assert status == 404  # not on the API address any more
    assert_turnkey_error(json.loads(text), 5, "REQUEST_INVALID")
    private = TestClient(TestServer(make_metrics_app(org.service)))
    await private.start_server()
    try:
        status, text = await scrape(private)
        assert status == 200 and "strongroom_http_requests_total" in text
        assert (await private.get("/public/v1/query/whoami")).status == 404  # nothing else there
    finally:
        await private.close()
    # The setting, from the configuration file or the environment, validated.
    data_dir = org.service.settings.data_dir
    (data_dir / "strongroom.toml").write_text(
        'metrics_listen = "[::1]:9100"\nmetrics_per_organization = true\n[token]\nmodule = "m"\nlabel = "l"\n'
    )
    settings = load_settings(data_dir, environ={})
    assert (settings.metrics_address, settings.metrics_per_organization) == (("::1", 9100), True)
    with pytest.raises(ConfigError, match="metrics_listen"):
        load_settings(data_dir, environ={"STRONGROOM_METRICS_LISTEN": "9100"})


# -- queries carry no timestamp, so a captured one can be replayed: they must change nothing -----------------


def snapshot(org: Org) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, read through a separate read-only connection."""
    path = org.service.settings.database_path
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {
            t: sorted((dict(r) for r in conn.execute(f'SELECT * FROM "{t}"')), key=repr)  # names from sqlite_master
            for t in tables
        }
    finally:
        conn.close()


async def test_every_query_leaves_the_database_unchanged(org: Org) -> None:
    device = SoftAuthenticator()
    pat_id = await org.create_user("pat", p256_key(), email="pat@example.com", authenticators=[device.register()])
    pat_user = await get_user(org, pat_id)
    key_id = await new_key(org, org.root)
    status, data = await org.query(org.root, "list_activities")
    activity_id = data["activities"][0]["id"]
    policy = await org.ok(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {"policyName": "p", "effect": "EFFECT_DENY", "condition": "false", "consensus": "", "notes": ""},
    )
    wallet = await org.ok(
        org.root,
        "create_wallet",
        "ACTIVITY_TYPE_CREATE_WALLET",
        {"walletName": "w", "accounts": [ETHEREUM_ACCOUNT]},
    )
    interface = await org.ok(
        org.root,
        "create_smart_contract_interface",
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        {
            "smartContractAddress": "0x" + "7a" * 20,
            "smartContractInterface": '[{"type": "function", "name": "f", "inputs": []}]',
            "type": "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM",
            "label": "abi",
        },
    )
    params: dict[str, dict[str, Any]] = {
        "whoami": {},
        "get_organization": {},
        "get_private_key": {"privateKeyId": key_id},
        "list_private_keys": {},
        "get_activity": {"activityId": activity_id},
        "list_activities": {},
        "get_usage": {},
        "get_policy": {"policyId": policy["policyId"]},
        "list_policies": {},
        "list_user_tags": {},
        "list_private_key_tags": {},
        "get_user": {"userId": pat_id},
        "list_users": {},
        "get_policy_evaluations": {"activityId": activity_id},
        "get_activity_view": {"activityId": activity_id},
        "get_api_keys": {"userId": pat_id},
        "get_api_key": {"apiKeyId": pat_user["apiKeys"][0]["apiKeyId"]},
        "get_authenticators": {"userId": pat_id},
        "get_authenticator": {"authenticatorId": pat_user["authenticators"][0]["authenticatorId"]},
        "list_suborgs": {},
        "get_wallet": {"walletId": wallet["walletId"]},
        "list_wallets": {},
        "get_wallet_account": {"walletId": wallet["walletId"], "address": wallet["addresses"][0]},
        "list_wallet_accounts": {"includeWalletDetails": True},
        "get_bundle_signer": {},
        "get_smart_contract_interface": {"smartContractInterfaceId": interface["smartContractInterfaceId"]},
        "list_smart_contract_interfaces": {},
        "list_webhook_endpoints": {},
        "get_webhook_signer": {},
        # A dry run of the policy decision for activities that would write: nothing is written.
        "explain_activity": {
            "type": "ACTIVITY_TYPE_CREATE_USERS_V4",
            "parameters": {"users": [new_user("dry run", "dry@example.com")]},
        },
    }
    assert set(params) == set(org.service.queries.table), "a new query route needs a case here"
    before = snapshot(org)
    for name, p in params.items():
        for _replay in range(2):  # the same stamp again: still nothing changes
            status, data = await org.query(org.root, name, **p)
            assert status == 200, (name, data)
    assert snapshot(org) == before

    # A passkey-stamped query: the only write is the authenticator's signature counter, which is
    # what refuses a replay of that same assertion.
    pat = passkey_member(pat_id, device)
    body = json.dumps({"organizationId": org.id}).encode()
    headers = pat.stamp_headers(body)
    resp = await org.client.post("/public/v1/query/whoami", data=body, headers=headers)
    assert resp.status == 200
    after = snapshot(org)
    assert [a["sign_count"] for a in after["authenticators"]] == [device.sign_count]
    for table in (before, after):
        for a in table["authenticators"]:
            a["sign_count"] = 0
    assert after == before
    replay = await org.client.post("/public/v1/query/whoami", data=body, headers=headers)
    assert replay.status == 401
    assert_turnkey_error(json.loads(await replay.read()), 16, "SIGNATURE_INVALID")

    # The guard: a query handler that tries to write fails (500) and writes nothing.
    repo = org.service.repo

    async def sneaky(o: Any, _principal: Any, _p: Any) -> dict[str, Any]:
        await repo.write(
            repo.tags.insert_tag(Tag("6f0e8d0c-0000-4000-8000-000000000001", o.id, "x", "TAG_TYPE_USER", 1, 1))
        )
        return {}

    org.service.queries.table["sneaky"] = sneaky
    settled = snapshot(org)
    status, data = await org.query(org.root, "sneaky")
    assert status == 500, data
    assert_turnkey_error(data, 13, "INTERNAL")
    assert snapshot(org) == settled
