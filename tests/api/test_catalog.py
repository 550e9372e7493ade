"""The catalog of activity types, the served OpenAPI document and the dashboard agree.

Against a real daemon process (its own SoftHSM2 token, over HTTP): every catalog path is in the
OpenAPI document with its one `type`, and every submit path the document lists is in the
catalog; every `submit("<path>", "<ACTIVITY_TYPE_...>", ...)` the dashboard makes is a catalog
entry; and each catalog path refuses another type with Turnkey's error shape.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from conftest import Daemon
from strongroom.service import CATALOG

APP_JS = Path(__file__).resolve().parents[2] / "src" / "strongroom" / "api" / "static" / "app.js"
SUBMIT = "/public/v1/submit/"


def served_openapi(daemon: Daemon) -> dict[str, Any]:
    with urllib.request.urlopen(f"{daemon.url}/openapi.json", timeout=10) as resp:
        assert resp.status == 200
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def dashboard_submits() -> list[tuple[str, str]]:
    """Each (path, type) the dashboard's script submits, as written at its `submit(...)` calls.

    A call names both literally, `submit("create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", ...)`, or
    (votes) takes them from a pair of conditionals just before it:
    `const path = approve ? "approve_activity" : ...; const type = approve ? "ACTIVITY_TYPE_..." : ...`.
    """
    text = APP_JS.read_text()
    literal = re.findall(r"\bsubmit\(\s*\"([a-z_]+)\"\s*,\s*\"([A-Z0-9_]+)\"", text)
    chosen = re.findall(
        r'const path = \w+ \? "([a-z_]+)" : "([a-z_]+)";\s*'
        r'const type = \w+ \? "([A-Z0-9_]+)" : "([A-Z0-9_]+)";\s*'
        r"await submit\(path, type,",
        text,
    )
    # Every call site is one of the two forms (else this test could not check what it sends).
    sites = re.findall(r"(?<!function )\bsubmit\(", text)
    assert len(sites) == len(literal) + len(chosen), "a dashboard submit() whose path or type this test cannot read"
    return literal + [pair for p1, p2, t1, t2 in chosen for pair in ((p1, t1), (p2, t2))]


def test_every_catalog_path_is_served_in_the_openapi_document_and_nothing_else(daemon: Daemon) -> None:
    paths = served_openapi(daemon)["paths"]
    documented = {p.removeprefix(SUBMIT): item for p, item in paths.items() if p.startswith(SUBMIT)}
    assert set(documented) == set(CATALOG.by_path)
    for path, entry in CATALOG.by_path.items():
        post = documented[path]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["type"]["enum"] == [entry.type], path
        assert schema["properties"]["parameters"] == entry.parameters, path  # what the reader reads
        assert post["operationId"] == f"submit_{path}"


def test_every_dashboard_submission_is_a_catalog_entry(daemon: Daemon) -> None:
    documented = {p.removeprefix(SUBMIT) for p in served_openapi(daemon)["paths"] if p.startswith(SUBMIT)}
    calls = dashboard_submits()
    assert calls, "the dashboard submits activities; the pattern no longer finds them"
    for path, activity_type in calls:
        entry = CATALOG.by_path.get(path)
        assert entry is not None, f"dashboard submits to `{path}`, which the catalog does not have"
        assert entry.type == activity_type, f"dashboard sends `{activity_type}` to `{path}`, which takes `{entry.type}`"
        assert path in documented


def test_each_catalog_path_refuses_another_type_with_turnkeys_error_shape(daemon: Daemon) -> None:
    client = daemon.client()
    entries = list(CATALOG)
    for i, entry in enumerate(entries):
        other = entries[(i + 1) % len(entries)].type  # a real type, but not this path's
        for wrong in (other, "ACTIVITY_TYPE_NOPE"):
            body = {
                "type": wrong,
                "timestampMs": str(int(time.time() * 1000)),
                "organizationId": daemon.organization_id,
                "parameters": {},
            }
            status, data = client.post_raw(SUBMIT + entry.path, json.dumps(body).encode())
            assert status == 400, (entry.path, data)
            assert set(data) == {"code", "message", "details"}, data
            assert data["code"] == 3  # INVALID_ARGUMENT
            assert data["message"] == f"unsupported activity type `{wrong}` here; expected `{entry.type}`"
            assert isinstance(data["details"], list) and data["details"], data
