"""Interop: Turnkey's official `@turnkey/sdk-server` 8.2.1 creates a sub-organization with a root user
holding a fresh API key, then acts inside it with that key; the parent's key reads but cannot sign.

`sdk_server.mjs` drives a real daemon (the session `daemon` fixture) and prints one JSON object;
the signature it reports is re-verified here with coincurve. The pinned npm packages are installed
here with `npm ci` when `node_modules` is missing or older than `package-lock.json`. Without
`node`/`npm` on PATH the test fails, unless STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import pytest

from conftest import node_project, run_node_script
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "sdk_server.mjs"
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with the pinned packages installed in tests/interop_sdk_server/node_modules."""
    return node_project(HERE)


@pytest.fixture(scope="module")
def out(node: str, daemon: Any) -> dict[str, Any]:
    data: dict[str, Any] = run_node_script(node, SCRIPT, daemon)
    return data


def test_sub_organization_created_with_a_root_api_key(out: dict[str, Any], daemon: Any) -> None:
    sub = out["subOrganizationId"]
    assert out["createdActivity"] == {
        "type": "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        "status": "ACTIVITY_STATUS_COMPLETED",
    }
    assert len(out["rootUserIds"]) == 1
    assert sub in out["subOrgIds"]
    assert out["subWhoami"]["organizationId"] == sub
    assert out["subWhoami"]["userId"] == out["rootUserIds"][0]


def test_end_user_signs_inside_the_sub_organization(out: dict[str, Any]) -> None:
    sig, key = out["signature"], out["privateKey"]
    assert out["signActivity"] == {"status": "ACTIVITY_STATUS_COMPLETED", "organizationId": out["subOrganizationId"]}
    digest = keccak256(sig["payload"].encode())
    recovered = coincurve.PublicKey.from_signature_and_message(
        bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), digest, hasher=None
    )
    assert recovered.format(compressed=True).hex() == key["publicKey"]
    assert address_from_public_key(recovered.format(compressed=False)) == key["addresses"][0]["address"]


def test_parent_reads_but_cannot_sign_and_end_user_cannot_see_the_parent(out: dict[str, Any], daemon: Any) -> None:
    sub = out["subOrganizationId"]
    assert out["parentWhoami"]["organizationId"] == sub
    assert out["parentWhoami"]["userId"] == daemon.user_id
    assert [u["userId"] for u in out["parentUsers"]] == out["rootUserIds"]
    assert out["parentUsers"][0]["apiKeys"] == [
        {"publicKey": out["endUserPublicKey"], "type": "CREDENTIAL_TYPE_API_KEY_P256"}
    ]
    assert out["parentPrivateKeyIds"] == [out["privateKey"]["privateKeyId"]]
    refused = out["parentSign"]
    assert refused["refused"] is True
    assert refused["code"] == 7, refused
    assert "not submit activities" in refused["message"]
    assert out["endUserOnParent"]["refused"] is True
    assert out["endUserOnParent"]["code"] == 16
