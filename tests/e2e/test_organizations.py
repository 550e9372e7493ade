"""Top-level organizations share nothing: each one's credentials see nothing of the other's (both ways)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from test_daemon import run_cli

from conftest import Daemon
from strongroom.client import ApiError, ApiKeyStamper, Client

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def test_organizations_are_isolated_both_ways(daemon: Daemon) -> None:
    created = json.loads(
        run_cli("org", "create", "--name", f"test-{uuid.uuid4().hex[:6]}", data_dir=daemon.data_dir).stdout
    )
    a = daemon.client()
    b = Client(
        daemon.url,
        ApiKeyStamper.from_files(Path(created["apiPrivateKeyFile"]).with_suffix("")),
        created["organizationId"],
    )
    assert b.whoami()["organizationId"] == created["organizationId"]
    assert b.whoami()["userId"] == created["userId"]

    made = {}
    for name, client in (("a", a), ("b", b)):
        out = client.create_private_key(
            f"iso-{name}-{uuid.uuid4().hex[:6]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"]
        )
        key = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
        made[name] = (key["privateKeyId"], key["addresses"][0]["address"], out["activity"]["id"])

    for _me, them, client, their_org in (
        ("a", "b", a, created["organizationId"]),
        ("b", "a", b, daemon.organization_id),
    ):
        their_key, their_address, their_activity = made[them]
        # Nothing of theirs is visible from here...
        assert their_key not in {k["privateKeyId"] for k in client.list_private_keys()["privateKeys"]}
        assert their_activity not in {x["id"] for x in client.list_activities(100)["activities"]}
        with pytest.raises(ApiError) as err:
            client.get_private_key(their_key)
        assert err.value.status == 404
        with pytest.raises(ApiError) as err:
            client.get_activity(their_activity)
        assert err.value.status == 404
        with pytest.raises(ApiError) as err:  # their key by id or by address cannot sign here
            client.sign_raw_payload(their_address, "x", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
        assert err.value.status == 404
        # ...and this credential cannot act or read in their organization at all.
        foreign = Client(daemon.url, client.stamper, their_org)
        for call in (foreign.whoami, foreign.list_private_keys):
            with pytest.raises(ApiError) as err:
                call()
            assert err.value.status == 401
        with pytest.raises(ApiError) as err:
            foreign.sign_raw_payload(their_key, "x", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
        assert err.value.status == 401
    # Both are listed by the operator command.
    listed = json.loads(run_cli("--json", "org", "list", data_dir=daemon.data_dir).stdout)
    assert {daemon.organization_id, created["organizationId"]} <= {o["organizationId"] for o in listed}
