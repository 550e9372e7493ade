"""Users, API keys of every stamp scheme, limits, self-service and sub-organizations (in-process, real token).

Stamps here are made with independent code (cryptography, coincurve, PyNaCl, pycryptodome's
Keccak), not with the daemon's own verifiers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import nacl.signing
import pytest
from aiohttp.test_utils import TestClient, TestServer
from Crypto.Hash import keccak
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client.calls import ETHEREUM_ACCOUNT
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken
from strongroom.store.records import ApiKey, User

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
P256, SECP, EIP191, ED = (
    "SIGNATURE_SCHEME_TK_API_P256",
    "SIGNATURE_SCHEME_TK_API_SECP256K1",
    "SIGNATURE_SCHEME_TK_API_SECP256K1_EIP191",
    "SIGNATURE_SCHEME_TK_API_ED25519",
)
CURVE_OF = {P256: "API_KEY_CURVE_P256", SECP: "API_KEY_CURVE_SECP256K1", EIP191: "API_KEY_CURVE_SECP256K1"}
CURVE_OF[ED] = "API_KEY_CURVE_ED25519"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der(r: int, s: int) -> bytes:
    """DER SEQUENCE{INTEGER r, INTEGER s}, minimal integers."""

    def integer(n: int) -> bytes:
        raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "big")
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


@dataclass
class Key:
    """An API key pair and how it stamps (one of Turnkey's four schemes)."""

    scheme: str
    public_key: str
    sign: Callable[[bytes], str]  # body -> signature hex

    @property
    def curve(self) -> str:
        return CURVE_OF[self.scheme]

    def stamp(self, body: bytes) -> str:
        data = {"publicKey": self.public_key, "scheme": self.scheme, "signature": self.sign(body)}
        return b64url(json.dumps(data).encode())

    def params(self, name: str = "key", expiration: str | None = None) -> dict[str, Any]:
        out = {"apiKeyName": name, "publicKey": self.public_key, "curveType": self.curve}
        if expiration is not None:
            out["expirationSeconds"] = expiration
        return out

    def with_scheme(self, scheme: str, sign: Callable[[bytes], str]) -> Key:
        return Key(scheme, self.public_key, sign)


def p256_key() -> Key:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return Key(P256, public.hex(), lambda body: private.sign(body, ec.ECDSA(hashes.SHA256())).hex())


def secp256k1_key(secret: coincurve.PrivateKey | None = None) -> Key:
    private = secret or coincurve.PrivateKey()
    return Key(SECP, private.public_key.format(compressed=True).hex(), lambda body: private.sign(body).hex())


def eip191_wallet(private: coincurve.PrivateKey) -> Key:
    """What `@turnkey/wallet-stamper` does with an EVM wallet: personal_sign, r‖s‖v → DER, key recovered."""

    def personal_sign(body: bytes) -> bytes:
        digest = keccak.new(digest_bits=256, data=b"\x19Ethereum Signed Message:\n" + str(len(body)).encode() + body)
        return private.sign_recoverable(digest.digest(), hasher=None)  # 65 bytes r‖s‖v

    def sign(body: bytes) -> str:
        sig = personal_sign(body)
        return der(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")).hex()

    probe = personal_sign(b"recover")
    digest = keccak.new(digest_bits=256, data=b"\x19Ethereum Signed Message:\n7recover").digest()
    recovered = coincurve.PublicKey.from_signature_and_message(probe, digest, hasher=None)
    return Key(EIP191, recovered.format(compressed=True).hex(), sign)


def ed25519_key() -> Key:
    private = nacl.signing.SigningKey.generate()
    return Key(ED, bytes(private.verify_key).hex(), lambda body: private.sign(body).signature.hex())


class Time:
    def __init__(self) -> None:
        self.offset_ms = 0

    def wall(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def mono(self) -> int:
        return time.monotonic_ns() // 1_000_000 + self.offset_ms


@dataclass
class Member:
    user_id: str
    key: Key
    headers: Callable[[bytes], dict[str, str]] | None = None

    def stamp_headers(self, body: bytes) -> dict[str, str]:
        return self.headers(body) if self.headers is not None else {"X-Stamp": self.key.stamp(body)}


@dataclass
class Org:
    client: TestClient[Any, Any]
    service: Strongroom
    time: Time
    id: str
    root: Member
    _n: list[int] = field(default_factory=lambda: [0])

    async def post(self, who: Member, url: str, data: dict[str, Any]) -> tuple[int, Any]:
        body = json.dumps(data).encode()
        resp = await self.client.post(url, data=body, headers=who.stamp_headers(body))
        return resp.status, json.loads(await resp.read())

    async def submit(
        self, who: Member, path: str, activity_type: str, params: dict[str, Any], org_id: str | None = None
    ) -> tuple[int, Any]:
        self._n[0] += 1  # distinct bodies even within one millisecond
        envelope = {
            "type": activity_type,
            "timestampMs": str(self.time.wall() - self._n[0] % 1000),
            "organizationId": org_id or self.id,
            "parameters": params,
        }
        return await self.post(who, f"/public/v1/submit/{path}", envelope)

    async def ok(
        self, who: Member, path: str, activity_type: str, params: dict[str, Any], org_id: str | None = None
    ) -> dict[str, Any]:
        status, data = await self.submit(who, path, activity_type, params, org_id)
        assert status == 200, data
        assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
        result: dict[str, Any] = next(iter(data["activity"]["result"].values()))
        return result

    async def query(self, who: Member, name: str, org_id: str | None = None, **params: Any) -> tuple[int, Any]:
        return await self.post(who, f"/public/v1/query/{name}", {"organizationId": org_id or self.id, **params})

    async def create_user(
        self, name: str, *keys: Key, email: str | None = None, authenticators: list[Any] | None = None
    ) -> str:
        user: dict[str, Any] = {
            "userName": name,
            "apiKeys": [k.params(f"{name}-{i}") for i, k in enumerate(keys)],
            "authenticators": authenticators or [],
            "oauthProviders": [],
            "userTags": [],
        }
        if email:
            user["userEmail"] = email
        result = await self.ok(self.root, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": [user]})
        user_id: str = result["userIds"][0]
        return user_id

    async def member(self, name: str, key: Key | None = None) -> Member:
        key = key or p256_key()
        return Member(await self.create_user(name, key), key)


@pytest.fixture
async def org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=10_000.0,
        webauthn_rp_id="localhost",
        webauthn_origins=("http://localhost:8080",),
    )
    t = Time()
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000, wall=t.wall, monotonic=t.mono))
    root_key = p256_key()
    org_id, root_id = create_organization(service.repo, "identity", "root", root_key.public_key, t.wall())
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    yield Org(client, service, t, org_id, Member(root_id, root_key))
    await client.close()
    service.close()


def error(data: dict[str, Any]) -> tuple[int, str]:
    return data["code"], data["message"]


# -- stamps of every scheme ------------------------------------------------------------------------------


async def test_every_stamp_scheme_against_a_key_of_its_curve(org: Org) -> None:
    wallet_secret = coincurve.PrivateKey()
    keys = {
        "p256": p256_key(),
        "secp256k1": secp256k1_key(wallet_secret),
        "ed25519": ed25519_key(),
    }
    members = {name: Member(await org.create_user(name, key), key) for name, key in keys.items()}
    # An EVM wallet's personal_sign stamps (EIP-191) verify against the same secp256k1 key.
    wallet = eip191_wallet(wallet_secret)
    assert wallet.public_key == keys["secp256k1"].public_key
    members["evm-wallet"] = Member(members["secp256k1"].user_id, wallet)
    for name, m in members.items():
        status, data = await org.query(m, "whoami")
        assert status == 200, (name, data)
        assert data["userId"] == m.user_id
        # ... and for submissions: each one creates a key (a policy-free, self-service credential change).
        result = await org.ok(
            m,
            "create_api_keys",
            "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
            {"userId": m.user_id, "apiKeys": [p256_key().params(f"extra {name}")]},
        )
        assert len(result["apiKeyIds"]) == 1
    status, data = await org.query(org.root, "get_user", userId=members["ed25519"].user_id)
    assert [k["credential"]["type"] for k in data["user"]["apiKeys"]] == [
        "CREDENTIAL_TYPE_API_KEY_ED25519",
        "CREDENTIAL_TYPE_API_KEY_P256",
    ]
    assert data["user"]["apiKeys"][0]["credential"]["publicKey"] == keys["ed25519"].public_key

    # A stamp whose signature is good but whose key is unknown, or tampered: 401.
    stranger = Member(members["p256"].user_id, p256_key())
    status, data = await org.query(stranger, "whoami")
    assert (status, data["code"]) == (401, 16)
    assert data["message"] == "could not find public key in organization"
    bad = Member(
        members["ed25519"].user_id, keys["ed25519"].with_scheme(ED, lambda body: keys["ed25519"].sign(body + b"x"))
    )
    status, data = await org.query(bad, "whoami")
    assert (status, data["message"]) == (401, "could not verify api key signature")


async def test_a_scheme_is_only_accepted_for_a_key_of_its_curve(org: Org) -> None:
    # A secp256k1 point whose x is also a valid P-256 x: registered as a P-256 key, then stamped
    # with the secp256k1 scheme (the signature itself verifies on secp256k1).
    while True:
        secret = coincurve.PrivateKey()
        candidate = secp256k1_key(secret)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(candidate.public_key))
            break
        except ValueError:
            continue
    mislabelled = Key(P256, candidate.public_key, candidate.sign)
    user_id = await org.create_user("confused", mislabelled)
    status, data = await org.query(Member(user_id, candidate), "whoami")
    assert status == 401
    assert "cannot be used with an api key of curve `API_KEY_CURVE_P256`" in data["message"]
    # Unknown schemes and malformed keys are refused too.
    status, data = await org.query(
        Member(user_id, candidate.with_scheme("SIGNATURE_SCHEME_NOPE", candidate.sign)), "whoami"
    )
    assert status == 401
    status, data = await org.submit(
        org.root,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {
            "userId": user_id,
            "apiKeys": [{"apiKeyName": "x", "publicKey": "02" + "ff" * 32, "curveType": CURVE_OF[P256]}],
        },
    )
    assert status == 400
    assert "invalid public key" in data["message"]


