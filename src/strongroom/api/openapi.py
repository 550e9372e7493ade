"""The OpenAPI document of what this daemon serves, built from the catalog and the query table.

Generated from the same tables the service dispatches on, so it cannot drift from the code:
every activity endpoint of the catalog with its one accepted `type`, every query, and the shared
envelope, activity and error shapes (Turnkey's).
"""

from __future__ import annotations

from typing import Any

from strongroom import __version__
from strongroom.service import JSON_ID, PROXIED, Catalog, json_array, json_object, json_string

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


_PAGINATION = {
    "paginationOptions": json_object([], limit=json_string(8), before=json_string(64), after=json_string(64)),
}
# What each query reads besides `organizationId` (src/strongroom/service/queries.py), by name.
QUERY_PARAMETERS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "whoami": ([], {}),
    "get_organization": ([], {}),
    "get_private_key": (["privateKeyId"], {"privateKeyId": JSON_ID}),
    "list_private_keys": ([], _PAGINATION),
    "get_activity": (["activityId"], {"activityId": JSON_ID}),
    "list_activities": (
        [],
        {"filterByStatus": json_array(json_string(64)), "filterByType": json_array(json_string(128)), **_PAGINATION},
    ),
    "get_usage": ([], {"month": json_string(7)}),
    "get_policy": (["policyId"], {"policyId": JSON_ID}),
    "list_policies": ([], _PAGINATION),
    "list_user_tags": ([], _PAGINATION),
    "list_private_key_tags": ([], _PAGINATION),
    "get_user": (["userId"], {"userId": JSON_ID}),
    "list_users": ([], _PAGINATION),
    "get_policy_evaluations": (["activityId"], {"activityId": JSON_ID}),
    "get_api_keys": ([], {"userId": JSON_ID}),
    "get_api_key": (["apiKeyId"], {"apiKeyId": JSON_ID}),
    "get_authenticators": (["userId"], {"userId": JSON_ID}),
    "get_authenticator": (["authenticatorId"], {"authenticatorId": JSON_ID}),
    "list_suborgs": ([], {"filterType": json_string(64), "filterValue": json_string(4096), **_PAGINATION}),
    "list_webhook_endpoints": ([], {}),
    "get_webhook_signer": ([], {}),
    "get_activity_view": (["activityId"], {"activityId": JSON_ID}),
    "explain_activity": (["type", "parameters"], {"type": json_string(128), "parameters": {"type": "object"}}),
}


_ACTIVITY_VIEW: dict[str, Any] = {
    "type": "object",
    "description": "an activity decoded for people (src/strongroom/service/decoded.py, docs/api.md)",
    "required": [
        "activityId",
        "organizationId",
        "type",
        "status",
        "fingerprint",
        "requester",
        "policies",
        "policiesNotMatched",
        "votes",
    ],
    "properties": {
        "activityId": {"type": "string"},
        "organizationId": {"type": "string"},
        "type": {"type": "string"},
        "status": {"type": "string"},
        "fingerprint": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "voteWindowEndsAt": {"type": "string", "format": "date-time"},
        "requester": {"type": "object"},
        "signer": {"type": "object"},
        "payloads": {"type": "array", "items": {"type": "object"}},
        "parameters": {"type": "object"},
        "policies": {"type": "array", "items": {"type": "object"}},
        "policiesNotMatched": {"type": "array", "items": {"type": "object"}},
        "votes": {"type": "array", "items": {"type": "object"}},
        "waitingFor": {"type": "array", "items": {"type": "string"}},
    },
}
QUERY_RESULTS: dict[str, dict[str, Any]] = {
    "get_activity_view": {"type": "object", "required": ["view"], "properties": {"view": _ACTIVITY_VIEW}},
}
"""The result schema of the queries that have one written down (the others: any JSON object)."""

_STAMPED: list[dict[str, list[str]]] = [{"stamp": []}]


def _post(operation_id: str, body: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    """A stamped POST: the schema of its JSON body and its 200 response (errors are Turnkey's shape)."""
    return {
        "post": {
            "operationId": operation_id,
            "security": _STAMPED,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": ok, **_ERRORS},
        }
    }


_ACTIVITY_RESPONSE = {
    "description": "the activity (completed, or waiting for consensus)",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"activity": {"$ref": "#/components/schemas/Activity"}}}
        }
    },
}


