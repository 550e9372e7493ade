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
from test_dashboard import api_user
from test_eth_account import BLOCKED, TYPED

from conftest import Daemon
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

    assert error("eth_sendTransaction", [{}])["code"] == -32601
    assert error("eth_signTransaction", [{"from": address, "to": TO}])["code"] == -32602  # no gas, nonce...
    assert error("eth_signTransaction", [{"to": TO, "gas": 1, "gasPrice": 1, "nonce": 0}])["code"] == -32602
    assert error("personal_sign", ["0x00", address], timestampMs="1000")["code"] == -32602  # replay window
    assert error("personal_sign", ["0x00", "0x" + "12" * 20])["code"] == -32001  # no such key
    assert error("personal_sign", "0x00", address=address)["code"] == -32602  # params by position only
    status, data = client.post_raw("/eth/rpc", b'[{"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}]')
    assert data["error"]["code"] == -32600
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
    root.create_policy(
        f"alice signs with {address}",
        "EFFECT_ALLOW",
        f"activity.resource == 'PRIVATE_KEY' && eth.tx.from == '{address.lower()}'",
        f"approvers.any(user, user.id == '{alice_id}')",
    )
    root.create_policy(
        f"never to dead from {address}",
        "EFFECT_DENY",
        f"eth.tx.from == '{address.lower()}' && eth.tx.to == '{BLOCKED.lower()}'",
    )
    tx = {"from": address, "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "nonce": "0x0"}
    tx["chainId"] = "0x1"
    ok = rpc(alice, "eth_signTransaction", [{**tx, "to": TO}])
    assert Account.recover_transaction(ok["result"]) == address
    denied = rpc(alice, "eth_signTransaction", [{**tx, "to": BLOCKED}])
    assert denied["error"]["code"] == 4001
    assert denied["error"]["message"] == "policy engine denied request explicitly"
    assert denied["error"]["data"]["code"] == 7
    # A call that needs approvals is refused, not parked: the endpoint cannot carry votes.
    root.create_policy(
        f"messages with {address} need root",
        "EFFECT_ALLOW",
        f"activity.resource == 'PRIVATE_KEY' && private_key.id != '' && '{alice_id}' != ''",
        f"approvers.count() >= 2 && approvers.any(user, user.id == '{alice_id}')",
    )
    pending = rpc(alice, "personal_sign", ["0x00", address])
    assert pending["error"]["code"] == 4001
    assert "needs approvals" in pending["error"]["message"]
    listed = alice.list_activities(limit=50, filterByStatus=["ACTIVITY_STATUS_CONSENSUS_NEEDED"])
    assert listed.get("activities", []) == []


def test_a_wallet_account_is_listed_and_signs_over_json_rpc(daemon: Daemon) -> None:
    client = daemon.client()
    made = client.create_wallet(f"rpc-{uuid.uuid4().hex[:8]}", [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT])
    eth, sol = made["activity"]["result"]["createWalletResult"]["addresses"]
    accounts = rpc(client, "eth_accounts", [])["result"]
    assert eth in accounts and sol not in accounts
    out = rpc(client, "personal_sign", ["0x68656c6c6f", eth])
    assert Account.recover_message(encode_defunct(b"hello"), signature=out["result"]) == eth