# -- expiry, rotation, deletion ----------------------------------------------------------------------------


async def test_expiry_rotation_and_deletion_take_effect_on_the_next_request(org: Org) -> None:
    first = p256_key()
    alice = Member(await org.create_user("alice", first), first)
    # Alice adds a short-lived key herself (self-service), which works until it expires.
    short = p256_key()
    result = await org.ok(
        alice,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": alice.user_id, "apiKeys": [short.params("short", expiration="60")]},
    )
    short_id = result["apiKeyIds"][0]
    status, data = await org.query(alice, "get_api_key", apiKeyId=short_id)
    assert data["apiKey"]["expirationSeconds"] == "60"
    assert (await org.query(Member(alice.user_id, short), "whoami"))[0] == 200
    org.time.offset_ms += 61_000
    status, data = await org.query(Member(alice.user_id, short), "whoami")
    assert (status, data["message"]) == (401, "expired api key")
    assert data["details"][0]["turnkeyErrorCode"] == "API_KEY_EXPIRED"

    # Rotation: a second long-lived key, switch to it, delete the first; the first is refused at once.
    second = p256_key()
    result = await org.ok(
        alice,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": alice.user_id, "apiKeys": [second.params("second")]},
    )
    alice2 = Member(alice.user_id, second)
    assert (await org.query(alice, "whoami"))[0] == 200  # the first key is warm in the read cache
    status, data = await org.query(alice2, "get_api_keys")
    first_id = next(k["apiKeyId"] for k in data["apiKeys"] if k["credential"]["publicKey"] == first.public_key)
    await org.ok(
        alice2, "delete_api_keys", "ACTIVITY_TYPE_DELETE_API_KEYS", {"userId": alice.user_id, "apiKeyIds": [first_id]}
    )
    status, data = await org.query(alice, "whoami")
    assert (status, data["message"]) == (401, "could not find public key in organization")
    assert (await org.query(alice2, "whoami"))[0] == 200
    status, data = await org.query(org.root, "get_api_keys", userId=alice.user_id)
    assert {k["apiKeyId"] for k in data["apiKeys"]} == {short_id, result["apiKeyIds"][0]}


