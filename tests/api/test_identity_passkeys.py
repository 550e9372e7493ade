"""Passkeys: registration with verified attestation, `X-Stamp-WebAuthn` requests, the `credentials` keyword.

`SoftAuthenticator` is a software WebAuthn authenticator (a P-256 key from `cryptography`); it
builds real attestation objects (CBOR, `none` and `packed` self-attestation) and real assertions,
so the daemon's verifier (the `webauthn` library) is exercised as with a browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_identity import SIGN, Member, Org, b64url, org, p256_key

__all__ = ["org"]  # the fixture, shared with test_identity

pytestmark = pytest.mark.softhsm

RP_ID = "localhost"
ORIGIN = "http://localhost:8080"
UP, UV, AT = 0x01, 0x04, 0x40


class SoftAuthenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.aaguid = bytes(range(16))

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def register(self, *, fmt: str = "none", origin: str = ORIGIN, challenge: bytes | None = None) -> dict[str, Any]:
        """Turnkey's `v1AuthenticatorParamsV2`, as a browser SDK sends it after navigator.credentials.create()."""
        challenge = challenge or os.urandom(32)
        client_data = json.dumps(
            {"type": "webauthn.create", "challenge": b64url(challenge), "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = (
            hashlib.sha256(RP_ID.encode()).digest()
            + bytes([UP | UV | AT])
            + self.sign_count.to_bytes(4, "big")
            + self.aaguid
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose_key()
        )
        statement: dict[str, Any] = {}
        if fmt == "packed":  # self attestation: signed by the credential key itself
            signed = auth_data + hashlib.sha256(client_data).digest()
            statement = {"alg": -7, "sig": self.key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return {
            "authenticatorName": f"soft {fmt}",
            "challenge": b64url(challenge),
            "attestation": {
                "credentialId": b64url(self.credential_id),
                "clientDataJson": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": ["AUTHENTICATOR_TRANSPORT_INTERNAL", "AUTHENTICATOR_TRANSPORT_HYBRID"],
            },
        }

    def stamp(
        self,
        body: bytes,
        *,
        origin: str = ORIGIN,
        rp_id: str = RP_ID,
        flags: int = UP | UV,
        step: int = 1,
        kind: str = "webauthn.get",
        challenge_of: bytes | None = None,
    ) -> dict[str, str]:
        """An `X-Stamp-WebAuthn` header: what `@turnkey/webauthn-stamper` sends (plain JSON)."""
        challenge = hashlib.sha256(challenge_of if challenge_of is not None else body).hexdigest().encode()
        client_data = json.dumps({"type": kind, "challenge": b64url(challenge), "origin": origin}).encode()
        self.sign_count += step
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + self.sign_count.to_bytes(4, "big")
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        value = {
            "credentialId": b64url(self.credential_id),
            "clientDataJson": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        return {"X-Stamp-WebAuthn": json.dumps(value)}


def passkey_member(user_id: str, device: SoftAuthenticator, **kw: Any) -> Member:
    return Member(user_id, p256_key(), lambda body: device.stamp(body, **kw))


async def new_key(org: Org, who: Member, org_id: str | None = None) -> str:
    result = await org.ok(
        who,
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {
                    "privateKeyName": os.urandom(4).hex(),
                    "curve": "CURVE_ED25519",
                    "privateKeyTags": [],
                    "addressFormats": [],
                }
            ]
        },
        org_id=org_id,
    )
    key_id: str = result["privateKeys"][0]["privateKeyId"]
    return key_id


def sign_params(key_id: str) -> dict[str, Any]:
    return {
        "signWith": key_id,
        "payload": os.urandom(8).hex(),
        "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
        "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
    }


async def test_passkey_registration_verifies_the_attestation(org: Org) -> None:
    none, packed = SoftAuthenticator(), SoftAuthenticator()
    user_id = await org.create_user("pat", authenticators=[none.register(), packed.register(fmt="packed")])
    status, data = await org.query(org.root, "get_authenticators", userId=user_id)
    assert status == 200, data
    found = {a["attestationType"]: a for a in data["authenticators"]}
    assert set(found) == {"none", "packed"}
    a = found["packed"]
    assert a["credentialId"] == b64url(packed.credential_id)
    assert a["credential"]["type"] == "CREDENTIAL_TYPE_WEBAUTHN_AUTHENTICATOR"
    compressed = packed.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    assert a["credential"]["publicKey"] == compressed.hex()
    assert a["transports"] == ["AUTHENTICATOR_TRANSPORT_INTERNAL", "AUTHENTICATOR_TRANSPORT_HYBRID"]
    assert a["aaguid"] == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    status, data = await org.query(org.root, "get_authenticator", authenticatorId=a["authenticatorId"])
    assert data["authenticator"] == a
    status, data = await org.query(org.root, "get_user", userId=user_id)
    assert len(data["user"]["authenticators"]) == 2
    assert org.service.repo.users.user(user_id).access_type == "ACCESS_TYPE_WEB"  # type: ignore[union-attr]

    # Attestations that do not hold are refused, and nothing is stored.
    device = SoftAuthenticator()
    bad_origin = device.register(origin="https://evil.example")
    bad_challenge = device.register()
    bad_challenge["challenge"] = b64url(os.urandom(32))
    forged = device.register(fmt="packed")
    att = cbor2.loads(_unb64(forged["attestation"]["attestationObject"]))
    att["attStmt"]["sig"] = SoftAuthenticator().key.sign(b"other", ec.ECDSA(hashes.SHA256()))
    forged["attestation"]["attestationObject"] = b64url(cbor2.dumps(att))
    for bad, needle in ((bad_origin, "origin"), (bad_challenge, "challenge"), (forged, "signature")):
        status, data = await org.submit(
            org.root,
            "create_authenticators",
            "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
            {"userId": user_id, "authenticators": [bad]},
        )
        assert status == 400, data
        assert "invalid passkey attestation" in data["message"]
        assert needle in data["message"].lower()
    status, data = await org.query(org.root, "get_authenticators", userId=user_id)
    assert len(data["authenticators"]) == 2


def _unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


async def test_passkey_stamped_activity_and_passkey_only_signing_policy(org: Org) -> None:
    device = SoftAuthenticator()
    pat_id = await org.create_user("pat", authenticators=[device.register(fmt="packed")])
    pat = passkey_member(pat_id, device)
    ann = await org.member("ann")
    key_id = await new_key(org, org.root)
    await org.ok(
        org.root,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "passkey-only signing",
            "effect": "EFFECT_ALLOW",
            "condition": "activity.action == 'SIGN'",
            "consensus": "credentials.any(credential, credential.type == 'CREDENTIAL_TYPE_WEBAUTHN_AUTHENTICATOR')",
            "notes": "",
        },
    )
    status, data = await org.query(pat, "whoami")
    assert (status, data["userId"]) == (200, pat_id)
    status, data = await org.submit(pat, "sign_raw_payload", SIGN, sign_params(key_id))
    assert status == 200, data
    activity = data["activity"]
    assert activity["status"] == "ACTIVITY_STATUS_COMPLETED"
    vote = activity["votes"][0]
    assert vote["publicKey"] == org.service.repo.users.authenticators_of_user(pat_id)[0].public_key
    assert vote["scheme"] == "SIGNATURE_SCHEME_WEBAUTHN"
    # An API-key stamp alone does not satisfy it: the request waits for a passkey approval.
    before = org.service.keys.operations
    status, data = await org.submit(ann, "sign_raw_payload", SIGN, sign_params(key_id))
    assert status == 200, data
    pending = data["activity"]
    assert (pending["status"], pending["result"]) == ("ACTIVITY_STATUS_CONSENSUS_NEEDED", {})
    assert org.service.keys.operations == before
    status, data = await org.submit(
        pat, "approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", {"fingerprint": pending["fingerprint"]}
    )
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert [v["scheme"] for v in data["activity"]["votes"]] == [
        "SIGNATURE_SCHEME_TK_API_P256",
        "SIGNATURE_SCHEME_WEBAUTHN",
    ]
    # A credential_id condition works too (the `credentials` keyword sees the passkey that stamped).
    status, data = await org.query(
        pat,
        "explain_activity",
        type=SIGN,
        parameters=sign_params(key_id),
    )
    assert data["decision"] == "ALLOW"
    # Self-service: the passkey user registers a second passkey and removes it again.
    second = SoftAuthenticator()
    result = await org.ok(
        pat,
        "create_authenticators",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        {"userId": pat_id, "authenticators": [second.register()]},
    )
    assert (await org.query(passkey_member(pat_id, second), "whoami"))[0] == 200
    await org.ok(
        pat,
        "delete_authenticators",
        "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
        {"userId": pat_id, "authenticatorIds": result["authenticatorIds"]},
    )
    status, data = await org.query(passkey_member(pat_id, second), "whoami")
    assert (status, data["message"]) == (401, "credential ID could not be found in organization")


