"""Records -> Turnkey JSON shapes (field names, enum strings and types exactly as the SDKs expect)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strongroom.crypto import secp256k1
from strongroom.store.records import (
    Activity,
    ApiKey,
    Authenticator,
    Organization,
    PolicyRecord,
    PrivateKey,
    Tag,
    User,
    Wallet,
    WalletAccount,
)


def timestamp(ms: int) -> dict[str, str]:
    """protobuf Timestamp in proto-JSON style: both fields are strings."""
    return {"seconds": str(ms // 1000), "nanos": str((ms % 1000) * 1_000_000)}


def api_key(key: ApiKey) -> dict[str, Any]:
    credential_type = {
        "API_KEY_CURVE_P256": "CREDENTIAL_TYPE_API_KEY_P256",
        "API_KEY_CURVE_SECP256K1": "CREDENTIAL_TYPE_API_KEY_SECP256K1",
        "API_KEY_CURVE_ED25519": "CREDENTIAL_TYPE_API_KEY_ED25519",
    }.get(key.curve, "CREDENTIAL_TYPE_API_KEY_P256")
    out: dict[str, Any] = {
        "credential": {"publicKey": key.public_key, "type": credential_type},
        "apiKeyId": key.id,
        "apiKeyName": key.name,
        "createdAt": timestamp(key.created_at),
        "updatedAt": timestamp(key.updated_at),
    }
    if key.expires_at is not None:
        out["expirationSeconds"] = str(max(0, (key.expires_at - key.created_at) // 1000))
    return out


def authenticator(a: Authenticator) -> dict[str, Any]:
    return {
        "transports": list(a.transports),
        "attestationType": a.attestation_type,
        "aaguid": a.aaguid,
        "credentialId": a.credential_id,
        "model": "",
        "credential": {"publicKey": a.public_key, "type": "CREDENTIAL_TYPE_WEBAUTHN_AUTHENTICATOR"},
        "authenticatorId": a.id,
        "authenticatorName": a.name,
        "createdAt": timestamp(a.created_at),
        "updatedAt": timestamp(a.updated_at),
    }


def user(u: User, api_keys: Sequence[ApiKey], authenticators: Sequence[Authenticator] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "userId": u.id,
        "userName": u.name,
        "authenticators": [authenticator(a) for a in authenticators],
        "apiKeys": [api_key(k) for k in api_keys],
        "userTags": list(u.tags),
        "oauthProviders": [],
        "createdAt": timestamp(u.created_at),
        "updatedAt": timestamp(u.updated_at),
        "mfaPolicies": [],
    }
    if u.email:
        out["userEmail"] = u.email
    if u.phone_number:
        out["userPhoneNumber"] = u.phone_number
    return out


def private_key_public_hex(k: PrivateKey) -> str:
    return public_key_hex(k.curve, k.public_key)


def private_key(k: PrivateKey) -> dict[str, Any]:
    return {
        "privateKeyId": k.id,
        "publicKey": private_key_public_hex(k),
        "privateKeyName": k.name,
        "curve": k.curve,
        "addresses": [{"format": f, "address": a} for f, a in k.addresses],
        "privateKeyTags": list(k.tags),
        "createdAt": timestamp(k.created_at),
        "updatedAt": timestamp(k.updated_at),
        "exported": k.exported,
        "imported": k.imported,
    }


def public_key_hex(curve: str, public_key: bytes) -> str:
    """Compressed SEC1 hex for secp256k1, raw hex for Ed25519 (as Turnkey shows public keys)."""
    return secp256k1.compress(public_key).hex() if curve == "CURVE_SECP256K1" else public_key.hex()


def wallet(w: Wallet) -> dict[str, Any]:
    return {
        "walletId": w.id,
        "walletName": w.name,
        "createdAt": timestamp(w.created_at),
        "updatedAt": timestamp(w.updated_at),
        "exported": w.exported,
        "imported": w.imported,
    }


def wallet_account(a: WalletAccount, details: Wallet | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "walletAccountId": a.id,
        "organizationId": a.organization_id,
        "walletId": a.wallet_id,
        "curve": a.curve,
        "pathFormat": a.path_format,
        "path": a.path,
        "addressFormat": a.address_format,
        "address": a.address,
        "createdAt": timestamp(a.created_at),
        "updatedAt": timestamp(a.updated_at),
        "publicKey": public_key_hex(a.curve, a.public_key),
    }
    if a.name:
        out["name"] = a.name
    if details is not None:
        out["walletDetails"] = wallet(details)
    return out


def root_quorum(org: Organization) -> dict[str, Any]:
    return {"threshold": org.root_quorum_threshold, "userIds": list(org.root_user_ids)}


def activity(a: Activity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "organizationId": a.organization_id,
        "status": a.status,
        "type": a.type,
        "intent": a.intent,
        "result": a.result,
        "votes": a.votes,
        "fingerprint": a.fingerprint,
        "canApprove": a.status == "ACTIVITY_STATUS_CONSENSUS_NEEDED",
        "canReject": a.status == "ACTIVITY_STATUS_CONSENSUS_NEEDED",
        "createdAt": timestamp(a.created_at),
        "updatedAt": timestamp(a.updated_at),
    }
    if a.failure is not None:
        out["failure"] = a.failure
    return out


def policy(p: PolicyRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "policyId": p.id,
        "policyName": p.name,
        "effect": p.effect,
        "createdAt": timestamp(p.created_at),
        "updatedAt": timestamp(p.updated_at),
        "notes": p.notes,
        "consensus": p.consensus,
        "condition": p.condition,
    }
    if p.time:
        out["time"] = p.time
    return out


def tag(t: Tag) -> dict[str, Any]:
    return {
        "tagId": t.id,
        "tagName": t.name,
        "tagType": t.type,
        "createdAt": timestamp(t.created_at),
        "updatedAt": timestamp(t.updated_at),
    }
