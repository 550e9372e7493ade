"""`POST /eth/rpc`, the Ethereum JSON-RPC signer, over HTTP against a real daemon: signatures eth-account
recovers, stamps required, policies applied, JSON-RPC error objects for every failure."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from test_eth_account import BLOCKED, TYPED

from conftest import Daemon, allow_from_deny_to, api_user
from strongroom.client import Client
from strongroom.client.calls import ETHEREUM_ACCOUNT, SOLANA_ACCOUNT

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

TO = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"


def rpc(client: Client, method: str, params: list[Any], **extra: Any) -> dict[str, Any]:
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": method,
        "params": params,
        "organizationId": client.organization_id,
        "timestampMs": str(int(time.time() * 1000)),
        **extra,
    }
    status, data = client.post_raw("/eth/rpc", json.dumps(call).encode())
    assert status == 200, data
    assert data["jsonrpc"] == "2.0"
    assert isinstance(data, dict)
    return data


def new_address(client: Client) -> str:
    out = client.create_private_key(f"rpc-{uuid.uuid4().hex[:8]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    key = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    return str(key["addresses"][0]["address"])


def test_the_wallet_methods_sign_what_eth_account_recovers(daemon: Daemon) -> None:
    client = daemon.client()
    address = new_address(client)
    assert address in rpc(client, "eth_accounts", [])["result"]

    out = rpc(client, "personal_sign", ["0x68656c6c6f", address])
    assert out["id"] == 7
    assert Account.recover_message(encode_defunct(b"hello"), signature=out["result"]) == address
    out = rpc(client, "eth_sign", [address.lower(), "0x68656c6c6f"])
    assert Account.recover_message(encode_defunct(b"hello"), signature=out["result"]) == address
    out = rpc(client, "personal_sign", ["plain text", address])
    assert Account.recover_message(encode_defunct(text="plain text"), signature=out["result"]) == address

    tx = {
        "from": address,
        "to": TO,
        "value": "0xde0b6b3a7640000",
        "gas": "0x5208",
        "maxFeePerGas": "0x77359400",
        "maxPriorityFeePerGas": "0x3b9aca00",
        "nonce": "0x0",
        "chainId": "0x1",
        "input": "0x",
        "type": "0x2",
    }
    raw = rpc(client, "eth_signTransaction", [tx])["result"]
    assert raw.startswith("0x02")
    assert Account.recover_transaction(raw) == address
    legacy = {"from": address, "to": TO, "gas": "0x5208", "gasPrice": "0x1", "nonce": "0x1", "chainId": "0x5"}
    assert Account.recover_transaction(rpc(client, "eth_signTransaction", [legacy])["result"]) == address

    typed = {**TYPED, "message": {**TYPED["message"], "amount": "1000"}}
    for form in (typed, json.dumps(typed)):
        sig = rpc(client, "eth_signTypedData_v4", [address, form])["result"]
        assert Account.recover_message(encode_typed_data(full_message=typed), signature=sig) == address


def test_every_failure_is_a_json_rpc_error(daemon: Daemon) -> None:
    client = daemon.client()
    address = new_address(client)

    def error(method: str, params: list[Any], **extra: Any) -> dict[str, Any]:
        out = rpc(client, method, params, **extra)
        assert "result" not in out, out
        return dict(out["error"])

    assert error("eth_sendTransaction", [{}])["code"] == -32602  # no `from`
    # The node's methods, and sending, need the upstream node, which this daemon has not.
    for method, params in (("eth_chainId", []), ("eth_sendTransaction", [{"from": address, "to": TO}])):
        refused = error(method, params)
        assert refused["code"] == -32601
        assert "eth_upstream_url" in refused["message"]
    assert error("eth_signTypedData", [address, {}])["code"] == -32601  # never passed to a node
    assert error("personal_unlockAccount", [address, ""])["code"] == -32601
    assert error("eth_signTransaction", [{"from": address, "to": TO}])["code"] == -32602  # no gas, nonce...
    assert error("eth_signTransaction", [{"to": TO, "gas": 1, "gasPrice": 1, "nonce": 0}])["code"] == -32602
    assert error("personal_sign", ["0x00", address], timestampMs="1000")["code"] == -32602  # replay window
    assert error("personal_sign", ["0x00", "0x" + "12" * 20])["code"] == -32001  # no such key
    assert error("personal_sign", "0x00", address=address)["code"] == -32602  # params by position only
    status, data = client.post_raw("/eth/rpc", b"[]")
    assert (status, data["error"]["code"]) == (200, -32600)
    status, data = client.post_raw("/eth/rpc", b"{not json")
    assert (status, data["id"], data["error"]["code"]) == (200, None, -32700)

    # Unstamped, or stamped over other bytes: refused before anything is read.
    body = json.dumps({"jsonrpc": "2.0", "id": "a", "method": "eth_accounts", "organizationId": client.organization_id})
    unstamped = urllib.request.Request(
        client.base_url + "/eth/rpc", body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(unstamped) as resp:
        data = json.loads(resp.read())
    assert (data["id"], data["error"]["code"]) == ("a", 4100)
    stamp = client.stamper.stamp(b"{}")
    status, data = client.post_raw("/eth/rpc", body.encode(), {"X-Stamp": stamp})
    assert data["error"]["code"] == 4100
    assert "result" not in data


def test_a_policy_deny_refuses_through_the_endpoint(daemon: Daemon) -> None:
    root = daemon.client()
    alice = api_user(root, f"alice-{uuid.uuid4().hex[:6]}")
    alice_id = alice.whoami()["userId"]
    address = new_address(root)
    allow_from_deny_to(root, alice, address, BLOCKED)
    tx = {"from": address, "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "nonce": "0x0"}
    tx["chainId"] = "0x1"
    ok = rpc(alice, "eth_signTransaction", [{**tx, "to": TO}])
    assert Account.recover_transaction(ok["result"]) == address
    denied = rpc(alice, "eth_signTransaction", [{**tx, "to": BLOCKED}])
    assert denied["error"]["code"] == 4001
    assert denied["error"]["message"] == "policy engine denied request explicitly"
    assert denied["error"]["data"]["code"] == 7
    # A call that needs approvals is refused, not parked: the endpoint cannot carry votes.
    made = root.create_policy(
        f"messages with {address} need root",
        "EFFECT_ALLOW",
        f"activity.resource == 'PRIVATE_KEY' && private_key.id != '' && '{alice_id}' != ''",
        f"approvers.count() >= 2 && approvers.any(user, user.id == '{alice_id}')",
    )
    try:
        pending = rpc(alice, "personal_sign", ["0x00", address])
        assert pending["error"]["code"] == 4001
        assert "needs approvals" in pending["error"]["message"]
        listed = alice.list_activities(limit=50, filterByStatus=["ACTIVITY_STATUS_CONSENSUS_NEEDED"])
        assert listed.get("activities", []) == []
    finally:  # it matches every key of the shared daemon's organization: later tests must not see it
        root.delete_policy(made["activity"]["result"]["createPolicyResult"]["policyId"])


def test_a_wallet_account_is_listed_and_signs_over_json_rpc(daemon: Daemon) -> None:
    client = daemon.client()
    made = client.create_wallet(f"rpc-{uuid.uuid4().hex[:8]}", [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT])
    eth, sol = made["activity"]["result"]["createWalletResult"]["addresses"]
    accounts = rpc(client, "eth_accounts", [])["result"]
    assert eth in accounts and sol not in accounts
    out = rpc(client, "personal_sign", ["0x68656c6c6f", eth])
    assert Account.recover_message(encode_defunct(b"hello"), signature=out["result"]) == eth


last_body: list[bytes] = [b""]


def batch(client: Client, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A JSON-RPC batch: each call with the organization and a timestamp, the whole body stamped once."""
    now = str(int(time.time() * 1000))
    body = [{"jsonrpc": "2.0", "organizationId": client.organization_id, "timestampMs": now, **c} for c in calls]
    last_body[0] = json.dumps(body).encode()
    status, data = client.post_raw("/eth/rpc", last_body[0])
    assert status == 200, data
    assert isinstance(data, list), data
    return data


