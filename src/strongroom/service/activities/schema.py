"""JSON Schema of request parameters: each catalog entry documents what its reader reads.

The OpenAPI document (`api/openapi.py`) shows these as each submit endpoint's `parameters`; the
schema fuzzer builds request bodies from them. They describe the readers' limits (lengths, list
sizes), so a reader and its schema are written side by side, in the family's module.
"""

from __future__ import annotations

from typing import Any, Final

Schema = dict[str, Any]


def json_string(max_len: int = 4096, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_len, **extra}


def json_enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def json_array(items: Schema, max_items: int = 100, min_items: int = 0) -> Schema:
    return {"type": "array", "items": items, "maxItems": max_items, "minItems": min_items}


def json_object(required: list[str], **props: Any) -> Schema:
    return {"type": "object", "required": required, "properties": props}


JSON_ID: Final = json_string(64)
JSON_IDS: Final = json_array(JSON_ID, min_items=1)
POSITIVE: Final = {"type": "integer", "minimum": 1}
