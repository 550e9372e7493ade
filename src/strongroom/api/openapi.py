"""The OpenAPI document of what this daemon serves, built from the catalog and the query table.

Generated from the same tables the service dispatches on, so it cannot drift from the code:
every activity endpoint of the catalog with its one accepted `type`, every query, and the shared
envelope, activity and error shapes (Turnkey's).
"""

from __future__ import annotations

from typing import Any

from strongroom import __version__
from strongroom.service import Catalog

_ERROR = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
_TIMESTAMP = {
    "type": "object",
    "properties": {"seconds": {"type": "string"}, "nanos": {"type": "string"}},
}
_ACTIVITY = {
    "type": "object",
    "required": [
        "id", "organizationId", "status", "type", "intent", "result", "votes", "fingerprint",
        "canApprove", "canReject", "createdAt", "updatedAt",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "organizationId": {"type": "string", "format": "uuid"},
        "status": {"type": "string"},
        "type": {"type": "string"},
        "intent": {"type": "object"},
        "result": {"type": "object"},
        "votes": {"type": "array", "items": {"type": "object"}},
        "fingerprint": {"type": "string"},
        "canApprove": {"type": "boolean"},
        "canReject": {"type": "boolean"},
        "createdAt": {"$ref": "#/components/schemas/Timestamp"},
        "updatedAt": {"$ref": "#/components/schemas/Timestamp"},
        "failure": {"$ref": "#/components/schemas/Error"},
    },
}  # fmt: skip
_ERRORS = {
    str(code): {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for code, text in (
        (400, "invalid request"),
        (401, "no valid stamp"),
        (403, "denied by policy"),
        (404, "not found"),
        (413, "body too large"),
        (429, "rate limited or over a limit"),
        (503, "a guard is not satisfied (trusted clock, token, store)"),
    )
}


def _s(max_len: int = 4096, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len, **extra}


def _list(items: dict[str, Any], max_items: int = 100, min_items: int = 0) -> dict[str, Any]:
    return {"type": "array", "items": items, "maxItems": max_items, "minItems": min_items}


def _o(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_ID = _s(64)
_IDS = _list(_ID, min_items=1)
_PRIVATE_KEY = _o(
    ["privateKeyName", "curve"],
    privateKeyName=_s(256),
    curve={"type": "string", "enum": ["CURVE_SECP256K1", "CURVE_ED25519"]},
    privateKeyTags=_list(_ID),
    addressFormats=_list(_s(64), 16),
)
_PRIVATE_KEYS = _list(_PRIVATE_KEY, 100, 1)
_API_KEY = _o(
    ["apiKeyName", "publicKey", "curveType"],
    apiKeyName=_s(256),
    publicKey=_s(200),
    curveType={"type": "string", "enum": ["API_KEY_CURVE_P256", "API_KEY_CURVE_SECP256K1", "API_KEY_CURVE_ED25519"]},
    expirationSeconds=_s(32),
)
_AUTHENTICATOR = _o(
    ["authenticatorName", "challenge", "attestation"],
    authenticatorName=_s(256),
    challenge=_s(1024),
    attestation=_o(
        ["credentialId", "clientDataJson", "attestationObject"],
        credentialId=_s(2048),
        clientDataJson=_s(16384),
        attestationObject=_s(65536),
        transports=_list(_s(64), 8),
    ),
)
_USER = _o(
    ["userName"],
    userName=_s(256),
    userEmail=_s(320),
    userPhoneNumber=_s(32),
    apiKeys=_list(_API_KEY),
    authenticators=_list(_AUTHENTICATOR),
    userTags=_list(_ID),
    oauthProviders=_list({"type": "object"}),
)
_POLICY = _o(
    ["policyName", "effect"],
    policyName=_s(256),
    effect={"type": "string", "enum": ["EFFECT_ALLOW", "EFFECT_DENY"]},
    condition=_s(65536),
    consensus=_s(65536),
    time=_s(65536),
    notes=_s(4096),
)
_SIGN = {
    "signWith": _s(256),
    "encoding": {"type": "string", "enum": ["PAYLOAD_ENCODING_HEXADECIMAL", "PAYLOAD_ENCODING_TEXT_UTF8"]},
    "hashFunction": {
        "type": "string",
        "enum": [
            "HASH_FUNCTION_KECCAK256",
            "HASH_FUNCTION_SHA256",
            "HASH_FUNCTION_NO_OP",
            "HASH_FUNCTION_NOT_APPLICABLE",
        ],
    },
}
_VOTE = _o(["fingerprint"], fingerprint=_s(128))

# The `parameters` each activity handler reads (src/strongroom/daemon/*.py), by endpoint path.
PARAMETERS: dict[str, dict[str, Any]] = {
    "approve_activity": _VOTE,
    "reject_activity": _VOTE,
    "create_private_keys": _o(["privateKeys"], privateKeys=_PRIVATE_KEYS),
    "sign_raw_payload": _o(["signWith", "payload", "encoding", "hashFunction"], payload=_s(1 << 20), **_SIGN),
    "sign_raw_payloads": _o(
        ["signWith", "payloads", "encoding", "hashFunction"], payloads=_list(_s(1 << 20), 100, 1), **_SIGN
    ),
    "sign_transaction": _o(
        ["signWith", "type", "unsignedTransaction"],
        signWith=_s(256),
        type={"type": "string", "enum": ["TRANSACTION_TYPE_ETHEREUM"]},
        unsignedTransaction=_s(1 << 18),
    ),
    "create_policy": _POLICY,
    "create_policies": _o(["policies"], policies=_list(_POLICY, 100, 1)),
    "update_policy": _o(
        ["policyId"],
        policyId=_ID,
        policyName=_s(256),
        policyEffect={"type": "string", "enum": ["EFFECT_ALLOW", "EFFECT_DENY"]},
        policyCondition=_s(65536),
        policyConsensus=_s(65536),
        time=_s(65536),
        policyNotes=_s(4096),
    ),
    "delete_policy": _o(["policyId"], policyId=_ID),
    "delete_policies": _o(["policyIds"], policyIds=_IDS),
    "create_user_tag": _o(["userTagName", "userIds"], userTagName=_s(256), userIds=_list(_ID)),
    "update_user_tag": _o(
        ["userTagId", "addUserIds", "removeUserIds"],
        userTagId=_ID,
        newUserTagName=_s(256),
        addUserIds=_list(_ID),
        removeUserIds=_list(_ID),
    ),
    "delete_user_tags": _o(["userTagIds"], userTagIds=_IDS),
    "create_private_key_tag": _o(
        ["privateKeyTagName", "privateKeyIds"], privateKeyTagName=_s(256), privateKeyIds=_list(_ID)
    ),
    "update_private_key_tag": _o(
        ["privateKeyTagId", "addPrivateKeyIds", "removePrivateKeyIds"],
        privateKeyTagId=_ID,
        newPrivateKeyTagName=_s(256),
        addPrivateKeyIds=_list(_ID),
        removePrivateKeyIds=_list(_ID),
    ),
    "delete_private_key_tags": _o(["privateKeyTagIds"], privateKeyTagIds=_IDS),
    "update_root_quorum": _o(["threshold", "userIds"], threshold={"type": "integer", "minimum": 1}, userIds=_IDS),
    "create_users": _o(["users"], users=_list(_USER, 100, 1)),
    "delete_users": _o(["userIds"], userIds=_IDS),
    "update_user": _o(
        ["userId"],
        userId=_ID,
        userName=_s(256),
        userEmail=_s(320),
        userPhoneNumber=_s(32),
        accessType={"type": "string", "enum": ["ACCESS_TYPE_WEB", "ACCESS_TYPE_API", "ACCESS_TYPE_ALL"]},
        userTagIds=_list(_ID),
    ),
    "create_api_keys": _o(["userId", "apiKeys"], userId=_ID, apiKeys=_list(_API_KEY)),
    "delete_api_keys": _o(["userId", "apiKeyIds"], userId=_ID, apiKeyIds=_IDS),
    "create_authenticators": _o(
        ["userId", "authenticators"], userId=_ID, authenticators=_list(_AUTHENTICATOR, min_items=1)
    ),
    "delete_authenticators": _o(["userId", "authenticatorIds"], userId=_ID, authenticatorIds=_IDS),
    "create_sub_organization": _o(
        ["subOrganizationName", "rootUsers", "rootQuorumThreshold"],
        subOrganizationName=_s(256),
        rootUsers=_list(_USER, 100, 1),
        rootQuorumThreshold={"type": "integer", "minimum": 1},
        privateKeys=_PRIVATE_KEYS,
    ),
}

_PAGINATION = {
    "paginationOptions": _o([], limit=_s(8), before=_s(64), after=_s(64)),
}
# What each query reads besides `organizationId` (src/strongroom/daemon/queries.py), by name.
QUERY_PARAMETERS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "whoami": ([], {}),
    "get_organization": ([], {}),
    "get_private_key": (["privateKeyId"], {"privateKeyId": _ID}),
    "list_private_keys": ([], _PAGINATION),
    "get_activity": (["activityId"], {"activityId": _ID}),
    "list_activities": (
        [],
        {"filterByStatus": _list(_s(64)), "filterByType": _list(_s(128)), **_PAGINATION},
    ),
    "get_usage": ([], {"month": _s(7)}),
    "get_policy": (["policyId"], {"policyId": _ID}),
    "list_policies": ([], _PAGINATION),
    "list_user_tags": ([], _PAGINATION),
    "list_private_key_tags": ([], _PAGINATION),
    "get_user": (["userId"], {"userId": _ID}),
    "list_users": ([], _PAGINATION),
    "get_policy_evaluations": (["activityId"], {"activityId": _ID}),
    "get_api_keys": ([], {"userId": _ID}),
    "get_api_key": (["apiKeyId"], {"apiKeyId": _ID}),
    "get_authenticators": (["userId"], {"userId": _ID}),
    "get_authenticator": (["authenticatorId"], {"authenticatorId": _ID}),
    "list_suborgs": ([], {"filterType": _s(64), "filterValue": _s(4096), **_PAGINATION}),
    "explain_activity": (["type", "parameters"], {"type": _s(128), "parameters": {"type": "object"}}),
}


def document(catalog: Catalog, queries: list[str]) -> dict[str, Any]:
    """`catalog`: the activity types (each submit path and the one type it accepts); `queries`: query names."""
    paths: dict[str, Any] = {}
    stamp: list[dict[str, list[str]]] = [{"stamp": []}]
    for name, activity_type in sorted(catalog.submit_types().items()):
        paths[f"/public/v1/submit/{name}"] = {
            "post": {
                "operationId": f"submit_{name}",
                "security": stamp,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "timestampMs", "organizationId", "parameters"],
                                "properties": {
                                    "type": {"type": "string", "enum": [activity_type]},
                                    "timestampMs": {"type": "string", "description": "milliseconds since the epoch"},
                                    "organizationId": {"type": "string", "format": "uuid"},
                                    "parameters": PARAMETERS.get(name, {"type": "object"}),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the activity (completed, or waiting for consensus)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"activity": {"$ref": "#/components/schemas/Activity"}},
                                }
                            }
                        },
                    },
                    **_ERRORS,
                },
            }
        }
    for name in sorted(queries):
        paths[f"/public/v1/query/{name}"] = {
            "post": {
                "operationId": f"query_{name}",
                "security": stamp,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["organizationId", *QUERY_PARAMETERS.get(name, ([], {}))[0]],
                                "properties": {
                                    "organizationId": {"type": "string", "format": "uuid"},
                                    **QUERY_PARAMETERS.get(name, ([], {}))[1],
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "the query result", "content": {"application/json": {}}},
                    **_ERRORS,
                },
            }
        }
    for probe, text in (("/healthz", "the process is alive"), ("/readyz", "token, clock and store are ready")):
        paths[probe] = {"get": {"operationId": probe.strip("/"), "responses": {"200": {"description": text}}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "responses": {"200": {"description": "Prometheus metrics"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Strongroom",
            "version": __version__,
            "description": "Turnkey-compatible API: every POST is stamped (X-Stamp over the exact body bytes).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"stamp": {"type": "apiKey", "in": "header", "name": "X-Stamp"}},
            "schemas": {"Error": _ERROR, "Timestamp": _TIMESTAMP, "Activity": _ACTIVITY},
        },
    }
