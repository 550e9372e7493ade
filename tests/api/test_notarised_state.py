"""The database is untrusted storage: every notarised table, edited, inserted into, deleted from or
rolled back behind the daemon's back, in SQLite and in PostgreSQL, is refused over HTTP, naming the
object, and nothing is signed.

An attacker with write access to the database (a restored backup, a compromised database host, a
careless operator) writes rows directly; the daemon is then restarted (start-up verification) and,
on PostgreSQL where nothing is cached, also asked while it runs.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from store.pg_cluster import PgCluster
from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.client.calls import ETHEREUM_ACCOUNT
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken
from strongroom.store.notary import TABLES
from strongroom.store.records import (
    ApiKey,
    Authenticator,
    ContractInterface,
    PolicyRecord,
    PrivateKey,
    Tag,
    User,
    WalletAccount,
    WebhookEndpoint,
)

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
OPERATIONS = ("edit", "insert", "delete", "restore")
# A text column per table that an attacker edits (and that must stay unique on insert).
EDITABLE = {
    "organizations": "name",
    "root_quorum": "user_id",
    "users": "name",
    "api_keys": "name",
    "authenticators": "name",
    "private_keys": "name",
    "key_addresses": "address",
    "policies": "condition",
    "tags": "name",
    "wallets": "name",
    "wallet_accounts": "address",
    "smart_contract_interfaces": "label",
    "webhook_endpoints": "url",  # an attacker redirects approval notices
}
UNIQUE_TEXT = ("name", "email", "public_key", "credential_id", "address", "path")


def contract_interface(org_id: str, now: int) -> ContractInterface:
    text = '[{"type": "function", "name": "f", "inputs": []}]'
    return ContractInterface(
        str(uuid.uuid4()), org_id, "0x" + "7a" * 20, "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM", text, "00" * 32,
        f"abi {uuid.uuid4().hex[:6]}", "", now, now,
    )  # fmt: skip


BINARY = ("cose_key", "wrapped", "public_key", "sealed_mnemonic", "sealed_seed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@dataclass
class World:
    settings: Settings
    token: Token
    org_id: str
    root: ApiKeyStamper
    alice: User
    alice_key: ApiKey
    passkey: Authenticator
    key_id: str
    policy: PolicyRecord
    tag: Tag
    sql: Callable[[str, tuple[Any, ...]], list[Any]]
    service: Strongroom | None = None
    client: TestClient[Any, Any] | None = None
    wallet_id: str = ""

    async def start(self) -> Strongroom:
        await self.stop()
        service = Strongroom(self.settings, self.token, self.token.probe(), SystemClock(2_000))
        self.client = TestClient(TestServer(make_app(service)))
        await self.client.start_server()
        self.service = service
        return service

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.service is not None:
            self.service.keys.close()
            self.service.db.close()
            self.service = None

    async def sign(self) -> tuple[int, Any]:
        assert self.client is not None
        body = json.dumps(
            {
                "type": SIGN,
                "timestampMs": str(int(time.time() * 1000)),
                "organizationId": self.org_id,
                "parameters": {
                    "signWith": self.key_id,
                    "payload": str(uuid.uuid4()),
                    "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                    "hashFunction": "HASH_FUNCTION_KECCAK256",
                },
            }
        ).encode()
        resp = await self.client.post(
            "/public/v1/submit/sign_raw_payload", data=body, headers={"X-Stamp": self.root.stamp(body)}
        )
        return resp.status, json.loads(await resp.read())


def _sqlite_sql(path: Path) -> Callable[[str, tuple[Any, ...]], list[Any]]:
    def run(statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        conn = sqlite3.connect(path)  # foreign keys are not enforced: the attacker's own connection
        try:
            with conn:
                return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    return run


def _pg_sql(url: str) -> Callable[[str, tuple[Any, ...]], list[Any]]:
    def run(statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # no foreign-key checks
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[World]:
    url = request.getfixturevalue("cluster").create_database() if request.param == "postgres" else None
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=10_000.0,
        database_url=url,
    )
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    sql = _pg_sql(url) if url else _sqlite_sql(settings.database_path)
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000))
    repo = service.repo
    now = int(time.time() * 1000)
    priv, pub = p256.generate_private_key()
    org_id, _root_id = create_organization(repo, "tamper", "root", pub, now)
    alice = User(str(uuid.uuid4()), org_id, "alice", "alice@example.com", "ACCESS_TYPE_ALL", (), now, now)
    _, alice_pub = p256.generate_private_key()
    alice_key = ApiKey(
        str(uuid.uuid4()), alice.id, org_id, "alice key", alice_pub, "API_KEY_CURVE_P256", None, now, now
    )
    passkey = Authenticator(
        str(uuid.uuid4()), alice.id, org_id, "laptop", "Y3JlZA", b"\xa5\x01\x02", "02" + "11" * 32, "0" * 32,
        "none", ("AUTHENTICATOR_TRANSPORT_USB",), 0, now, now,
    )  # fmt: skip
    policy = PolicyRecord(
        str(uuid.uuid4()), org_id, "deny dead", "EFFECT_DENY", "eth.tx.to == '0xdead'", "", "", "", now, now
    )
    tag = Tag(str(uuid.uuid4()), org_id, "ops", "TAG_TYPE_USER", now, now)
    # What authorised activities write (the pipeline writes these same ops, notarised).
    repo.write_sync(
        [
            *repo.users.insert_user(alice),
            *repo.users.insert_api_key(alice_key),
            *repo.users.insert_authenticator(passkey),
            *repo.policies.insert_policy(policy),
            *repo.tags.insert_tag(tag),
            *repo.webhooks.insert_endpoint(
                WebhookEndpoint(str(uuid.uuid4()), org_id, "approvals", "https://hooks.example/a", True, [], now, now)
            ),
        ]
    )
    w = World(settings, token, org_id, ApiKeyStamper(pub, priv), alice, alice_key, passkey, "", policy, tag, sql)
    w.service, w.client = service, TestClient(TestServer(make_app(service)))
    await w.client.start_server()
    resp = await w.client.post(
        "/public/v1/submit/create_private_keys",
        data=(
            body := json.dumps(
                {
                    "type": "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
                    "timestampMs": str(int(time.time() * 1000)),
                    "organizationId": org_id,
                    "parameters": {
                        "privateKeys": [
                            {
                                "privateKeyName": "hot",
                                "curve": "CURVE_SECP256K1",
                                "privateKeyTags": [],
                                "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                            }
                        ]
                    },
                }
            ).encode()
        ),
        headers={"X-Stamp": w.root.stamp(body)},
    )
    created = json.loads(await resp.read())
    assert resp.status == 200, created
    w.key_id = created["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    resp = await w.client.post(
        "/public/v1/submit/create_wallet",
        data=(
            body := json.dumps(
                {
                    "type": "ACTIVITY_TYPE_CREATE_WALLET",
                    "timestampMs": str(int(time.time() * 1000)),
                    "organizationId": org_id,
                    "parameters": {"walletName": "hd", "accounts": [ETHEREUM_ACCOUNT]},
                }
            ).encode()
        ),
        headers={"X-Stamp": w.root.stamp(body)},
    )
    created = json.loads(await resp.read())
    assert resp.status == 200, created
    w.wallet_id = created["activity"]["result"]["createWalletResult"]["walletId"]
    repo.write_sync(repo.contracts.insert_interface(contract_interface(org_id, now)))
    status, data = await w.sign()
    assert status == 200, data  # intact: signing works
    yield w
    await w.stop()
    token.close()


def _roots(w: World) -> tuple[str, ...]:
    assert w.service is not None
    org = w.service.repo.organizations.organization(w.org_id)
    assert org is not None
    return org.root_user_ids


def _legit_change(w: World, table: str) -> None:
    """A change an authorised activity would make to `table` (notarised by the writer)."""
    assert w.service is not None
    repo, now = w.service.repo, int(time.time() * 1000) + 10
    ops = {
        "organizations": lambda: repo.usage.set_signature_quota(w.org_id, 5),
        "root_quorum": lambda: repo.organizations.set_root_quorum(w.org_id, 1, [*_roots(w), w.alice.id], now),
        "users": lambda: repo.users.update_user(replace(w.alice, name="alice renamed", updated_at=now)),
        "api_keys": lambda: repo.users.delete_api_key(w.org_id, w.alice_key.id),
        "authenticators": lambda: repo.users.delete_authenticator(w.org_id, w.passkey.id),
        "private_keys": lambda: repo.tags.set_private_key_tags(w.org_id, w.key_id, [w.tag.id], now),
        "key_addresses": lambda: repo.private_keys.insert_private_key(
            PrivateKey(str(uuid.uuid4()), w.org_id, "cold", "CURVE_SECP256K1", b"\x02" * 33, "token", None,
                       (("ADDRESS_FORMAT_ETHEREUM", "0x" + "ab" * 20),), (), now, now)
        ),
        "policies": lambda: repo.policies.update_policy(replace(w.policy, condition="false", updated_at=now)),
        "tags": lambda: repo.tags.rename_tag(w.org_id, w.tag.id, "renamed", now),
        "wallets": lambda: repo.wallets.rename_wallet(w.org_id, w.wallet_id, "renamed", now),
        "smart_contract_interfaces": lambda: repo.contracts.insert_interface(contract_interface(w.org_id, now)),
        "wallet_accounts": lambda: repo.wallets.insert_accounts(w.org_id, [
            WalletAccount(str(uuid.uuid4()), w.org_id, w.wallet_id, None, "CURVE_SECP256K1", "PATH_FORMAT_BIP32",
                          "m/44'/60'/0'/0/1", "ADDRESS_FORMAT_ETHEREUM", "0x" + "cd" * 20, b"\x04" * 65, now, now)
        ]),
        "webhook_endpoints": lambda: repo.webhooks.update_endpoint(
            replace(repo.webhooks.endpoints(w.org_id)[0], name="renamed", updated_at=now)
        ),
    }[table]()  # fmt: skip
    repo.write_sync(ops)


def _tamper(w: World, table_name: str, operation: str) -> None:
    table = next(t for t in TABLES if t.name == table_name)
    sql = w.sql
    rows = sql(f"SELECT * FROM {table.name} WHERE {table.scope} = ?", (w.org_id,))
    assert rows, table.name
    names = _columns(w, table.name)
    first = dict(zip(names, rows[0], strict=True))
    where = " AND ".join(f"{k} = ?" for k in names if first[k] is not None and k not in BINARY)
    params = tuple(first[k] for k in names if first[k] is not None and k not in BINARY)
    if operation == "edit":
        column = EDITABLE[table.name]
        value = w.alice.id if column == "user_id" else f"{first[column]}x"
        sql(f"UPDATE {table.name} SET {column} = ? WHERE {where}", (value, *params))
    elif operation == "insert":
        row = dict(first)
        if "id" in row:
            row["id"] = str(uuid.uuid4())
        for column in UNIQUE_TEXT:
            if isinstance(row.get(column), str):
                row[column] = f"{row[column]}-forged"
        if table.name == "root_quorum":
            row["user_id"] = w.alice.id
        if table.name == "organizations":
            row["parent_id"] = w.org_id  # a forged sub-organization
        marks = ", ".join("?" for _ in row)
        sql(f"INSERT INTO {table.name} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))
    elif operation == "delete":
        sql(f"DELETE FROM {table.name} WHERE {where}", params)
    else:  # restore the rows of the previous notarised version after an authorised change
        _legit_change(w, table.name)
        sql(f"DELETE FROM {table.name} WHERE {table.scope} = ?", (w.org_id,))
        marks = ", ".join("?" for _ in names)
        for r in rows:
            sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", tuple(r))


def _columns(w: World, table: str) -> list[str]:
    if w.settings.database_url is None:
        conn = sqlite3.connect(w.settings.database_path)
        try:
            return [r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()]
        finally:
            conn.close()
    return [
        r[0]
        for r in w.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            (table,),
        )
    ]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("table", [t.name for t in TABLES])
async def test_tampering_with_a_notarised_table_is_refused_and_nothing_is_signed(
    world: World, table: str, operation: str
) -> None:
    w = world
    if operation == "restore":
        status, data = await w.sign()
        assert status == 200, data
    _tamper(w, table, operation)
    service = await w.start()  # the daemon restarts on the tampered database
    assert service.pipeline.stopped is not None
    assert table in service.pipeline.stopped or (operation == "insert" and table == "organizations")
    status, data = await w.sign()
    assert status == 503, (status, data)
    assert set(data) == {"code", "message", "details"}
    assert "notaris" in data["message"], data  # names the object (or the start-up verification that failed)
    assert service.keys.operations == 0  # nothing signed
    ready, checks = service.readiness()
    assert not ready
    assert "notarisation" in str(checks["notarisation"]) or "no notarised state" in str(checks["notarisation"])


async def _submit(
    w: World, stamper: ApiKeyStamper, path: str, activity_type: str, params: dict[str, Any]
) -> tuple[int, Any]:
    assert w.client is not None
    body = json.dumps(
        {
            "type": activity_type,
            "timestampMs": str(int(time.time() * 1000)),
            "organizationId": w.org_id,
            "parameters": params,
        }
    ).encode()
    resp = await w.client.post(f"/public/v1/submit/{path}", data=body, headers={"X-Stamp": stamper.stamp(body)})
    return resp.status, json.loads(await resp.read())


async def test_the_attacks_of_a_database_writer_fail_while_the_daemon_runs(world: World) -> None:
    """The attacks that worked before: a user and API key inserted as a root-quorum member, a DENY
    flipped to ALLOW, a private key moved from another organization. None signs anything."""
    w = world
    assert w.service is not None
    service = w.service
    payload = {"payload": "x", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8", "hashFunction": "HASH_FUNCTION_KECCAK256"}
    # 1. A forged user with an API key, made a root-quorum member.
    priv, pub = p256.generate_private_key()
    forged_user, forged_key, now = str(uuid.uuid4()), str(uuid.uuid4()), int(time.time() * 1000)
    w.sql(
        "INSERT INTO users (id, organization_id, name, email, access_type, tags, created_at, updated_at)"
        " VALUES (?, ?, 'mallory', NULL, 'ACCESS_TYPE_API', '[]', ?, ?)",
        (forged_user, w.org_id, now, now),
    )
    w.sql(
        "INSERT INTO api_keys (id, user_id, organization_id, name, public_key, curve, expires_at, created_at,"
        " updated_at) VALUES (?, ?, ?, 'k', ?, 'API_KEY_CURVE_P256', NULL, ?, ?)",
        (forged_key, forged_user, w.org_id, pub, now, now),
    )
    w.sql("INSERT INTO root_quorum (organization_id, user_id) VALUES (?, ?)", (w.org_id, forged_user))
    before = service.keys.operations
    status, data = await _submit(
        w, ApiKeyStamper(pub, priv), "sign_raw_payload", SIGN, {"signWith": w.key_id, **payload}
    )
    assert status == 503, data
    assert "notarisation" in data["message"], data  # names the first tampered object it reads
    assert any(f"`{t}` row" in data["message"] for t in ("root_quorum", "users", "api_keys")), data
    assert service.keys.operations == before
    assert service.repo.tampered  # /readyz and /metrics know
    ready, checks = service.readiness()
    assert not ready and "notarisation" in str(checks["notarisation"])
    assert service.metrics.notarisation_failures._value.get() >= 1


async def test_a_deny_flipped_to_allow_in_the_database_is_not_obeyed(world: World) -> None:
    w = world
    assert w.service is not None
    service = w.service
    repo = service.repo
    priv, pub = p256.generate_private_key()
    now = int(time.time() * 1000)
    bob = User(str(uuid.uuid4()), w.org_id, "bob", None, "ACCESS_TYPE_API", (), now, now)
    repo.write_sync(
        [
            *repo.users.insert_user(bob),
            *repo.users.insert_api_key(
                ApiKey(str(uuid.uuid4()), bob.id, w.org_id, "b", pub, "API_KEY_CURVE_P256", None, now, now)
            ),
            *repo.policies.insert_policy(
                PolicyRecord(
                    str(uuid.uuid4()),
                    w.org_id,
                    "bob signs",
                    "EFFECT_ALLOW",
                    "activity.action == 'SIGN'",
                    "",
                    "",
                    "",
                    now,
                    now,
                )
            ),
            *repo.policies.insert_policy(
                PolicyRecord(
                    str(uuid.uuid4()),
                    w.org_id,
                    "no signing",
                    "EFFECT_DENY",
                    "activity.action == 'SIGN'",
                    "",
                    "",
                    "",
                    now,
                    now,
                )
            ),
        ]
    )
    stamper = ApiKeyStamper(pub, priv)
    params = {
        "signWith": w.key_id,
        "payload": "x",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    status, data = await _submit(w, stamper, "sign_raw_payload", SIGN, params)
    assert (status, data["code"]) == (403, 7), data
    w.sql(
        "UPDATE policies SET effect = 'EFFECT_ALLOW' WHERE name = ? AND organization_id = ?", ("no signing", w.org_id)
    )
    before = service.keys.operations
    status, data = await _submit(w, stamper, "sign_raw_payload", SIGN, {**params, "payload": "y"})
    # PostgreSQL reads afresh and refuses, naming the tampered policies; SQLite's running daemon
    # still decides on the policies it verified. Either way the flipped policy is not obeyed.
    assert status in (403, 503), data
    if status == 503:
        assert "`policies` rows" in data["message"], data
    assert service.keys.operations == before
    await w.start()  # and after a restart, nothing is served
    status, data = await _submit(w, stamper, "sign_raw_payload", SIGN, {**params, "payload": "z"})
    assert status == 503 and "notaris" in data["message"], data


async def test_a_private_key_moved_from_another_organization_does_not_sign(world: World) -> None:
    w = world
    assert w.service is not None
    service = w.service
    # Organization B, with its own key, made by its own root through the API.
    priv, pub = p256.generate_private_key()
    b_id, _ = create_organization(service.repo, "b", "root", pub, int(time.time() * 1000))
    b = World(
        w.settings,
        w.token,
        b_id,
        ApiKeyStamper(pub, priv),
        w.alice,
        w.alice_key,
        w.passkey,
        "",
        w.policy,
        w.tag,
        w.sql,
        service,
        w.client,
    )
    status, data = await _submit(
        b,
        b.root,
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {"privateKeyName": "b-key", "curve": "CURVE_SECP256K1", "privateKeyTags": [], "addressFormats": []}
            ]
        },
    )
    assert status == 200, data
    b_key = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    w.sql("UPDATE private_keys SET organization_id = ? WHERE id = ?", (w.org_id, b_key))
    before = service.keys.operations
    params = {
        "signWith": b_key,
        "payload": "x",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    status, data = await _submit(w, w.root, "sign_raw_payload", SIGN, params)
    assert status == 503, data
    assert "`private_keys` row" in data["message"], data
    assert service.keys.operations == before


async def test_a_pending_activity_and_its_votes_are_taken_from_their_stamps_not_the_database(world: World) -> None:
    """A pending activity's intent edited, its request forged, or a vote written into the database:
    the approval signs only what was stamped, or is refused; nothing else is signed."""
    w = world
    assert w.service is not None
    service, repo = w.service, w.service.repo
    now = int(time.time() * 1000)
    stampers = []
    for name in ("bob", "carol"):
        priv, pub = p256.generate_private_key()
        user = User(str(uuid.uuid4()), w.org_id, name, None, "ACCESS_TYPE_API", (), now, now)
        key = ApiKey(str(uuid.uuid4()), user.id, w.org_id, name, pub, "API_KEY_CURVE_P256", None, now, now)
        repo.write_sync([*repo.users.insert_user(user), *repo.users.insert_api_key(key)])
        stampers.append(ApiKeyStamper(pub, priv))
    bob, carol = stampers
    policy = PolicyRecord(
        str(uuid.uuid4()), w.org_id, "two sign", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2",
        "", "", now, now,
    )  # fmt: skip
    repo.write_sync(repo.policies.insert_policy(policy))

    async def pending(payload: str) -> dict[str, Any]:
        params = {"signWith": w.key_id, "payload": payload, "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                  "hashFunction": "HASH_FUNCTION_KECCAK256"}  # fmt: skip
        status, data = await _submit(w, bob, "sign_raw_payload", SIGN, params)
        assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", data
        return dict(data["activity"])

    async def approve(target: dict[str, Any]) -> tuple[int, Any]:
        return await _submit(
            w, carol, "approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", {"fingerprint": target["fingerprint"]}
        )

    # 1. The stored intent is edited: the approval signs the payload bob stamped, not the edit.
    target = await pending("pay alice")
    w.sql("UPDATE activities SET intent = replace(intent, 'pay alice', 'pay mallory') WHERE id = ?", (target["id"],))
    status, data = await approve(target)
    assert status == 200, data
    sig = data["activity"]["result"]["signRawPayloadResult"]
    from coincurve import PublicKey

    from strongroom.crypto.keccak import keccak256

    key = repo.private_keys.private_key(w.org_id, w.key_id)
    assert key is not None
    recovered = PublicKey.from_signature_and_message(
        bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), keccak256(b"pay alice"), hasher=None
    )
    assert recovered.format(compressed=True) == PublicKey(key.public_key).format(compressed=True)

    # 2. The stored request itself is replaced by a forged one: refused, nothing signed.
    target = await pending("pay bob")
    forged = json.dumps({"type": SIGN, "parameters": {"payload": "pay mallory"}}).encode()
    w.sql("UPDATE activities SET request = ? WHERE id = ?", (forged, target["id"]))
    before = service.keys.operations
    status, data = await approve(target)
    assert status == 503 and "does not match" in data["message"], data
    assert service.keys.operations == before

    # 3. A vote written into the database (no stamped request behind it): refused, nothing signed.
    target = await pending("pay carol")
    fake = {"userId": w.alice.id, "message": json.dumps({"type": "ACTIVITY_TYPE_APPROVE_ACTIVITY"}),
            "selection": "VOTE_SELECTION_APPROVED", "publicKey": w.alice_key.public_key, "scheme": "x"}  # fmt: skip
    rows = w.sql("SELECT votes FROM activities WHERE id = ?", (target["id"],))
    votes = json.loads(rows[0][0])
    w.sql("UPDATE activities SET votes = ? WHERE id = ?", (json.dumps([*votes, fake]), target["id"]))
    before = service.keys.operations
    status, data = await approve(target)
    assert status == 503 and "missing" in data["message"], data
    assert service.keys.operations == before


async def test_a_whole_organization_restored_to_an_older_notarised_version_is_refused(world: World) -> None:
    """Rows and `org_state` restored together (an old backup of one organization): every MAC is
    valid, but the running daemon has seen a newer version."""
    w = world
    assert w.service is not None
    service = w.service
    status, data = await w.sign()
    assert status == 200, data
    tables = [t.name for t in TABLES] + ["org_state"]
    saved = {
        t: w.sql(f"SELECT * FROM {t} WHERE {'id' if t == 'organizations' else 'organization_id'} = ?", (w.org_id,))
        for t in tables
    }
    _legit_change(w, "policies")  # version n+1, notarised
    status, data = await w.sign()
    assert status == 200, data
    for t in tables:  # the attacker puts version n back, rows and MAC together
        scope = "id" if t == "organizations" else "organization_id"
        w.sql(f"DELETE FROM {t} WHERE {scope} = ?", (w.org_id,))
        for row in saved[t]:
            w.sql(f"INSERT INTO {t} VALUES ({', '.join('?' for _ in row)})", tuple(row))
    service.repo.invalidate()  # as after any write this daemon makes, or on every read on PostgreSQL
    before = service.keys.operations
    status, data = await w.sign()
    assert status == 503 and "went back from version" in data["message"], data
    assert service.keys.operations == before


async def test_an_audit_log_rewritten_while_the_daemon_runs_stops_writes_and_signing(world: World) -> None:
    """The tail of the audit chain rewritten and re-linked behind the running daemon's back: the
    writer refuses to extend it (and so nothing is checkpointed over it), and signing stops."""
    from strongroom.store.audit import entry_hash

    w = world
    assert w.service is not None
    service = w.service
    status, data = await w.sign()
    assert status == 200, data
    seq, prev, body = w.sql("SELECT seq, prev_hash, body FROM audit_log ORDER BY seq DESC LIMIT 1", ())[0]
    forged = str(body).replace("COMPLETED", "FAILED")
    w.sql(
        "UPDATE audit_log SET body = ?, hash = ? WHERE seq = ?", (forged, entry_hash(prev, seq, forged.encode()), seq)
    )
    status, data = await w.sign()  # its commit finds the rewritten chain: the signature is never released
    assert status == 503 and "rewritten" in data["message"], data
    assert "signature" not in json.dumps(data)
    before = service.keys.operations
    status, data = await w.sign()
    assert status == 503 and "signing is stopped" in data["message"], data
    assert service.keys.operations == before
    assert not await service.checkpoint()  # the rewritten head is never signed


async def test_an_organization_reparented_in_the_database_is_not_listed_as_a_sub_organization(world: World) -> None:
    """A database writer moves organization B under A (`parent_id`): A's root must not be shown B as
    one of its sub-organizations; the forged row is refused, naming it."""
    w = world
    assert w.service is not None and w.client is not None
    _, pub = p256.generate_private_key()
    b_id, _ = create_organization(w.service.repo, "victim", "root", pub, int(time.time() * 1000))
    w.sql("UPDATE organizations SET parent_id = ? WHERE id = ?", (w.org_id, b_id))
    body = json.dumps({"organizationId": w.org_id}).encode()
    resp = await w.client.post("/public/v1/query/list_suborgs", data=body, headers={"X-Stamp": w.root.stamp(body)})
    data = json.loads(await resp.read())
    assert "organizationIds" not in data, data  # B is never listed as A's
    assert resp.status == 503, data
    assert "`organizations` row" in data["message"], data


async def test_an_approver_is_shown_what_was_stamped_not_an_intent_edited_in_the_database(world: World) -> None:
    """What you see is what you sign: a waiting activity's stored intent rewritten in the database
    (a harmful request dressed up as a harmless one) does not reach the decoded view an approver
    reads (get_activity_view); a forged stored request is refused there as at the vote."""
    w = world
    assert w.service is not None and w.client is not None
    repo, now = w.service.repo, int(time.time() * 1000)
    priv, pub = p256.generate_private_key()
    bob = User(str(uuid.uuid4()), w.org_id, "bob", None, "ACCESS_TYPE_API", (), now, now)
    key = ApiKey(str(uuid.uuid4()), bob.id, w.org_id, "bob", pub, "API_KEY_CURVE_P256", None, now, now)
    policy = PolicyRecord(
        str(uuid.uuid4()), w.org_id, "two sign", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2",
        "", "", now, now,
    )  # fmt: skip
    repo.write_sync(
        [*repo.users.insert_user(bob), *repo.users.insert_api_key(key), *repo.policies.insert_policy(policy)]
    )
    params = {"signWith": w.key_id, "payload": "pay mallory", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
              "hashFunction": "HASH_FUNCTION_KECCAK256"}  # fmt: skip
    status, data = await _submit(w, ApiKeyStamper(pub, priv), "sign_raw_payload", SIGN, params)
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", data
    target = data["activity"]

    async def view() -> tuple[int, Any]:
        body = json.dumps({"organizationId": w.org_id, "activityId": target["id"]}).encode()
        resp = await w.client.post(
            "/public/v1/query/get_activity_view", data=body, headers={"X-Stamp": w.root.stamp(body)}
        )
        return resp.status, json.loads(await resp.read())

    w.sql("UPDATE activities SET intent = replace(intent, 'pay mallory', 'pay alice') WHERE id = ?", (target["id"],))
    status, data = await view()
    assert status == 200, data
    shown = json.dumps(data["view"])
    assert "pay mallory" in shown and "pay alice" not in shown, data["view"]

    forged = json.dumps({"type": SIGN, "parameters": {**params, "payload": "pay alice"}}).encode()
    w.sql("UPDATE activities SET request = ? WHERE id = ?", (forged, target["id"]))
    status, data = await view()
    assert status == 503 and "does not match" in data["message"], data