def activity_ids(client: Client) -> set[str]:
    """The ids of the organization's 100 newest activities."""
    return {a["id"] for a in client.list_activities(limit=100).get("activities", [])}


def test_a_batch_is_answered_call_by_call_in_order(daemon: Daemon) -> None:
    client = daemon.client()
    address = new_address(client)
    tx = {"from": address, "to": TO, "gas": "0x5208", "gasPrice": "0x1", "nonce": "0x0", "chainId": "0x1"}
    calls: list[Any] = [
        {"id": 1, "method": "eth_accounts", "params": []},
        {"id": "two", "method": "personal_sign", "params": ["0x68656c6c6f", address]},
        {"id": 3, "method": "eth_signTransaction", "params": [tx]},
        {"id": 4, "method": "eth_coinbase", "params": []},
        {"id": 5, "method": "personal_sign", "params": ["0x00", "0x" + "12" * 20]},
        {"id": 6, "method": "personal_sign", "params": ["0x68656c6c6f", address]},  # the same call again
        {"id": 7, "method": "eth_chainId", "params": []},
    ]
    before = activity_ids(client)
    answers = batch(client, calls)
    assert [a["id"] for a in answers] == [1, "two", 3, 4, 5, 6, 7]
    assert address in answers[0]["result"]
    assert Account.recover_message(encode_defunct(b"hello"), signature=answers[1]["result"]) == address
    assert Account.recover_transaction(answers[2]["result"]) == address
    assert answers[3]["error"]["code"] == -32601
    assert answers[4]["error"]["code"] == -32001  # no such key: this call alone fails
    assert Account.recover_message(encode_defunct(b"hello"), signature=answers[5]["result"]) == address
    assert answers[6]["error"]["code"] == -32601  # no upstream node
    # Each signing call of the batch is its own activity, the two identical ones too (3: the call
    # with no such key is refused before it is one).
    assert len(activity_ids(client) - before) == 3
    # The same body again (a replay inside the window) answers the same activities: nothing new is signed.
    status, again = client.post_raw("/eth/rpc", last_body[0])
    assert [a.get("result") for a in again] == [a.get("result") for a in answers]
    assert len(activity_ids(client) - before) == 3

    # Not an object, another organization, no timestamp: that call is refused, the others answered.
    mixed: list[Any] = [7, {"id": 8, "method": "eth_accounts", "params": [], "organizationId": str(uuid.uuid4())}]
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": 9, "method": "eth_accounts", "organizationId": client.organization_id}, *mixed]
    )
    status, data = client.post_raw("/eth/rpc", body.encode())
    assert [a.get("id") for a in data] == [9, None, 8]
    assert "result" in data[0]
    assert data[1]["error"]["code"] == data[2]["error"]["code"] == -32600
    body = json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": 10,
                "method": "personal_sign",
                "params": ["0x00", address],
                "organizationId": client.organization_id,
            }
        ]
    )
    status, data = client.post_raw("/eth/rpc", body.encode())
    assert data[0]["error"]["code"] == -32602 and "timestampMs" in data[0]["error"]["message"]