async def test_assertions_that_do_not_hold_are_refused(org: Org) -> None:
    device = SoftAuthenticator()
    pat_id = await org.create_user("pat", authenticators=[device.register()])
    good = passkey_member(pat_id, device)
    assert (await org.query(good, "whoami"))[0] == 200
    cases = {
        "origin": passkey_member(pat_id, device, origin="https://evil.example"),
        "rp id": passkey_member(pat_id, device, rp_id="evil.example"),
        "user not present": passkey_member(pat_id, device, flags=UV),
        "type": passkey_member(pat_id, device, kind="webauthn.create"),
        "other body": passkey_member(pat_id, device, challenge_of=b"{}"),
    }
    for what, member in cases.items():
        status, data = await org.query(member, "whoami")
        assert (status, data.get("code")) == (401, 16), (what, data)
        assert data["message"].startswith("could not verify WebAuthN signature"), (what, data)
    # The signature counter must grow: same value, or lower, is refused.
    assert (await org.query(good, "whoami"))[0] == 200
    status, data = await org.query(passkey_member(pat_id, device, step=0), "whoami")
    assert status == 401
    assert "sign count" in data["message"]
    status, data = await org.query(passkey_member(pat_id, device, step=-2), "whoami")
    assert status == 401
    device.sign_count += 10
    # A replayed assertion (same body, same counter) is refused once the counter moved on.
    body = json.dumps({"organizationId": org.id}).encode()
    headers = device.stamp(body)
    first = await org.client.post("/public/v1/query/whoami", data=body, headers=headers)
    assert first.status == 200
    again = await org.client.post("/public/v1/query/whoami", data=body, headers=headers)
    assert again.status == 401
    # A tampered signature.
    headers = device.stamp(body)
    value = json.loads(headers["X-Stamp-WebAuthn"])
    value["signature"] = b64url(device.key.sign(b"x", ec.ECDSA(hashes.SHA256())))
    resp = await org.client.post("/public/v1/query/whoami", data=body, headers={"X-Stamp-WebAuthn": json.dumps(value)})
    assert resp.status == 401
    resp = await org.client.post("/public/v1/query/whoami", data=body, headers={"X-Stamp-WebAuthn": "{not json"})
    assert (resp.status, json.loads(await resp.read())["message"]) == (401, "could not extract webauthn stamp")