EVENT_FILTER = json_object(
    [],
    eventTypes=json_array(json_string(64), max_items=64, min_items=1),
    activityTypes=json_array(json_string(128), max_items=64, min_items=1),
)
"""A filter of events (docs/events.md#filters): a stream's `filters`, a webhook subscription's `filtersJson`."""
_STREAM_REQUEST = {
    "type": "object",
    "required": ["organizationId", "timestampMs"],
    "properties": {
        "organizationId": {"type": "string", "format": "uuid"},
        "timestampMs": {"type": "string", "description": "milliseconds since the epoch (the activities' window)"},
        "lastEventId": {**JSON_ID, "description": "resume after this event (the Last-Event-ID header wins)"},
        "filters": EVENT_FILTER,
    },
}
_STREAM_EVENT = json_object(
    ["eventId", "eventType", "timestamp", "signature", "body"],
    eventId=JSON_ID,
    eventType=json_string(64),
    timestamp=json_string(16),
    signature=json_string(256),
    body=json_string(1 << 20),
)
_STREAM_RESPONSE = {
    "description": (
        "server-sent events: `id:` the event id, `event:` its type, `data:` an EventEnvelope (the webhook body, "
        "signed by the webhook key over `timestamp.body`); `: keepalive` comments in between"
    ),
    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/EventEnvelope"}}},
}


_ETH_CALL = {
    "type": "object",
    "required": ["jsonrpc", "method", "organizationId"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "id": {"type": ["string", "integer", "null"]},
        "method": {"type": "string", "examples": ["eth_accounts", "eth_sendTransaction", *sorted(PROXIED)[:3]]},
        "params": {"type": "array", "description": "by position"},
        "organizationId": {"type": "string", "format": "uuid"},
        "timestampMs": {"type": "string", "description": "milliseconds since the epoch (signing methods)"},
    },
}
_ETH_ANSWER = {
    "type": "object",
    "required": ["jsonrpc", "id"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "id": {"type": ["string", "integer", "null"]},
        "result": {},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
        },
    },
}


def _eth_rpc() -> dict[str, Any]:
    """`POST /eth/rpc`: Ethereum JSON-RPC 2.0, one call or a batch, stamped over the whole body."""
    return {
        "post": {
            "operationId": "eth_rpc",
            "summary": "Ethereum JSON-RPC signer (docs/api.md): a call, or a batch of calls answered in order",
            "description": (
                "Signs with eth_sign, personal_sign, eth_signTransaction, eth_signTypedData_v4 and "
                "eth_sendTransaction (each an activity decided by the policies); eth_accounts; passes the node's "
                "methods (" + ", ".join(sorted(PROXIED)) + ") to `eth_upstream_url`. Always HTTP 200: failures "
                "are JSON-RPC error objects."
            ),
            "security": _STAMPED,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [_ETH_CALL, {"type": "array", "minItems": 1, "items": _ETH_CALL}]}
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "the answer (an array of answers, in order, for a batch)",
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ETH_ANSWER, {"type": "array", "items": _ETH_ANSWER}]}
                        }
                    },
                }
            },
        }
    }


def document(catalog: Catalog, queries: list[str]) -> dict[str, Any]:
    """`catalog`: the activity types (each submit path, its one `type`, its parameters); `queries`: query names."""
    paths: dict[str, Any] = {}
    for entry in sorted(catalog, key=lambda e: e.path):
        envelope = {
            "type": "object",
            "required": ["type", "timestampMs", "organizationId", "parameters"],
            "properties": {
                "type": {"type": "string", "enum": [entry.type]},
                "timestampMs": {"type": "string", "description": "milliseconds since the epoch"},
                "organizationId": {"type": "string", "format": "uuid"},
                "parameters": entry.parameters,
            },
        }
        paths[f"/public/v1/submit/{entry.path}"] = _post(f"submit_{entry.path}", envelope, _ACTIVITY_RESPONSE)
    for name in sorted(queries):
        required, properties = QUERY_PARAMETERS.get(name, ([], {}))
        body = {
            "type": "object",
            "required": ["organizationId", *required],
            "properties": {"organizationId": {"type": "string", "format": "uuid"}, **properties},
        }
        result = QUERY_RESULTS.get(name)
        ok = {"description": "the query result", "content": {"application/json": {"schema": result} if result else {}}}
        paths[f"/public/v1/query/{name}"] = _post(f"query_{name}", body, ok)
    paths["/public/v1/stream/events"] = _post("stream_events", _STREAM_REQUEST, _STREAM_RESPONSE)
    for probe, text in (("/healthz", "the process is alive"), ("/readyz", "token, clock and store are ready")):
        paths[probe] = {"get": {"operationId": probe.strip("/"), "responses": {"200": {"description": text}}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "responses": {"200": {"description": "Prometheus metrics"}}}}
    paths["/eth/rpc"] = _eth_rpc()
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
            "schemas": {
                "Error": _ERROR,
                "Timestamp": _TIMESTAMP,
                "Activity": _ACTIVITY,
                "EventFilter": EVENT_FILTER,
                "EventEnvelope": _STREAM_EVENT,
            },
        },
    }
