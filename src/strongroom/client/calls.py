"""The API's calls as (path, body) pairs, shared by the sync and async clients."""

from __future__ import annotations

import time
from typing import Any, Final

TERMINAL: Final = frozenset({"ACTIVITY_STATUS_COMPLETED", "ACTIVITY_STATUS_FAILED", "ACTIVITY_STATUS_REJECTED"})


def query(org: str, name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"/public/v1/query/{name}", {"organizationId": org, **params}


def submit(org: str, name: str, activity_type: str, parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An activity envelope, stamped with the current time (a new request, never a replay)."""
    body = {
        "type": activity_type,
        "timestampMs": str(int(time.time() * 1000)),
        "organizationId": org,
        "parameters": parameters,
    }
    return f"/public/v1/submit/{name}", body


def stream(org: str, after: str | None, filters: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The event stream's request (docs/events.md), stamped with the current time."""
    body: dict[str, Any] = {"organizationId": org, "timestampMs": str(int(time.time() * 1000))}
    if after:
        body["lastEventId"] = after
    if filters:
        body["filters"] = filters
    return "/public/v1/stream/events", body


def create_private_keys(keys: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    return {
        "privateKeys": [
            {"privateKeyName": name, "curve": curve, "privateKeyTags": [], "addressFormats": formats}
            for name, curve, formats in keys
        ]
    }


def sign_raw(sign_with: str, payload: str, encoding: str, hash_function: str) -> dict[str, Any]:
    return {"signWith": sign_with, "payload": payload, "encoding": encoding, "hashFunction": hash_function}


def sign_tx(sign_with: str, unsigned: str, tx_type: str = "TRANSACTION_TYPE_ETHEREUM") -> dict[str, Any]:
    return {
        "signWith": sign_with,
        "unsignedTransaction": unsigned.removeprefix("0x"),
        "type": tx_type,
    }


def policy(name: str, effect: str, condition: str, consensus: str, notes: str) -> dict[str, Any]:
    return {"policyName": name, "effect": effect, "condition": condition, "consensus": consensus, "notes": notes}


def api_key(name: str, public_key: str, curve: str, expiration_seconds: int | None = None) -> dict[str, Any]:
    """One API key of CREATE_USERS / CREATE_API_KEYS: only its public half ever leaves the client."""
    key: dict[str, Any] = {"apiKeyName": name, "publicKey": public_key, "curveType": curve}
    if expiration_seconds is not None:
        key["expirationSeconds"] = str(expiration_seconds)
    return key


def user(name: str, email: str | None, api_keys: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "userName": name,
        "apiKeys": api_keys,
        "authenticators": [],
        "oauthProviders": [],
        "userTags": [],
    }
    if email:
        out["userEmail"] = email
    return out


def wallet_account(curve: str, path: str, address_format: str) -> dict[str, Any]:
    """One `v1WalletAccountParams` (BIP-32 path, e.g. `m/44'/60'/0'/0/0`)."""
    return {"curve": curve, "pathFormat": "PATH_FORMAT_BIP32", "path": path, "addressFormat": address_format}


ETHEREUM_ACCOUNT: Final = wallet_account("CURVE_SECP256K1", "m/44'/60'/0'/0/0", "ADDRESS_FORMAT_ETHEREUM")
SOLANA_ACCOUNT: Final = wallet_account("CURVE_ED25519", "m/44'/501'/0'/0'", "ADDRESS_FORMAT_SOLANA")
"""The first accounts `@turnkey/sdk-server`'s DEFAULT_ETHEREUM_ACCOUNTS / DEFAULT_SOLANA_ACCOUNTS make."""
