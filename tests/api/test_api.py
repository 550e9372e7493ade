"""The HTTP API in-process (aiohttp test server) over a real SoftHSM2 token and SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from coincurve import PublicKey

from strongroom.api.app import make_app
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.crypto.keccak import keccak256
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm


@dataclass
class Org:
    id: str
    user_id: str
    stamper: ApiKeyStamper


@dataclass
class Api:
    client: TestClient[Any, Any]
    service: Strongroom
    org: Org
    other: Org
    db_path: Path

    def body(
        self, activity_type: str, parameters: dict[str, Any], *, org: Org | None = None, ts: int | None = None
    ) -> bytes:
        return json.dumps(
            {
                "type": activity_type,
                "timestampMs": str(ts if ts is not None else int(time.time() * 1000)),
                "organizationId": (org or self.org).id,
                "parameters": parameters,
            }
        ).encode()

    async def post(
        self, path: str, body: bytes, *, stamper: ApiKeyStamper | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        h = {"X-Stamp": (stamper or self.org.stamper).stamp(body)}
        h.update(headers or {})
        resp = await self.client.post(path, data=body, headers=h)
        data = await resp.read()
        return resp.status, json.loads(data), resp.headers

    async def submit(self, name: str, activity_type: str, parameters: dict[str, Any], **kw: Any) -> tuple[int, Any]:
        status, data, _ = await self.post(f"/public/v1/submit/{name}", self.body(activity_type, parameters, **kw))
        return status, data

    async def query(self, name: str, **params: Any) -> tuple[int, Any]:
        body = json.dumps({"organizationId": self.org.id, **params}).encode()
        status, data, _ = await self.post(f"/public/v1/query/{name}", body)
        return status, data

    def counts(self) -> tuple[int, int]:
        conn = sqlite3.connect(self.db_path)
        try:
            return (
                conn.execute("SELECT count(*) FROM activities").fetchone()[0],
                conn.execute("SELECT count(*) FROM private_keys").fetchone()[0],
            )
        finally:
            conn.close()


def _org(service: Strongroom, name: str) -> Org:
    priv, pub = p256.generate_private_key()
    org_id, user_id = create_organization(service.repo, name, "root", pub, int(time.time() * 1000))
    return Org(org_id, user_id, ApiKeyStamper(pub, priv))


@pytest.fixture(scope="module")
def service(softhsm_token: SoftHsmToken, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strongroom]:
    data = tmp_path_factory.mktemp("api")
    settings = Settings(
        data_dir=data,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        max_body_bytes=64 * 1024,
    )
    svc = Strongroom.open(settings)
    yield svc
    svc.close()


@pytest.fixture
async def api(service: Strongroom) -> AsyncIterator[Api]:
    org = _org(service, "main")
    other = _org(service, "other")
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    yield Api(client, service, org, other, service.settings.database_path)
    await client.close()


CREATE = "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2"
SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"


async def create_key(api: Api, curve: str, formats: list[str], name: str | None = None) -> dict[str, Any]:
    status, data = await api.submit(
        "create_private_keys",
        CREATE,
        {
            "privateKeys": [
                {
                    "privateKeyName": name or f"k-{uuid.uuid4()}",
                    "curve": curve,
                    "privateKeyTags": [],
                    "addressFormats": formats,
                }
            ]
        },
    )
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    created: dict[str, Any] = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    return created


async def test_whoami_and_exact_content_type(api: Api) -> None:
    body = json.dumps({"organizationId": api.org.id}).encode()
    status, data, headers = await api.post("/public/v1/query/whoami", body)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert data == {
        "organizationId": api.org.id,
        "organizationName": "main",
        "userId": api.org.user_id,
        "username": "root",
    }
    status, data, headers = await api.post("/public/v1/query/whoami", b"{not json")
    assert status == 400
    assert headers["Content-Type"] == "application/json"


async def test_create_and_sign_secp256k1_every_hash(api: Api) -> None:
    key = await create_key(api, "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM", "ADDRESS_FORMAT_COMPRESSED"])
    address = key["addresses"][0]["address"]
    assert address.startswith("0x") and address != address.lower()  # EIP-55 mixed case
    cases = [
        ("hello", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256", keccak256(b"hello")),
        ("68656c6c6f", "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_SHA256", hashlib.sha256(b"hello").digest()),
        ("0x" + "ab" * 32, "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_NO_OP", bytes([0xAB]) * 32),
    ]
    for sign_with in (address, address.lower(), key["privateKeyId"]):
        for payload, enc, fn, digest in cases:
            status, data = await api.submit(
                "sign_raw_payload",
                SIGN,
                {"signWith": sign_with, "payload": payload, "encoding": enc, "hashFunction": fn},
            )
            assert status == 200, data
            act = data["activity"]
            assert act["status"] == "ACTIVITY_STATUS_COMPLETED"
            res = act["result"]["signRawPayloadResult"]
            assert len(res["r"]) == 64 and len(res["s"]) == 64 and res["v"] in ("00", "01")
            sig = bytes.fromhex(res["r"] + res["s"] + res["v"])
            pub = PublicKey.from_signature_and_message(sig, digest, hasher=None)
            assert address_from_public_key(pub.format(compressed=False)) == address


async def test_sign_raw_payloads_keeps_order(api: Api) -> None:
    from nacl.signing import VerifyKey

    from strongroom.crypto.base58 import b58decode

    key = await create_key(api, "CURVE_ED25519", ["ADDRESS_FORMAT_SOLANA"])
    sol = key["addresses"][0]["address"]
    payloads = ["one", "two", "three"]
    status, data = await api.submit(
        "sign_raw_payloads",
        "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS",
        {
            "signWith": sol,
            "payloads": payloads,
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
        },
    )
    assert status == 200, data
    sigs = data["activity"]["result"]["signRawPayloadsResult"]["signatures"]
    assert len(sigs) == 3
    for p, s in zip(payloads, sigs, strict=True):
        assert s["v"] == "00"
        VerifyKey(b58decode(sol)).verify(p.encode(), bytes.fromhex(s["r"] + s["s"]))


def _sign_params(sign_with: str, **over: Any) -> dict[str, Any]:
    p = {
        "signWith": sign_with,
        "payload": "hi",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    p.update(over)
    return p


async def test_bad_input_gets_clear_errors_and_changes_nothing(api: Api) -> None:
    key = await create_key(api, "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    ed = await create_key(api, "CURVE_ED25519", ["ADDRESS_FORMAT_SOLANA"])
    kid = key["privateKeyId"]
    before = api.counts()
    now = int(time.time() * 1000)
    cases: list[tuple[str, bytes, int, str]] = [
        ("sign_raw_payload", b'{"type": ', 400, "not valid JSON"),
        ("sign_raw_payload", b"[1, 2]", 400, "must be an object"),
        ("sign_raw_payload", api.body("ACTIVITY_TYPE_NOPE", _sign_params(kid)), 400, "unsupported activity type"),
        ("sign_raw_payload", api.body(SIGN, _sign_params(str(uuid.uuid4()))), 404, "no private key"),
        (
            "sign_raw_payload",
            api.body(SIGN, _sign_params(kid, hashFunction="HASH_FUNCTION_NOT_APPLICABLE")),
            400,
            "only valid for ed25519",
        ),
        ("sign_raw_payload", api.body(SIGN, _sign_params(ed["privateKeyId"])), 400, "HASH_FUNCTION_NOT_APPLICABLE"),
        (
            "sign_raw_payload",
            api.body(SIGN, _sign_params(kid, hashFunction="HASH_FUNCTION_MD5")),
            400,
            "invalid hash function",
        ),
        (
            "sign_raw_payload",
            api.body(SIGN, _sign_params(kid, encoding="PAYLOAD_ENCODING_BASE32")),
            400,
            "invalid payload encoding",
        ),
        (
            "sign_raw_payload",
            api.body(SIGN, _sign_params(kid, encoding="PAYLOAD_ENCODING_HEXADECIMAL", payload="zz")),
            400,
            "hexadecimal",
        ),
        ("sign_raw_payload", api.body(SIGN, _sign_params(kid, hashFunction="HASH_FUNCTION_NO_OP")), 400, "32-byte"),
        ("sign_raw_payload", api.body(SIGN, {"payload": "x"}), 400, "missing field `parameters.signWith`"),
        ("sign_raw_payload", api.body(SIGN, _sign_params(kid), ts=now - 3_600_001), 400, "too old"),
        ("sign_raw_payload", api.body(SIGN, _sign_params(kid), ts=now + 6 * 60_000), 400, "future"),
        (
            "sign_raw_payload",
            api.body(SIGN, _sign_params(kid)).replace(b'"timestampMs": "', b'"timestampMs": "x'),
            400,
            "decimal milliseconds",
        ),
        (
            "create_private_keys",
            api.body(
                CREATE,
                {
                    "privateKeys": [
                        {"privateKeyName": "x", "curve": "CURVE_NOPE", "privateKeyTags": [], "addressFormats": []}
                    ]
                },
            ),
            400,
            "invalid curve",
        ),
        (
            "create_private_keys",
            api.body(
                CREATE,
                {
                    "privateKeys": [
                        {
                            "privateKeyName": "x",
                            "curve": "CURVE_ED25519",
                            "privateKeyTags": [],
                            "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                        }
                    ]
                },
            ),
            400,
            "invalid address format",
        ),
        ("create_private_keys", api.body(CREATE, {"privateKeys": []}), 400, "must not be empty"),
        ("no_such_activity", api.body(SIGN, _sign_params(kid)), 404, "unknown activity endpoint"),
    ]
    for path, body, want_status, want_text in cases:
        status, data, headers = await api.post(f"/public/v1/submit/{path}", body)
        assert status == want_status, (want_text, data)
        assert want_text in data["message"], data
        assert set(data) == {"code", "message", "details"}
        assert headers["Content-Type"] == "application/json"
    # A name used twice in one request, or already taken, creates neither key.
    dup = {"privateKeyName": "dup", "curve": "CURVE_ED25519", "privateKeyTags": [], "addressFormats": []}
    status, data = await api.submit("create_private_keys", CREATE, {"privateKeys": [dup, dup]})
    assert status == 400 and "already used" in data["message"]
    assert api.counts() == before


async def test_wrong_organization(api: Api) -> None:
    body = api.body(SIGN, _sign_params("x"), org=api.other)  # stamped with main's key
    status, data, _ = await api.post("/public/v1/submit/sign_raw_payload", body)
    assert (status, data["code"]) == (401, 16)
    assert data["message"] == "could not find public key in organization"
    status, data, _ = await api.post(
        "/public/v1/query/whoami", json.dumps({"organizationId": str(uuid.uuid4())}).encode()
    )
    assert (status, data["message"]) == (404, "no organization found with the given ID")
    status, data, _ = await api.post("/public/v1/query/whoami", json.dumps({"organizationId": "nope"}).encode())
    assert (status, data["message"]) == (400, "malformed organization ID provided")
    # Keys of one organization are invisible to the other.
    key = await create_key(api, "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    body = api.body(SIGN, _sign_params(key["privateKeyId"]), org=api.other)
    status, data, _ = await api.post("/public/v1/submit/sign_raw_payload", body, stamper=api.other.stamper)
    assert status == 404


async def test_stamp_errors(api: Api) -> None:
    body = json.dumps({"organizationId": api.org.id}).encode()
    resp = await api.client.post("/public/v1/query/whoami", data=body)
    assert resp.status == 401
    assert (await resp.json())["details"][0]["turnkeyErrorCode"] == "SIGNATURE_MISSING"
    stamp = api.org.stamper.stamp(body)
    resp = await api.client.post("/public/v1/query/whoami", data=body + b" ", headers={"X-Stamp": stamp})
    assert resp.status == 401
    assert (await resp.json())["message"] == "could not verify api key signature"
    resp = await api.client.post("/public/v1/query/whoami", data=body, headers={"X-Stamp": "!!!"})
    assert resp.status == 401
    # Python-style key order and padded base64url are accepted, as is the lowercase header name.
    sig = p256.sign_sha256_der(api.org.stamper.private_key, body).hex()
    stamp_json = json.dumps(
        {"publicKey": api.org.stamper.public_key, "scheme": "SIGNATURE_SCHEME_TK_API_P256", "signature": sig}
    )
    import base64

    padded = base64.urlsafe_b64encode(stamp_json.encode()).decode()
    resp = await api.client.post("/public/v1/query/whoami", data=body, headers={"x-stamp": padded})
    assert resp.status == 200


async def test_oversized_body_is_refused(api: Api) -> None:
    body = api.body(SIGN, _sign_params("x", payload="a" * 70_000))
    before = api.counts()
    status, data, headers = await api.post("/public/v1/submit/sign_raw_payload", body)
    assert status == 413
    assert "larger than" in data["message"]
    assert headers["Content-Type"] == "application/json"
    assert api.counts() == before


async def test_identical_submissions_execute_once(api: Api) -> None:
    key = await create_key(api, "CURVE_SECP256K1", [])
    body = api.body(SIGN, _sign_params(key["privateKeyId"]))
    before = api.counts()
    results = await asyncio.gather(*(api.post("/public/v1/submit/sign_raw_payload", body) for _ in range(5)))
    ids = {data["activity"]["id"] for _, data, _ in results}
    sigs = {json.dumps(data["activity"]["result"]) for _, data, _ in results}
    assert len(ids) == 1 and len(sigs) == 1
    status, data, _ = await api.post("/public/v1/submit/sign_raw_payload", body)
    assert data["activity"]["id"] in ids
    assert api.counts()[0] == before[0] + 1


async def test_activity_is_durable_before_the_response(api: Api) -> None:
    key = await create_key(api, "CURVE_SECP256K1", [])
    body = api.body(SIGN, _sign_params(key["privateKeyId"]))
    status, data, _ = await api.post("/public/v1/submit/sign_raw_payload", body)
    assert status == 200
    act = data["activity"]
    conn = sqlite3.connect(api.db_path)
    row = conn.execute(
        "SELECT request, stamp, status, result, fingerprint FROM activities WHERE id = ?", (act["id"],)
    ).fetchone()
    conn.close()
    assert row is not None
    assert bytes(row[0]) == body
    assert row[1]  # the stamp header as received
    assert row[2] == "ACTIVITY_STATUS_COMPLETED"
    assert json.loads(row[3]) == act["result"]
    assert row[4] == act["fingerprint"] == hashlib.sha256(body).hexdigest()
    # The activity shape SDKs parse strictly.
    for field in (
        "id",
        "organizationId",
        "status",
        "type",
        "intent",
        "result",
        "votes",
        "fingerprint",
        "canApprove",
        "canReject",
        "createdAt",
        "updatedAt",
    ):
        assert field in act
    assert isinstance(act["createdAt"]["seconds"], str) and isinstance(act["createdAt"]["nanos"], str)
    assert act["intent"] == {"signRawPayloadIntentV2": json.loads(body)["parameters"]}
    assert act["votes"][0]["userId"] == api.org.user_id


async def test_queries_and_pagination(api: Api) -> None:
    key = await create_key(api, "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM", "ADDRESS_FORMAT_UNCOMPRESSED"])
    status, data = await api.query("get_private_key", privateKeyId=key["privateKeyId"])
    assert status == 200
    pk = data["privateKey"]
    assert pk["curve"] == "CURVE_SECP256K1" and pk["publicKey"][:2] in ("02", "03")
    assert pk["addresses"] == key["addresses"]
    status, data = await api.query("list_private_keys")
    assert key["privateKeyId"] in {k["privateKeyId"] for k in data["privateKeys"]}
    for _ in range(3):
        await api.submit("sign_raw_payload", SIGN, _sign_params(key["privateKeyId"], payload=str(uuid.uuid4())))
    status, data = await api.query("list_activities", paginationOptions={"limit": "2"})
    assert status == 200 and len(data["activities"]) == 2
    first, second = data["activities"]
    assert int(first["createdAt"]["seconds"]) >= int(second["createdAt"]["seconds"])
    status, data = await api.query("list_activities", paginationOptions={"limit": "2", "before": second["id"]})
    assert second["id"] not in {a["id"] for a in data["activities"]}
    status, data = await api.query("list_activities", filterByType=[CREATE])
    assert {a["type"] for a in data["activities"]} == {CREATE}
    status, data = await api.query("get_activity", activityId=first["id"])
    assert data["activity"]["id"] == first["id"]
    status, data = await api.query("get_activity", activityId=str(uuid.uuid4()))
    assert status == 404
    status, data = await api.query("get_activity", activityId="nope")
    assert (status, data["message"]) == (400, "malformed activity ID provided")
    status, data = await api.query("get_organization")
    org = data["organizationData"]
    assert org["rootQuorum"] == {"threshold": 1, "userIds": [api.org.user_id]}
    assert org["users"][0]["apiKeys"][0]["credential"]["publicKey"] == api.org.stamper.public_key


async def test_sign_ethereum_transaction_and_typed_data(api: Api) -> None:
    from strongroom.chains.ethereum import rlp
    from strongroom.chains.ethereum.tx import parse_signed_transaction

    vectors = Path(__file__).resolve().parents[1] / "vectors" / "eip712.json"
    key = await create_key(api, "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    address = key["addresses"][0]["address"]

    # An EIP-1559 transfer, unsigned, as viem/ethers send it (hex without 0x).
    to = bytes.fromhex("3535353535353535353535353535353535353535")
    u = rlp.encode_uint
    unsigned = b"\x02" + rlp.encode([u(1), u(7), u(2 * 10**9), u(30 * 10**9), u(21000), to, u(10**18), b"", []])
    status, data = await api.submit(
        "sign_transaction",
        "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
        {"signWith": address, "unsignedTransaction": unsigned.hex(), "type": "TRANSACTION_TYPE_ETHEREUM"},
    )
    assert status == 200, data
    signed_hex = data["activity"]["result"]["signTransactionResult"]["signedTransaction"]
    assert not signed_hex.startswith("0x")
    signed = parse_signed_transaction(signed_hex)
    assert signed.tx.value == 10**18
    assert signed.tx.chain_id == 1
    assert signed.signature.s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    sender = PublicKey.from_signature_and_message(signed.signature.to_bytes65(), signed.tx.signing_hash(), hasher=None)
    assert address_from_public_key(sender.format(compressed=False)) == address

    # EIP-712 typed data (viem's serialisation), digest computed by the daemon.
    mail = json.loads(vectors.read_text())["mail"]
    status, data = await api.submit(
        "sign_raw_payload",
        SIGN,
        {
            "signWith": address,
            "payload": json.dumps(mail["viem"]),
            "encoding": "PAYLOAD_ENCODING_EIP712",
            "hashFunction": "HASH_FUNCTION_NO_OP",
        },
    )
    assert status == 200, data
    res = data["activity"]["result"]["signRawPayloadResult"]
    signer = PublicKey.from_signature_and_message(
        bytes.fromhex(res["r"] + res["s"] + res["v"]), bytes.fromhex(mail["digest"]), hasher=None
    )
    assert address_from_public_key(signer.format(compressed=False)) == address

    ed = await create_key(api, "CURVE_ED25519", [])
    for params, want in (
        (
            {"signWith": address, "unsignedTransaction": unsigned.hex(), "type": "TRANSACTION_TYPE_TRON"},
            "not supported",
        ),
        (
            {"signWith": address, "unsignedTransaction": "0xdeadbeef", "type": "TRANSACTION_TYPE_ETHEREUM"},
            "transaction",
        ),
        (
            {
                "signWith": ed["privateKeyId"],
                "unsignedTransaction": unsigned.hex(),
                "type": "TRANSACTION_TYPE_ETHEREUM",
            },
            "secp256k1",
        ),
    ):
        status, data = await api.submit("sign_transaction", "ACTIVITY_TYPE_SIGN_TRANSACTION_V2", params)
        assert status == 400, data
        assert want in data["message"]
    status, data = await api.submit(
        "sign_raw_payload",
        SIGN,
        {
            "signWith": address,
            "payload": json.dumps(mail["viem"]),
            "encoding": "PAYLOAD_ENCODING_EIP712",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        },
    )
    assert status == 400
    assert "HASH_FUNCTION_NO_OP" in data["message"]