def test_a_batch_is_stamped_once_whole_and_bounded(daemon: Daemon) -> None:
    client = daemon.client()
    address = new_address(client)
    calls = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_accounts", "organizationId": client.organization_id}
        for i in range(3)
    ]
    body = json.dumps(calls).encode()
    # Unstamped, or stamped over other bytes: every call is refused, nothing is answered.
    request = urllib.request.Request(
        client.base_url + "/eth/rpc", body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request) as resp:
        data = json.loads(resp.read())
    assert [(a["id"], a["error"]["code"]) for a in data] == [(0, 4100), (1, 4100), (2, 4100)]
    status, data = client.post_raw("/eth/rpc", body, {"X-Stamp": client.stamper.stamp(json.dumps(calls[:1]).encode())})
    assert all(a["error"]["code"] == 4100 and "result" not in a for a in data)
    # At most eth_rpc_max_batch (20 by default) calls: a larger batch is one error, and signs nothing.
    before = activity_ids(client)
    sign = {"method": "personal_sign", "params": ["0x00", address]}
    data = client.post_raw(
        "/eth/rpc",
        json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "organizationId": client.organization_id,
                    "timestampMs": str(int(time.time() * 1000)),
                    **sign,
                }
                for i in range(21)
            ]
        ).encode(),
    )[1]
    assert isinstance(data, dict)
    assert data["error"]["code"] == -32600 and "batch too large" in data["error"]["message"]
    assert activity_ids(client) == before
    assert len(batch(client, [{"id": i, **sign} for i in range(20)])) == 20


def test_a_policy_decides_each_call_of_a_batch(daemon: Daemon) -> None:
    root = daemon.client()
    alice = api_user(root, f"alice-{uuid.uuid4().hex[:6]}")
    address = new_address(root)
    allow_from_deny_to(root, alice, address, BLOCKED)
    tx = {"from": address, "gas": "0x5208", "gasPrice": "0x1", "nonce": "0x0", "chainId": "0x1"}
    denied, allowed = batch(
        alice,
        [
            {"id": 1, "method": "eth_signTransaction", "params": [{**tx, "to": BLOCKED}]},
            {"id": 2, "method": "eth_signTransaction", "params": [{**tx, "to": TO}]},
        ],
    )
    assert denied["error"]["code"] == 4001
    assert denied["error"]["message"] == "policy engine denied request explicitly"
    assert "result" not in denied
    assert Account.recover_transaction(allowed["result"]) == address
