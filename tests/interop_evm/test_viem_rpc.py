"""viem's JSON-RPC account (viem 2.57.20, pinned in this package) signs through `POST /eth/rpc`, stamped by
Turnkey's JS API-key stamper; a DENY policy refuses it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from conftest import Daemon, allow_from_deny_to, api_user, node_project, run_node_script

pytestmark = [pytest.mark.interop, pytest.mark.e2e, pytest.mark.softhsm]

HERE = Path(__file__).resolve().parent
BLOCKED = "0x000000000000000000000000000000000000dEaD"


def test_viem_json_rpc_account_signs_through_the_endpoint(daemon: Daemon) -> None:
    node = node_project(HERE)
    root = daemon.client()
    out = root.create_private_key(f"viem-{uuid.uuid4().hex[:8]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    address = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]
    alice = api_user(root, f"alice-{uuid.uuid4().hex[:6]}")
    allow_from_deny_to(root, alice, address, BLOCKED)
    result = run_node_script(
        node,
        HERE / "viem_rpc.mjs",
        daemon,
        extra_env={
            "ADDRESS": address,
            "BLOCKED": BLOCKED,
            "ALICE_PUBLIC_KEY": alice.stamper.public_key,
            "ALICE_PRIVATE_KEY": alice.stamper.private_key,
        },
    )
    assert address in result["addresses"]
    assert Account.recover_message(encode_defunct(text="hello from viem"), signature=result["message"]) == address
    typed = {
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
        },
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"},
            ],
        },
        "primaryType": "Mail",
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!",
        },
    }
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=result["typed"]) == address
    assert Account.recover_transaction(result["transaction"]) == address
    assert result["denied"] is not None, "the DENY policy did not refuse viem's transaction"
    assert result["denied"]["code"] == 4001
    assert "policy engine denied request explicitly" in result["denied"]["details"]