async def test_users_create_update_delete(org: Org) -> None:
    tag = (
        await org.ok(
            org.root, "create_user_tag", "ACTIVITY_TYPE_CREATE_USER_TAG", {"userTagName": "ops", "userIds": []}
        )
    )["userTagId"]
    bob_key, carol_key = p256_key(), ed25519_key()
    result = await org.ok(
        org.root,
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {
            "users": [
                {
                    "userName": "bob",
                    "userEmail": "bob@example.com",
                    "userPhoneNumber": "+13214567890",
                    "apiKeys": [bob_key.params("bob")],
                    "authenticators": [],
                    "oauthProviders": [],
                    "userTags": [tag],
                },
                {
                    "userName": "carol",
                    "apiKeys": [carol_key.params("carol")],
                    "authenticators": [],
                    "oauthProviders": [],
                    "userTags": [],
                },
            ]
        },
    )
    bob_id, carol_id = result["userIds"]
    status, data = await org.query(org.root, "get_user", userId=bob_id)
    user = data["user"]
    assert (user["userName"], user["userEmail"], user["userPhoneNumber"], user["userTags"]) == (
        "bob",
        "bob@example.com",
        "+13214567890",
        [tag],
    )
    assert user["authenticators"] == []
    assert org.service.repo.users.user(bob_id).access_type == "ACCESS_TYPE_API"  # type: ignore[union-attr]
    # Duplicate email (any case) is refused, on creation and on update.
    for email in ("bob@example.com", "BOB@Example.com"):
        status, data = await org.submit(
            org.root,
            "create_users",
            "ACTIVITY_TYPE_CREATE_USERS_V4",
            {
                "users": [
                    {
                        "userName": "bob2",
                        "userEmail": email,
                        "apiKeys": [p256_key().params()],
                        "authenticators": [],
                        "oauthProviders": [],
                        "userTags": [],
                    }
                ]
            },
        )
        assert status == 400
        assert data["message"] == "email already in use (`parameters.users[0].userEmail`)"
    status, data = await org.submit(
        org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": carol_id, "userEmail": "Bob@example.com"}
    )
    assert status == 400
    assert data["message"] == "email already in use (`parameters.userEmail`)"
    # A user needs a credential.
    status, data = await org.submit(
        org.root,
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {"users": [{"userName": "nobody", "apiKeys": [], "authenticators": [], "oauthProviders": [], "userTags": []}]},
    )
    assert status == 400
    assert "at least one credential" in data["message"]

    result = await org.ok(
        org.root,
        "update_user",
        "ACTIVITY_TYPE_UPDATE_USER",
        {"userId": carol_id, "userName": "carol c", "userEmail": "carol@example.com", "userTagIds": [tag]},
    )
    assert result == {"userId": carol_id}
    status, data = await org.query(org.root, "list_users")
    by_id = {u["userId"]: u for u in data["users"]}
    assert (by_id[carol_id]["userName"], by_id[carol_id]["userEmail"], by_id[carol_id]["userTags"]) == (
        "carol c",
        "carol@example.com",
        [tag],
    )

    # Root users cannot be deleted while in the root quorum; others can, and their keys die with them.
    status, data = await org.submit(
        org.root, "delete_users", "ACTIVITY_TYPE_DELETE_USERS", {"userIds": [org.root.user_id]}
    )
    assert status == 400
    assert "member of the root quorum" in data["message"]
    carol = Member(carol_id, carol_key)
    assert (await org.query(carol, "whoami"))[0] == 200
    result = await org.ok(org.root, "delete_users", "ACTIVITY_TYPE_DELETE_USERS", {"userIds": [carol_id]})
    assert result == {"userIds": [carol_id]}
    assert (await org.query(carol, "whoami"))[0] == 401
    status, data = await org.query(org.root, "get_user", userId=carol_id)
    assert status == 404
    # The email is free again.
    await org.create_user("carol again", p256_key(), email="carol@example.com")


