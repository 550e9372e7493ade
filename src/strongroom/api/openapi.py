"""The OpenAPI document of what this daemon serves, built from the registered endpoints.

Generated from the same tables the router dispatches on, so it cannot drift from the code:
every activity endpoint with its one accepted `type`, every query, and the shared envelope,
activity and error shapes (Turnkey's).
"""

from __future__ import annotations

from typing import Any

from strongroom import __version__

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


def document(submit_types: dict[str, str], queries: list[str]) -> dict[str, Any]:
    """`submit_types`: path name -> the activity type it accepts; `queries`: query names."""
    paths: dict[str, Any] = {}
    stamp: list[dict[str, list[str]]] = [{"stamp": []}]
    for name, activity_type in sorted(submit_types.items()):
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
                                    "parameters": {"type": "object"},
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
                                "required": ["organizationId"],
                                "properties": {"organizationId": {"type": "string", "format": "uuid"}},
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