async def test_access_type_limits_and_sub_organization_passkeys(org: Org) -> None:
    ann = await org.member("ann")  # ACCESS_TYPE_API
    device = SoftAuthenticator()
    status, data = await org.submit(
        org.root,
        "create_authenticators",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        {"userId": ann.user_id, "authenticators": [device.register()]},
    )
    assert status == 400
    assert "ACCESS_TYPE_API: it cannot hold passkeys" in data["message"]
    await org.ok(
        org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": ann.user_id, "accessType": "ACCESS_TYPE_ALL"}
    )
    await org.ok(
        ann,
        "create_authenticators",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        {"userId": ann.user_id, "authenticators": [device.register()]},
    )
    ann_passkey = passkey_member(ann.user_id, device)
    assert (await org.query(ann_passkey, "whoami"))[0] == 200
    assert (await org.query(ann, "whoami"))[0] == 200
    # Back to API only: the passkey is refused at once; the API key still works.
    await org.ok(
        org.root, "update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": ann.user_id, "accessType": "ACCESS_TYPE_API"}
    )
    status, data = await org.query(ann_passkey, "whoami")
    assert status == 401
    assert "ACCESS_TYPE_API: it cannot authenticate with a passkey" in data["message"]
    assert (await org.query(ann, "whoami"))[0] == 200

    # 10 passkeys per user.
    pat_id = await org.create_user("pat", authenticators=[SoftAuthenticator().register() for _ in range(9)])
    await org.ok(
        org.root,
        "create_authenticators",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        {"userId": pat_id, "authenticators": [SoftAuthenticator().register()]},
    )
    status, data = await org.submit(
        org.root,
        "create_authenticators",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        {"userId": pat_id, "authenticators": [SoftAuthenticator().register()]},
    )
    assert (status, data["code"]) == (429, 8)
    assert "maximum authenticators: the limit is 10 per user" in data["message"]

    # A sub-organization whose root user holds only a passkey: it acts there with it.
    sub_device = SoftAuthenticator()
    result = await org.ok(
        org.root,
        "create_sub_organization",
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        {
            "subOrganizationName": "passkey user",
            "rootUsers": [
                {"userName": "end user", "apiKeys": [], "authenticators": [sub_device.register()], "oauthProviders": []}
            ],
            "rootQuorumThreshold": 1,
        },
    )
    sub_id = result["subOrganizationId"]
    sub_root = passkey_member(result["rootUserIds"][0], sub_device)
    key_id = await new_key(org, sub_root, org_id=sub_id)
    signed = await org.ok(sub_root, "sign_raw_payload", SIGN, sign_params(key_id), org_id=sub_id)
    assert signed["v"] == "00"
    status, data = await org.query(sub_root, "whoami", org_id=org.id)  # not in the parent
    assert (status, data["message"]) == (401, "credential ID could not be found in organization")