# -- self-service and policies --------------------------------------------------------------------------


async def test_users_manage_their_own_credentials_unless_a_policy_denies(org: Org) -> None:
    alice, bob = await org.member("alice"), await org.member("bob")
    extra = p256_key()
    # Alice's own keys: no policy needed.
    result = await org.ok(
        alice,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": alice.user_id, "apiKeys": [extra.params()]},
    )
    await org.ok(
        alice,
        "delete_api_keys",
        "ACTIVITY_TYPE_DELETE_API_KEYS",
        {"userId": alice.user_id, "apiKeyIds": result["apiKeyIds"]},
    )
    # Bob's keys, other users, other activities: the policies decide (none here → implicit deny).
    status, data = await org.submit(
        alice,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": bob.user_id, "apiKeys": [extra.params()]},
    )
    assert (status, data["code"]) == (403, 7)
    assert "implicitly" in data["message"]
    status, data = await org.submit(
        alice,
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {
            "users": [
                {
                    "userName": "x",
                    "apiKeys": [p256_key().params()],
                    "authenticators": [],
                    "oauthProviders": [],
                    "userTags": [],
                }
            ]
        },
    )
    assert status == 403
    status, data = await org.submit(alice, "delete_users", "ACTIVITY_TYPE_DELETE_USERS", {"userIds": [alice.user_id]})
    assert status == 403  # deleting oneself is not a credential change
    # A DENY policy wins over the built-in allow.
    status, data = await org.submit(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "no new credentials",
            "effect": "EFFECT_DENY",
            "condition": "activity.resource == 'CREDENTIAL' && activity.action == 'CREATE'",
            "notes": "",
        },
    )
    assert status == 200, data
    status, data = await org.submit(
        alice,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": alice.user_id, "apiKeys": [extra.params()]},
    )
    assert (status, data["message"]) == (403, "policy engine denied request explicitly")
    # ... and the policy sees who asked: `activity.params.user_id`.
    status, data = await org.query(
        alice,
        "explain_activity",
        type="ACTIVITY_TYPE_DELETE_API_KEYS",
        parameters={"userId": alice.user_id, "apiKeyIds": []},
    )
    assert status == 400  # apiKeyIds must not be empty


# -- resource limits -------------------------------------------------------------------------------------


def _exhausted(status: int, data: dict[str, Any], needle: str) -> None:
    assert (status, data["code"]) == (429, 8), data
    assert needle in data["message"], data["message"]


async def test_resource_limits(org: Org) -> None:
    alice = await org.member("alice")

    def user(i: int) -> dict[str, Any]:
        return {
            "userName": f"u{i}",
            "apiKeys": [p256_key().params()],
            "authenticators": [],
            "oauthProviders": [],
            "userTags": [],
        }

    # 100 users per organization (root and alice are two).
    await org.ok(org.root, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": [user(i) for i in range(98)]})
    status, data = await org.submit(org.root, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": [user(999)]})
    _exhausted(status, data, "limit of 100 users: use sub-organizations for more users")

    # 10 long-lived API keys per user (alice has one).
    def keys(n: int, expiration: str | None = None) -> dict[str, Any]:
        return {"userId": alice.user_id, "apiKeys": [p256_key().params(f"k{i}", expiration) for i in range(n)]}

    await org.ok(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(9))
    status, data = await org.submit(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(1))
    _exhausted(status, data, "maximum long-lived api keys: the limit is 10 per user")

    # 10 expiring keys: an 11th evicts an expired one first, else the oldest.
    first = await org.ok(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(1, "5"))
    org.time.offset_ms += 1_000
    rest = await org.ok(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(9, "3600"))
    org.time.offset_ms += 10_000  # the first one has now expired
    eleventh = await org.ok(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(1, "3600"))

    async def expiring() -> set[str]:
        status, data = await org.query(org.root, "get_api_keys", userId=alice.user_id)
        return {k["apiKeyId"] for k in data["apiKeys"] if "expirationSeconds" in k}

    assert await expiring() == set(rest["apiKeyIds"] + eleventh["apiKeyIds"])
    twelfth = await org.ok(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(1, "3600"))
    now = await expiring()  # the oldest went: one of the nine created together
    assert len(now) == 10
    assert now - set(rest["apiKeyIds"]) == set(eleventh["apiKeyIds"] + twelfth["apiKeyIds"])
    assert first["apiKeyIds"][0] not in await expiring()
    status, data = await org.submit(alice, "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", keys(11, "60"))
    _exhausted(status, data, "maximum short-lived api keys")

    # 100 user tags per organization (Turnkey's tag limit), and a user carries at most 100.
    for i in range(100):
        await org.ok(
            org.root, "create_user_tag", "ACTIVITY_TYPE_CREATE_USER_TAG", {"userTagName": f"t{i}", "userIds": []}
        )
    status, data = await org.submit(
        org.root, "create_user_tag", "ACTIVITY_TYPE_CREATE_USER_TAG", {"userTagName": "one too many", "userIds": []}
    )
    _exhausted(status, data, "limit of 100 tags")
    status, data = await org.submit(
        org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": alice.user_id, "userTagIds": ["x"] * 101}
    )
    _exhausted(status, data, "at most 100 tags")


# -- sub-organizations -------------------------------------------------------------------------------


async def make_suborg(org: Org, name: str, **extra: Any) -> tuple[str, Member]:
    key = p256_key()
    result = await org.ok(
        org.root,
        "create_sub_organization",
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        {
            "subOrganizationName": name,
            "rootUsers": [
                {
                    "userName": f"{name} root",
                    "userEmail": f"{name}@example.com",
                    "apiKeys": [key.params("root key")],
                    "authenticators": [],
                    "oauthProviders": [],
                }
            ],
            "rootQuorumThreshold": 1,
            **extra,
        },
    )
    assert set(result) >= {"subOrganizationId", "rootUserIds"}
    return result["subOrganizationId"], Member(result["rootUserIds"][0], key)


async def test_sub_organizations_are_isolated_both_ways(org: Org) -> None:
    sub_id, sub_root = await make_suborg(
        org,
        "end-user-1",
        privateKeys=[
            {
                "privateKeyName": "wallet",
                "curve": "CURVE_SECP256K1",
                "privateKeyTags": [],
                "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
            }
        ],
    )
    sibling_id, sibling_root = await make_suborg(org, "end-user-2")
    # The sub-organization's root user acts inside it: keys created with it, and more.
    status, data = await org.query(sub_root, "list_private_keys", org_id=sub_id)
    (wallet,) = data["privateKeys"]
    signed = await org.ok(
        sub_root,
        "sign_raw_payload",
        SIGN,
        {
            "signWith": wallet["privateKeyId"],
            "payload": "hi",
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        },
        org_id=sub_id,
    )
    assert len(signed["r"]) == 64
    status, data = await org.query(sub_root, "get_organization", org_id=sub_id)
    assert data["organizationData"]["rootQuorum"] == {"threshold": 1, "userIds": [sub_root.user_id]}

    # The parent reads the sub-organization ...
    for name, params in (
        ("get_organization", {}),
        ("list_users", {}),
        ("list_private_keys", {}),
        ("get_user", {"userId": sub_root.user_id}),
        ("whoami", {}),
    ):
        status, data = await org.query(org.root, name, org_id=sub_id, **params)
        assert status == 200, (name, data)
    assert data == {
        "organizationId": sub_id,
        "organizationName": "end-user-1",
        "userId": org.root.user_id,
        "username": "root",
    }
    # ... but cannot act or sign in it.
    before = org.service.keys.operations
    status, data = await org.submit(
        org.root,
        "sign_raw_payload",
        SIGN,
        {
            "signWith": wallet["privateKeyId"],
            "payload": "hi",
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        },
        org_id=sub_id,
    )
    assert (status, data["code"]) == (403, 7)
    assert "may read this sub-organization but not submit" in data["message"]
    assert org.service.keys.operations == before

    # A sub-organization's users see neither their parent nor their siblings.
    for target in (org.id, sibling_id):
        for name in ("whoami", "list_users", "get_organization"):
            status, data = await org.query(sub_root, name, org_id=target)
            assert (status, data["code"]) == (401, 16), (target, name, data)
        status, data = await org.submit(
            sub_root, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": []}, org_id=target
        )
        assert status == 401
    status, data = await org.query(sibling_root, "get_private_key", org_id=sub_id, privateKeyId=wallet["privateKeyId"])
    assert status == 401
    assert "or its parent organization" in data["message"]

    # list_suborgs: the parent sees both; a sub-organization has none.
    status, data = await org.query(org.root, "list_suborgs")
    assert data["organizationIds"] == [sub_id, sibling_id]
    status, data = await org.query(org.root, "list_suborgs", filterType="EMAIL", filterValue="END-USER-2@example.com")
    assert data["organizationIds"] == [sibling_id]
    status, data = await org.query(
        org.root, "list_suborgs", filterType="PUBLIC_KEY", filterValue=sub_root.key.public_key
    )
    assert data["organizationIds"] == [sub_id]
    status, data = await org.query(org.root, "list_suborgs", paginationOptions={"limit": "1", "after": sub_id})
    assert data["organizationIds"] == [sibling_id]
    status, data = await org.query(sub_root, "list_suborgs", org_id=sub_id)
    assert data["organizationIds"] == []

    # Limits and refusals.
    status, data = await org.submit(
        sub_root,
        "create_sub_organization",
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        {"subOrganizationName": "nested", "rootUsers": [], "rootQuorumThreshold": 1},
        org_id=sub_id,
    )
    _exhausted(status, data, "cannot create sub-organizations")
    status, data = await org.submit(
        org.root,
        "create_sub_organization",
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        {
            "subOrganizationName": "with wallet",
            "rootUsers": [
                {"userName": "r", "apiKeys": [p256_key().params()], "authenticators": [], "oauthProviders": []}
            ],
            "rootQuorumThreshold": 1,
            "wallet": {"walletName": "w", "accounts": [ETHEREUM_ACCOUNT]},
        },
    )
    assert status == 200, data  # with an HD wallet: it belongs to the new sub-organization only
    made = data["activity"]["result"]["createSubOrganizationResultV8"]
    assert len(made["wallet"]["addresses"]) == 1
    status, data = await org.query(org.root, "list_wallets")
    assert made["wallet"]["walletId"] not in {w["walletId"] for w in data["wallets"]}
    status, data = await org.query(org.root, "list_wallets", org_id=made["subOrganizationId"])
    assert [w["walletId"] for w in data["wallets"]] == [made["wallet"]["walletId"]]  # the parent may read
    status, data = await org.submit(
        org.root,
        "sign_raw_payload",
        "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
        {
            "signWith": made["wallet"]["addresses"][0],
            "payload": "parent",
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        },
    )
    assert status == 404, data  # not the parent's to sign with
    status, data = await org.submit(
        org.root,
        "create_sub_organization",
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        {
            "subOrganizationName": "bad quorum",
            "rootUsers": [
                {"userName": "r", "apiKeys": [p256_key().params()], "authenticators": [], "oauthProviders": []}
            ],
            "rootQuorumThreshold": 2,
        },
    )
    assert status == 400
    assert "quorum threshold 2 is larger than the 1 root users" in data["message"]


async def test_access_type_is_enforced_for_api_keys(org: Org) -> None:
    """An ACCESS_TYPE_WEB user's API key is refused, whatever its curve."""
    now = org.time.wall()
    key = ed25519_key()
    user = User(str(uuid.uuid4()), org.id, "web", None, "ACCESS_TYPE_WEB", (), now, now)
    record = ApiKey(str(uuid.uuid4()), user.id, org.id, "k", key.public_key, key.curve, None, now, now)
    repo = org.service.repo
    repo.write_sync([*repo.users.insert_user(user), *repo.users.insert_api_key(record)])
    status, data = await org.query(Member(user.id, key), "whoami")
    assert status == 401
    assert "ACCESS_TYPE_WEB: it cannot authenticate with an api key" in data["message"]
    # ... and it cannot be given one either, until its access type changes.
    status, data = await org.submit(
        org.root,
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {"userId": user.id, "apiKeys": [p256_key().params()]},
    )
    assert status == 400
    assert "cannot hold api keys" in data["message"]
    await org.ok(
        org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": user.id, "accessType": "ACCESS_TYPE_ALL"}
    )
    assert (await org.query(Member(user.id, key), "whoami"))[0] == 200
